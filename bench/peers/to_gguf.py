#!/usr/bin/env python3
"""Hugging Face Llama or BERT directory (config.json + model.safetensors) -> GGUF v3 for llama.cpp.

usage: to_gguf.py MODEL_DIR OUT.gguf

Pure Python (struct + json; no numpy, no torch): tensors are copied byte for byte in their stored dtype
(F32 -> GGML F32, F16 -> F16, BF16 -> BF16), so the GGUF computes the same function as the safetensors;
only 1-D tensors (the norm weights) of an F16 / BF16 model become F32 (exactly), as convert_hf_to_gguf.py
does, because llama.cpp's CPU backend multiplies by them in f32 only.
What it does, after llama.cpp's convert_hf_to_gguf.py (LlamaModel) at the release bench/peers pins:
  - metadata: general.architecture = llama and the llama.* hyperparameters, general.file_type;
  - q_proj / k_proj rows permuted per head from HF's half-split rotary layout to llama.cpp's interleaved
    one (LlamaModel.permute: reshape(n_head, 2, head_dim / 2, in).swapaxes(1, 2));
  - tensor names token_embd, blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_up,
    ffn_down}, output_norm, output (absent when the embeddings are tied); GGUF dims are the safetensors
    shape reversed; data 32-byte aligned.
  - a synthetic SentencePiece-style vocabulary of the config's vocab_size (<unk>, <s>, </s>, the 256 byte
    tokens <0x00>..<0xFF>, then t<i>): enough for llama.cpp to load it and for token-id benchmarks and
    logit checks; it is not a real tokenizer (these are random-weight or test models).
BertModel (an encoder: all-MiniLM-L6-v2, E5, ...), after convert_hf_to_gguf.py's BertModel:
  - metadata: general.architecture = bert and the bert.* hyperparameters (bert.attention.causal = false,
    bert.pooling_type = 1, mean, as sentence-transformers pools these models), tokenizer.ggml.token_type_count;
  - tensor names token_embd, position_embd, token_types, token_embd_norm, blk.N.{attn_q,attn_k,attn_v,
    attn_output,attn_output_norm,ffn_up,ffn_down,layer_output_norm} (weights and biases); the pooler is dropped;
  - a synthetic WordPiece vocabulary ([PAD] = 0, [UNK] = 100, [CLS] = 101, [SEP] = 102, [MASK] = 103 as
    llama.cpp's defaults for tokenizer.ggml.model = bert, the rest t<i>).
Only LlamaForCausalLM / MistralForCausalLM without biases, rope scaling or sliding windows, and BertModel with
absolute positions and the exact GELU, are accepted; anything else exits 1 with a one-line message.
"""
import array
import json
import os
import struct
import sys

GGUF_MAGIC = 0x46554747  # "GGUF" little-endian
GGUF_VERSION = 3
ALIGN = 32
# GGUFValueType
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9
# GGMLQuantizationType / LlamaFileType
GGML_TYPE = {"F32": 0, "F16": 1, "BF16": 30}
FILE_TYPE = {"F32": 0, "F16": 1, "BF16": 32}
ESIZE = {"F32": 4, "F16": 2, "BF16": 2}
# llama.cpp token types
TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_BYTE = 1, 2, 3, 6


def die(msg):
    print(f"to_gguf: {msg}", file=sys.stderr)
    sys.exit(1)


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == T_UINT32:
        out += struct.pack("<I", value)
    elif vtype == T_INT32:
        out += struct.pack("<i", value)
    elif vtype == T_FLOAT32:
        out += struct.pack("<f", value)
    elif vtype == T_BOOL:
        out += struct.pack("<?", value)
    elif vtype == T_STRING:
        out += gstr(value)
    else:
        raise ValueError(vtype)
    return out


def kv_array(key, etype, values):
    out = gstr(key) + struct.pack("<IIQ", T_ARRAY, etype, len(values))
    if etype == T_STRING:
        out += b"".join(gstr(v) for v in values)
    elif etype == T_FLOAT32:
        out += struct.pack(f"<{len(values)}f", *values)
    elif etype == T_INT32:
        out += struct.pack(f"<{len(values)}i", *values)
    else:
        raise ValueError(etype)
    return out


