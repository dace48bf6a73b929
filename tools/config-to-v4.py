#!/usr/bin/env python3
"""Write config.v4.json beside each reference case's config.json: the same model in transformers 4.x keys.

Why: kiln must accept Hugging Face checkpoints whose config.json was written by either
transformers 4.x or 5.x, and the two spell the same model differently. The reference cases in
tests/data are written by transformers 5.x (tools/make-references.py on the GPU machine), so
their config.json holds only 5.x keys. This tool derives, with the standard library alone, a
4.x-style twin of each one, so that kiln's tests can load both spellings of one model and check
that they give the same compiled model and the same outputs against the one reference.

Rewrites (every other key is kept as it is, in its place):
  dtype                          -> torch_dtype
  rope_parameters {rope_theta, rope_type, ...}
                                 -> rope_theta, and rope_scaling: null when rope_type is
                                    "default" (and nothing else is left), else the remaining
                                    dict, "rope_type" included; a partial_rotary_factor found
                                    inside rope_parameters goes back to the top level
  Gemma 3 (model_type gemma3*), rope_parameters per layer type and layer_types:
                                 -> rope_theta (full_attention layers),
                                    rope_local_base_freq (sliding_attention layers),
                                    rope_scaling (of the full layers; 4.x applied it to them only),
                                    sliding_window_pattern N, where layer i is full iff
                                    (i + 1) % N == 0; no layer_types; the 5.x private
                                    "_sliding_window_pattern" (a default, not this model's
                                    pattern) is dropped

usage: config-to-v4.py [CASE_DIR ...]   (default: every tests/data/*/ holding a config.json)
"""
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROOT = os.path.join(HERE, "..", "tests", "data")


def split_rope(rp, where):
    """5.x rope_parameters dict -> (rope_theta, rope_scaling or None, partial_rotary_factor or None)."""
    rp = dict(rp)
    if "rope_theta" not in rp:
        raise ValueError(f"{where}: rope_parameters without rope_theta: {rp}")
    theta = rp.pop("rope_theta")
    prf = rp.pop("partial_rotary_factor", None)
    rope_type = rp.get("rope_type", rp.get("type", "default"))
    if rope_type == "default":
        rest = {k: v for k, v in rp.items() if k not in ("rope_type", "type")}
        if rest:
            raise ValueError(f"{where}: default rope with extra parameters {rest}")
        return theta, None, prf
    rp.setdefault("rope_type", rope_type)
    return theta, rp, prf


def pattern_of(layer_types, where):
    """Smallest N such that layer i is full_attention iff (i + 1) % N == 0."""
    L = len(layer_types)
    for n in range(1, L + 2):
        want = ["full_attention" if (i + 1) % n == 0 else "sliding_attention" for i in range(L)]
        if want == list(layer_types):
            return n
    raise ValueError(f"{where}: layer_types {layer_types} is no periodic sliding/full pattern")


def convert(cfg, where="config"):
    out = {}
    gemma3 = str(cfg.get("model_type", "")).startswith("gemma3")
    for k, v in cfg.items():
        if k == "dtype":
            out["torch_dtype"] = v
        elif k == "rope_parameters":
            if v is None:
                continue
            if gemma3 and all(isinstance(x, dict) for x in v.values()):
                full = v.get("full_attention")
                local = v.get("sliding_attention")
                if full is None:
                    raise ValueError(f"{where}: gemma3 rope_parameters without full_attention")
                theta, scaling, prf = split_rope(full, where)
                out["rope_theta"] = theta
                if local is not None:
                    ltheta, lscaling, _ = split_rope(local, where)
                    if lscaling is not None:
                        raise ValueError(f"{where}: 4.x keys cannot say rope scaling on sliding layers")
                    out["rope_local_base_freq"] = ltheta
                out["rope_scaling"] = scaling
            else:
                theta, scaling, prf = split_rope(v, where)
                out["rope_theta"] = theta
                out["rope_scaling"] = scaling
            if prf is not None and "partial_rotary_factor" not in cfg:
                out["partial_rotary_factor"] = prf
        elif gemma3 and k == "layer_types":
            out["sliding_window_pattern"] = pattern_of(v, where)
        elif gemma3 and k == "_sliding_window_pattern":
            continue
        else:
            out[k] = v
    return out


def main(argv):
    dirs = argv or sorted(os.path.dirname(p) for p in glob.glob(os.path.join(DEFAULT_ROOT, "*", "config.json")))
    if not dirs:
        sys.exit("config-to-v4: no case folders found")
    for d in dirs:
        src = os.path.join(d, "config.json")
        with open(src) as f:
            cfg = json.load(f)
        v4 = convert(cfg, src)
        dst = os.path.join(d, "config.v4.json")
        with open(dst, "w") as f:
            json.dump(v4, f, indent=2)
            f.write("\n")
        print(f"{os.path.relpath(dst)}: " + ", ".join(
            f"{k}={json.dumps(v4[k])}" for k in ("torch_dtype", "rope_theta", "rope_local_base_freq",
                                                 "rope_scaling", "partial_rotary_factor",
                                                 "sliding_window", "sliding_window_pattern") if k in v4))


if __name__ == "__main__":
    main(sys.argv[1:])
