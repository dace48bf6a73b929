#!/usr/bin/env python3
"""random_llama.py CONFIG.json OUT_PREFIX: random weights of the shapes of a Hugging Face Llama config
(normal * 0.02, norm weights 1 + that; seed 1), written as OUT_PREFIX-f32/ and OUT_PREFIX-f16/
(model.safetensors + config.json) for bench/peers/to_gguf.py. The values do not change the speed; used by
bench/h200-peer.sh for llama.cpp's TinyLlama-1.1B (bench/configs/tinyllama-1.1b.json). Needs torch,
transformers, safetensors (the meta device builds the module without allocating it).
"""
import json, os, shutil, sys

import torch, transformers
from safetensors.torch import save_file

if len(sys.argv) != 3:
    sys.exit("usage: random_llama.py CONFIG.json OUT_PREFIX")
config, prefix = sys.argv[1], sys.argv[2]
cfg = transformers.LlamaConfig(**{k: v for k, v in json.load(open(config)).items()
                                  if k not in ("architectures", "torch_dtype", "transformers_version")})
with torch.device("meta"):
    m = transformers.LlamaForCausalLM(cfg)
g = torch.Generator().manual_seed(1)
sd = {}
for n, p in m.state_dict().items():
    t = torch.randn(p.shape, generator=g) * 0.02
    if p.dim() == 1:
        t = 1 + t
    sd[n] = t.contiguous()
for dt, name in ((torch.float32, "f32"), (torch.float16, "f16")):
    d = f"{prefix}-{name}"
    os.makedirs(d, exist_ok=True)
    save_file({n: t.to(dt) for n, t in sd.items()}, f"{d}/model.safetensors", metadata={"format": "pt"})
    shutil.copy(config, f"{d}/config.json")
    print("wrote", d, flush=True)