def read_safetensors_header(path):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            die(f"{path}: not a safetensors file (short header)")
        (n,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            die(f"{path}: bad safetensors header: {e}")
    header.pop("__metadata__", None)
    return header, 8 + n


def general_kv(arch, model_dir, dominant):
    return [
        kv("general.architecture", T_STRING, arch),
        kv("general.name", T_STRING, os.path.basename(os.path.normpath(model_dir))),
        kv("general.file_type", T_UINT32, FILE_TYPE[dominant]),
        kv("general.alignment", T_UINT32, ALIGN),
    ]


def tensor_plan(st_path, header, names, heads_of, head_dim):
    """[(gguf name, hf name, safetensors info, heads to permute or 0, head_dim)] and the file's dominant dtype."""
    dtypes = set()
    tensors = []
    for hf, gg in names:
        info = header.get(hf)
        if info is None:
            die(f"{st_path}: tensor {hf} is missing")
        if info["dtype"] not in GGML_TYPE:
            die(f"{st_path}: tensor {hf} has dtype {info['dtype']} (F32, F16, BF16 only)")
        dtypes.add(info["dtype"])
        heads = heads_of(hf)
        if heads and info["shape"][0] != heads * head_dim:
            die(f"{st_path}: tensor {hf} has {info['shape'][0]} rows, expected {heads} x {head_dim}")
        tensors.append((gg, hf, info, heads, head_dim))
    return tensors, "F32" if dtypes == {"F32"} else sorted(dtypes - {"F32"})[0]


def llama_plan(cfg, cfg_path, st_path, header, model_dir):
    """LlamaForCausalLM / MistralForCausalLM: (arch metadata, tokenizer metadata, tensors, dominant dtype)."""
    for bad in ("attention_bias", "mlp_bias"):
        if cfg.get(bad):
            die(f"{cfg_path}: {bad} is not supported")
    if cfg.get("rope_scaling") or (cfg.get("rope_parameters") or {}).get("rope_type", "default") != "default":
        die(f"{cfg_path}: rope scaling is not supported")
    if cfg.get("sliding_window"):
        die(f"{cfg_path}: sliding_window is not supported")

    H = cfg["hidden_size"]
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    head_dim = cfg.get("head_dim") or H // n_head
    n_layer = cfg["num_hidden_layers"]
    vocab = cfg["vocab_size"]
    theta = cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    tied = bool(cfg.get("tie_word_embeddings", False))
    ctx = cfg.get("max_position_embeddings", 2048)

    names = [("model.embed_tokens.weight", "token_embd.weight")]
    for i in range(n_layer):
        p, q = f"model.layers.{i}.", f"blk.{i}."
        names += [
            (p + "input_layernorm.weight", q + "attn_norm.weight"),
            (p + "self_attn.q_proj.weight", q + "attn_q.weight"),
            (p + "self_attn.k_proj.weight", q + "attn_k.weight"),
            (p + "self_attn.v_proj.weight", q + "attn_v.weight"),
            (p + "self_attn.o_proj.weight", q + "attn_output.weight"),
            (p + "post_attention_layernorm.weight", q + "ffn_norm.weight"),
            (p + "mlp.gate_proj.weight", q + "ffn_gate.weight"),
            (p + "mlp.up_proj.weight", q + "ffn_up.weight"),
            (p + "mlp.down_proj.weight", q + "ffn_down.weight"),
        ]
    names.append(("model.norm.weight", "output_norm.weight"))
    if not tied:
        names.append(("lm_head.weight", "output.weight"))

    def heads_of(hf):
        return n_head if hf.endswith("q_proj.weight") else n_kv if hf.endswith("k_proj.weight") else 0
    tensors, dominant = tensor_plan(st_path, header, names, heads_of, head_dim)

    arch_kv = general_kv("llama", model_dir, dominant) + [
        kv("llama.vocab_size", T_UINT32, vocab),
        kv("llama.context_length", T_UINT32, ctx),
        kv("llama.embedding_length", T_UINT32, H),
        kv("llama.block_count", T_UINT32, n_layer),
        kv("llama.feed_forward_length", T_UINT32, cfg["intermediate_size"]),
        kv("llama.attention.head_count", T_UINT32, n_head),
        kv("llama.attention.head_count_kv", T_UINT32, n_kv),
        kv("llama.attention.key_length", T_UINT32, head_dim),
        kv("llama.attention.value_length", T_UINT32, head_dim),
        kv("llama.rope.dimension_count", T_UINT32, head_dim),
        kv("llama.rope.freq_base", T_FLOAT32, float(theta)),
        kv("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, float(cfg.get("rms_norm_eps", 1e-6))),
    ]
    if vocab < 3 + 256:
        die(f"{cfg_path}: vocab_size {vocab} is below the 259 tokens of the synthetic vocabulary")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL] + [TOK_BYTE] * 256
    tokens += [f"t{i}" for i in range(len(tokens), vocab)]
    types += [TOK_NORMAL] * (vocab - len(types))
    scores = [0.0] * 259 + [-float(i) for i in range(vocab - 259)]
    tok_kv = [
        kv("tokenizer.ggml.model", T_STRING, "llama"),
        kv_array("tokenizer.ggml.tokens", T_STRING, tokens),
        kv_array("tokenizer.ggml.scores", T_FLOAT32, scores),
        kv_array("tokenizer.ggml.token_type", T_INT32, types),
        kv("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        kv("tokenizer.ggml.bos_token_id", T_UINT32, int(cfg.get("bos_token_id") or 1)),
        kv("tokenizer.ggml.eos_token_id", T_UINT32, int(cfg.get("eos_token_id") or 2)),
        kv("tokenizer.ggml.add_bos_token", T_BOOL, False),
    ]
    return arch_kv, tok_kv, tensors, dominant


def bert_plan(cfg, cfg_path, st_path, header, model_dir):
    """BertModel: (arch metadata, tokenizer metadata, tensors, dominant dtype)."""
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        die(f"{cfg_path}: position_embedding_type {cfg['position_embedding_type']} is not supported")
    if cfg.get("hidden_act", "gelu") != "gelu":
        die(f"{cfg_path}: hidden_act {cfg['hidden_act']} is not supported (gelu only)")
    H = cfg["hidden_size"]
    n_layer = cfg["num_hidden_layers"]
    vocab = cfg["vocab_size"]
    names = [("embeddings.word_embeddings.weight", "token_embd.weight"),
             ("embeddings.position_embeddings.weight", "position_embd.weight"),
             ("embeddings.token_type_embeddings.weight", "token_types.weight"),
             ("embeddings.LayerNorm.weight", "token_embd_norm.weight"),
             ("embeddings.LayerNorm.bias", "token_embd_norm.bias")]
    parts = [("attention.self.query", "attn_q"), ("attention.self.key", "attn_k"), ("attention.self.value", "attn_v"),
             ("attention.output.dense", "attn_output"), ("attention.output.LayerNorm", "attn_output_norm"),
             ("intermediate.dense", "ffn_up"), ("output.dense", "ffn_down"), ("output.LayerNorm", "layer_output_norm")]
    for i in range(n_layer):
        for hf, gg in parts:
            for kind in ("weight", "bias"):
                names.append((f"encoder.layer.{i}.{hf}.{kind}", f"blk.{i}.{gg}.{kind}"))
    # A checkpoint saved from BertModel may prefix its names with "bert." (BertForMaskedLM and friends).
    if "bert.embeddings.word_embeddings.weight" in header:
        names = [("bert." + hf, gg) for hf, gg in names]
    tensors, dominant = tensor_plan(st_path, header, names, lambda hf: 0, 1)
    arch_kv = general_kv("bert", model_dir, dominant) + [
        kv("bert.vocab_size", T_UINT32, vocab),
        kv("bert.context_length", T_UINT32, cfg.get("max_position_embeddings", 512)),
        kv("bert.embedding_length", T_UINT32, H),
        kv("bert.block_count", T_UINT32, n_layer),
        kv("bert.feed_forward_length", T_UINT32, cfg["intermediate_size"]),
        kv("bert.attention.head_count", T_UINT32, cfg["num_attention_heads"]),
        kv("bert.attention.layer_norm_epsilon", T_FLOAT32, float(cfg.get("layer_norm_eps", 1e-12))),
        kv("bert.attention.causal", T_BOOL, False),
        kv("bert.pooling_type", T_UINT32, 1),
    ]
    if vocab < 104:
        die(f"{cfg_path}: vocab_size {vocab} is below the 104 tokens of the synthetic vocabulary")
    special = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
    tokens = [special.get(i, f"[unused{i}]" if i < 104 else f"t{i}") for i in range(vocab)]
    types = [TOK_CONTROL if i in special else TOK_NORMAL for i in range(vocab)]
    types[100] = TOK_UNKNOWN
    tok_kv = [
        kv("tokenizer.ggml.model", T_STRING, "bert"),
        kv_array("tokenizer.ggml.tokens", T_STRING, tokens),
        kv_array("tokenizer.ggml.token_type", T_INT32, types),
        kv("tokenizer.ggml.token_type_count", T_UINT32, cfg.get("type_vocab_size", 2)),
        kv("tokenizer.ggml.unknown_token_id", T_UINT32, 100),
        kv("tokenizer.ggml.cls_token_id", T_UINT32, 101),
        kv("tokenizer.ggml.seperator_token_id", T_UINT32, 102),
        kv("tokenizer.ggml.padding_token_id", T_UINT32, 0),
        kv("tokenizer.ggml.mask_token_id", T_UINT32, 103),
    ]
    return arch_kv, tok_kv, tensors, dominant


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    model_dir, out_path = sys.argv[1], sys.argv[2]
    cfg_path = os.path.join(model_dir, "config.json")
    st_path = os.path.join(model_dir, "model.safetensors")
    try:
        cfg = json.load(open(cfg_path))
    except (OSError, ValueError) as e:
        die(f"{cfg_path}: {e}")
    arch = (cfg.get("architectures") or ["?"])[0]
    header, data_start = read_safetensors_header(st_path)
    if arch in ("LlamaForCausalLM", "MistralForCausalLM"):
        arch_kv, tok_kv, tensors, dominant = llama_plan(cfg, cfg_path, st_path, header, model_dir)
    elif arch == "BertModel":
        arch_kv, tok_kv, tensors, dominant = bert_plan(cfg, cfg_path, st_path, header, model_dir)
    else:
        die(f"{cfg_path}: architecture {arch} is not supported (Llama and BertModel only)")
    all_kv = arch_kv + tok_kv

    infos, offset = [], 0
    for gg, hf, info, heads, head_dim in tensors:
        shape = info["shape"]
        nbytes = info["data_offsets"][1] - info["data_offsets"][0]
        count = 1
        for d in shape:
            count *= d
        if nbytes != count * ESIZE[info["dtype"]]:
            die(f"{st_path}: tensor {hf} has {nbytes} bytes for shape {shape}")
        info["out_dtype"] = "F32" if len(shape) == 1 else info["dtype"]
        infos.append(gstr(gg) + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}Q", *reversed(shape))
                     + struct.pack("<IQ", GGML_TYPE[info["out_dtype"]], offset))
        offset += (count * ESIZE[info["out_dtype"]] + ALIGN - 1) // ALIGN * ALIGN

    head = struct.pack("<IIQQ", GGUF_MAGIC, GGUF_VERSION, len(tensors), len(all_kv)) + b"".join(all_kv) + b"".join(infos)
    head += b"\0" * ((-len(head)) % ALIGN)

    tmp = out_path + ".part"
    with open(st_path, "rb") as src, open(tmp, "wb") as out:
        out.write(head)
        for gg, hf, info, heads, head_dim in tensors:
            begin, end = info["data_offsets"]
            src.seek(data_start + begin)
            nbytes = end - begin
            if info["out_dtype"] != info["dtype"]:  # a 1-D F16 / BF16 tensor -> F32, exactly
                raw = src.read(nbytes)
                if info["dtype"] == "F16":
                    n = nbytes // 2
                    data = struct.pack(f"<{n}f", *struct.unpack(f"<{n}e", raw))
                else:
                    halves = array.array("H")
                    halves.frombytes(raw)
                    if sys.byteorder != "little":
                        halves.byteswap()
                    data = struct.pack(f"<{len(halves)}I", *(h << 16 for h in halves))
                out.write(data)
                nbytes = len(data)
            elif heads:
                # Row r' = j * 2 + s of head h takes HF row s * head_dim / 2 + j (half-split -> interleaved).
                row = nbytes // info["shape"][0]
                data = src.read(nbytes)
                half = head_dim // 2
                parts = []
                for h in range(heads):
                    base = h * head_dim
                    for j in range(half):
                        for s in range(2):
                            r = base + s * half + j
                            parts.append(data[r * row:(r + 1) * row])
                out.write(b"".join(parts))
            else:
                left = nbytes
                while left:
                    chunk = src.read(min(left, 64 << 20))
                    if not chunk:
                        die(f"{st_path}: truncated in tensor {hf}")
                    out.write(chunk)
                    left -= len(chunk)
            out.write(b"\0" * ((-nbytes) % ALIGN))
    os.replace(tmp, out_path)
    print(f"to_gguf: wrote {out_path}: {len(tensors)} tensors ({dominant}), {len(all_kv)} metadata keys, "
          f"{os.path.getsize(out_path) / 2**20:.1f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
