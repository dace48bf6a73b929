#!/usr/bin/env python3
"""Text in, text out through an artifact (no fetched data needed): kiln compile stores the tokenizer files,
EOS ids, chat template and pooling config (TEXT section), kiln inspect shows them, and tokenize / detokenize /
generate / embed on MODEL.kiln agree with the model directory's tokenizer (kiln tokenize DIR, itself checked
against Hugging Face tokenizers in tests/e2e/tokenizer), with kiln chat-template (checked against jinja2), with
the ids path of generate and with kiln run's last_hidden_state pooled here. The Hugging Face references of
generate and embed are tests/e2e/text/text_references.py.
The C example (examples/text.c, libkiln.so) gives the same text and vectors.
The C API's text calls (libkiln.so through ctypes) agree with the CLI.
usage: text_cli.py KILN TESTS_DATA SPM_DIR WORDPIECE_TOKENIZER_JSON WORK_DIR [KILN_TEXT_EXAMPLE [LIBKILN]]"""
import array
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import st  # noqa: E402

kiln, data, spm, wordpiece, work = sys.argv[1:6]
example = sys.argv[6] if len(sys.argv) > 6 else None
libkiln = sys.argv[7] if len(sys.argv) > 7 else None
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def run(*args):
    p = subprocess.run([kiln, *map(str, args)], capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def check(what, ok, detail=""):
    if not ok:
        failures.append(f"{what}: {detail}")
    return ok


def ok_run(*args):
    rc, out, err = run(*args)
    check(f"kiln {' '.join(map(str, args))}", rc == 0, f"rc {rc}: {err.strip()}")
    return out, err


def expect_one_line_error(args, needle):
    rc, out, err = run(*args)
    check(f"kiln {' '.join(map(str, args))}", rc == 1 and err.count("\n") == 1 and needle in err,
          f"rc {rc}, err {err!r} (want exit 1, one line with {needle!r})")


def model_dir(name, source, files):
    d = os.path.join(work, name)
    shutil.copytree(os.path.join(data, source), d)
    for src, dst in files:
        shutil.copy(src, os.path.join(d, dst))
    return d


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)


# ---- a causal LM with a small SentencePiece-style BPE tokenizer (278 tokens + added, inside the 512 vocab) ----
llama = model_dir("llama", "llama-tiny", [(os.path.join(spm, f), f) for f in
                                          ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")])
llama_kiln = os.path.join(work, "llama.kiln")
_, err = ok_run("compile", llama, "-o", llama_kiln)
check("compile reports the tokenizer", "kiln compile: tokenizer: BPE, vocab 281, eos [2], chat template" in err, err)
out, _ = ok_run("inspect", llama_kiln)
check("inspect shows the text section", "\ntext\n  tokenizer     BPE, vocab 281" in out and "stop at ids   [2]" in out, out)
out, _ = ok_run("inspect", llama_kiln, "--json")
doc = json.loads(out or "{}")
check("inspect --json text", doc.get("text", {}).get("eos_token_ids") == [2] and
      doc["text"].get("tokenizer") == "BPE" and doc["text"].get("chat_template_bytes", 0) > 0, doc.get("text"))
check("inspect --json sections", [s["kind"] for s in doc.get("sections", [])] == ["manifest", "code", "weights", "text"],
      doc.get("sections"))

texts = ["hello world", "h\u00e9llo \U0001F600 world", "  hello  ", "<s>hello</s>", ""]
for text in texts:
    for flags in ([], ["--no-special"]):
        a = run("tokenize", llama_kiln, "--text", text, *flags)
        b = run("tokenize", llama, "--text", text, *flags)
        check(f"tokenize MODEL.kiln == MODEL_DIR ({text!r} {flags})", a == b and a[0] == 0, f"{a} vs {b}")
for ids in ("1,271,259,279", "243,162,155,131,271", "2,300,7"):
    for flags in ([], ["--skip-special"], ["--stream"]):
        a = run("detokenize", llama_kiln, "--ids", ids, *flags)
        b = run("detokenize", llama, "--ids", ids, *flags)
        check(f"detokenize MODEL.kiln == MODEL_DIR ({ids} {flags})", a == b and a[0] == 0, f"{a} vs {b}")

# The prompt after the chat template is kiln chat-template's (tested against jinja2).
out, _ = ok_run("generate", llama_kiln, "--chat", "hello world", "--system", "be brief", "--print-prompt")
ref, _ = ok_run("chat-template", llama, "--chat", "hello world", "--system", "be brief", "--add-generation-prompt")
check("--print-prompt --chat == kiln chat-template", out == ref and out != "", f"{out!r} vs {ref!r}")
messages = os.path.join(work, "messages.json")
write_json(messages, [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}])
out, _ = ok_run("generate", llama_kiln, "--messages", messages, "--print-prompt")
check("--print-prompt --messages == --chat", out == ref, f"{out!r} vs {ref!r}")
out, _ = ok_run("generate", llama_kiln, "--prompt", "hello world", "--print-prompt")
check("--print-prompt --prompt", out == "hello world", repr(out))

# Streamed text == detokenize(--skip-special) of the ids the same prompt gives through --ids.
prompt_ids = json.loads(ok_run("tokenize", llama_kiln, "--text", "hello world")[0] or "[]")
ids_out, _ = ok_run("generate", llama_kiln, "--ids", ",".join(map(str, prompt_ids)), "-n", "12", "--ignore-eos")
generated = [int(t) for t in ids_out.split()]
check("generate --ids -n 12", len(generated) == 12, ids_out)
text_out, err = ok_run("generate", llama_kiln, "--prompt", "hello world", "-n", "12", "--ignore-eos")
decoded, _ = ok_run("detokenize", llama_kiln, "--ids", ",".join(map(str, generated)), "--skip-special")
check("generate --prompt streams detokenize(--ids run)", json.dumps(text_out[:-1], ensure_ascii=False) + "\n" == decoded,
      f"{text_out!r} vs {decoded!r}")
check("generate timings", "kiln: load " in err and "prefill 4 tokens" in err and "decode 11 tokens" in err, err)
if example:
    p = subprocess.run([example, llama_kiln, "hello world", "12"], capture_output=True)
    out, _ = ok_run("generate", llama_kiln, "--prompt", "hello world", "-n", "12")
    check("examples/text.c generate == kiln generate", p.returncode == 0 and p.stdout.decode() == out,
          f"{p.returncode} {p.stdout!r} vs {out!r} {p.stderr!r}")
    p = subprocess.run([example, llama_kiln, "--chat", "hello world", "12"], capture_output=True)
    out, _ = ok_run("generate", llama_kiln, "--chat", "hello world", "-n", "12")
    check("examples/text.c --chat == kiln generate --chat", p.returncode == 0 and p.stdout.decode() == out,
          f"{p.returncode} {p.stdout!r} vs {out!r} {p.stderr!r}")
# Stops after --eos, and after the EOS ids of generation_config.json (the artifact's).
out, _ = ok_run("generate", llama_kiln, "--ids", ",".join(map(str, prompt_ids)), "-n", "12", "--eos", str(generated[2]),
                "--ignore-eos")
check("--eos stops after that id", out.split() == [str(t) for t in generated[:generated.index(generated[2]) + 1]], out)
with open(os.path.join(llama, "generation_config.json")) as f:
    gen_config = json.load(f)
gen_config["eos_token_id"] = [generated[3], 509]
write_json(os.path.join(llama, "generation_config.json"), gen_config)
eos_kiln = os.path.join(work, "llama-eos.kiln")
_, err = ok_run("compile", llama, "-o", eos_kiln)
check("compile: eos ids of generation_config.json", f"eos [{generated[3]}, 509]" in err, err)
out, err = ok_run("generate", eos_kiln, "--ids", ",".join(map(str, prompt_ids)), "-n", "12")
check("generate stops at the model's EOS", out.split() == [str(t) for t in generated[:generated.index(generated[3]) + 1]]
      and "stopped at EOS" in err, out + err)
out, _ = ok_run("generate", eos_kiln, "--ids", ",".join(map(str, prompt_ids)), "-n", "12", "--ignore-eos")
check("--ignore-eos", out.split() == [str(t) for t in generated], out)



def check_c_api(lib_path, model_path, model_dir):
    """kiln_tokenize / kiln_detokenize / the stream decoder / kiln_chat_template_apply / kiln_model_eos_ids."""
    lib = ctypes.CDLL(lib_path)
    lib.kiln_last_error.restype = ctypes.c_char_p
    P, I64P = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)
    lib.kiln_free.argtypes = [P]
    model = P()
    check("kiln_model_load", lib.kiln_model_load(model_path.encode(), None, ctypes.byref(model)) == 0, lib.kiln_last_error())
    check("kiln_model_has_tokenizer", lib.kiln_model_has_tokenizer(model) == 1)
    eos, n = I64P(), ctypes.c_size_t()
    lib.kiln_model_eos_ids(model, ctypes.byref(eos), ctypes.byref(n))
    check("kiln_model_eos_ids", [eos[i] for i in range(n.value)] == [2], n.value)
    for text in ("hello world", "h\u00e9llo \U0001F600 world"):
        raw = text.encode()
        ids, count = I64P(), ctypes.c_size_t()
        st = lib.kiln_tokenize(model, raw, len(raw), 1, ctypes.byref(ids), ctypes.byref(count))
        got = [ids[i] for i in range(count.value)]
        lib.kiln_free(ids)
        want = json.loads(run("tokenize", model_dir, "--text", text)[1])
        check(f"kiln_tokenize {text!r}", st == 0 and got == want, f"{st} {got} vs {want}")
        arr = (ctypes.c_int64 * len(got))(*got)
        out = ctypes.c_void_p()
        st = lib.kiln_detokenize(model, arr, len(got), 1, ctypes.byref(out))
        decoded = ctypes.string_at(out).decode() if st == 0 else None
        lib.kiln_free(out)
        want = json.loads(run("detokenize", model_dir, "--ids", ",".join(map(str, got)), "--skip-special")[1])
        check(f"kiln_detokenize {got}", decoded == want, f"{decoded!r} vs {want!r}")
        dec, pieces = P(), []
        lib.kiln_stream_decoder_create(model, 0, ctypes.byref(dec))
        for i in got + [-1]:
            piece = ctypes.c_void_p()
            st = lib.kiln_stream_decoder_step(dec, ctypes.c_int64(i), ctypes.byref(piece)) if i >= 0 else \
                lib.kiln_stream_decoder_finish(dec, ctypes.byref(piece))
            pieces.append(ctypes.string_at(piece).decode() if st == 0 else None)
            lib.kiln_free(piece)
        lib.kiln_stream_decoder_free(dec)
        want = json.loads(run("detokenize", model_dir, "--ids", ",".join(map(str, got)), "--stream")[1])
        check(f"kiln_stream_decoder {got}", pieces == want, f"{pieces} vs {want}")
    bad = b"ab\xffcd"
    ids, count = I64P(), ctypes.c_size_t()
    st = lib.kiln_tokenize(model, bad, len(bad), 1, ctypes.byref(ids), ctypes.byref(count))
    check("kiln_tokenize of invalid UTF-8", st == 1 and b"UTF-8" in lib.kiln_last_error(), lib.kiln_last_error())
    out = ctypes.c_void_p()
    st = lib.kiln_chat_template_apply(model, b'[{"role": "user", "content": "hello world"}]', 1, ctypes.byref(out))
    rendered = ctypes.string_at(out).decode() if st == 0 else None
    lib.kiln_free(out)
    want = run("chat-template", model_dir, "--chat", "hello world", "--add-generation-prompt")[1]
    check("kiln_chat_template_apply", rendered == want, f"{rendered!r} vs {want!r}")
    st = lib.kiln_chat_template_apply(model, b'{"role": 1}', 1, ctypes.byref(out))
    check("kiln_chat_template_apply of a non-list", st == 1 and b"expected a JSON list" in lib.kiln_last_error(),
          lib.kiln_last_error())
    lib.kiln_model_free(model)


if libkiln:
    check_c_api(libkiln, llama_kiln, llama)

# ---- an encoder with a WordPiece tokenizer and a sentence-transformers pooling config ----
with open(wordpiece) as f:
    wp = json.load(f)
wp["padding"] = None  # sentence-transformers pads the batch itself
bert = os.path.join(work, "bert")
shutil.copytree(os.path.join(data, "bert-tiny"), bert)
write_json(os.path.join(bert, "tokenizer.json"), wp)
write_json(os.path.join(bert, "modules.json"), [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
write_json(os.path.join(bert, "1_Pooling", "config.json"), {
    "word_embedding_dimension": 64, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
    "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True})
write_json(os.path.join(bert, "config_sentence_transformers.json"),
           {"prompts": {"query": "hello "}, "default_prompt_name": None})
write_json(os.path.join(bert, "sentence_bert_config.json"), {"max_seq_length": 16, "do_lower_case": False})
bert_kiln = os.path.join(work, "bert.kiln")
_, err = ok_run("compile", bert, "-o", bert_kiln)
check("compile reports the pooling", "tokenizer: WordPiece, vocab 22, eos [], no chat template, pooling mean + normalize" in err, err)
out, _ = ok_run("inspect", bert_kiln)
check("inspect shows the pooling", 'pooling       mean + normalize, max_seq_length 16, prompts {"query":"hello "}' in out, out)

sentences = ["hello world", "the cafe", "a world , hello !", "the"]


def hidden_states(ids_rows):
    """kiln run's last_hidden_state for right-padded rows with their attention mask."""
    seq = max(map(len, ids_rows))
    ids = [r + [0] * (seq - len(r)) for r in ids_rows]
    mask = [[1] * len(r) + [0] * (seq - len(r)) for r in ids_rows]
    inp, outp = os.path.join(work, "in.safetensors"), os.path.join(work, "out.safetensors")
    st.write(inp, {"input_ids": ("I64", [len(ids), seq], array.array("q", sum(ids, []))),
                   "attention_mask": ("I64", [len(ids), seq], array.array("q", sum(mask, [])))})
    ok_run("run", bert_kiln, "--inputs", inp, "--outputs", outp)
    _, shape, values = st.read(outp)["last_hidden_state"]
    return shape, values


def pooled(ids_rows, mode, normalize):
    (B, S, H), values = hidden_states(ids_rows)
    out = []
    for b, row in enumerate(ids_rows):
        vecs = [[values[(b * S + t) * H + d] for d in range(H)] for t in range(len(row))]
        if mode == "mean":
            v = [sum(x[d] for x in vecs) / len(vecs) for d in range(H)]
        elif mode == "max":
            v = [max(x[d] for x in vecs) for d in range(H)]
        else:
            v = vecs[0] if mode == "cls" else vecs[-1]
        n = math.sqrt(sum(x * x for x in v)) if normalize else 1.0
        out.append([x / max(n, 1e-12) for x in v])
    return out


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(len(x) == len(y) and all(abs(p - q) <= tol for p, q in zip(x, y)) for x, y in zip(a, b))


rows = [json.loads(run("tokenize", bert_kiln, "--text", s)[1]) for s in sentences]
for mode, flags, prefix, normalize in (("mean", [], "", True), ("cls", ["--pooling", "cls"], "", True),
                                       ("max", ["--pooling", "max", "--no-normalize"], "", False),
                                       ("last", ["--pooling", "last"], "", True),
                                       ("mean", ["--prefix", "hello "], "hello ", True)):
    out, _ = ok_run("embed", bert_kiln, *sum([["--text", s] for s in sentences], []), "--batch", "3", *flags)
    got = [json.loads(line) for line in out.splitlines()]
    prefixed = [json.loads(run("tokenize", bert_kiln, "--text", prefix + s)[1]) for s in sentences] if prefix else rows
    want = pooled(prefixed, mode, normalize)
    check(f"embed {flags} == kiln run pooled", close(got, want), f"{got} vs {want}")
    if normalize:
        check(f"embed {flags} normalized", all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in got), got)
texts_file = os.path.join(work, "texts.jsonl")
with open(texts_file, "w") as f:
    f.write("\n".join(json.dumps(s) for s in sentences) + "\n")
out_json = os.path.join(work, "emb.json")
ok_run("embed", bert_kiln, "--file", texts_file, "--output", out_json)
by_text, _ = ok_run("embed", bert_kiln, *sum([["--text", s] for s in sentences], []))
with open(out_json) as f:
    check("embed --file --output .json == printed", json.load(f) == [json.loads(l) for l in by_text.splitlines()], "")
out_st = os.path.join(work, "emb.safetensors")
ok_run("embed", bert_kiln, "--file", texts_file, "--output", out_st)
dtype, shape, values = st.read(out_st)["embeddings"]
check("embed --output .safetensors", dtype == "F32" and shape == [4, 64] and
      close([list(values[i * 64:(i + 1) * 64]) for i in range(4)], [json.loads(l) for l in by_text.splitlines()], 1e-6),
      f"{dtype} {shape}")

if example:
    p = subprocess.run([example, bert_kiln, "--embed", *sentences], capture_output=True)
    got = [json.loads(line) for line in p.stdout.decode().splitlines()]
    check("examples/text.c --embed == kiln embed", p.returncode == 0 and close(got, [json.loads(l) for l in by_text.splitlines()], 1e-6),
          f"{p.returncode} {p.stderr!r}")

# ---- errors: one line naming the file / flag ----
plain_kiln = os.path.join(work, "plain.kiln")
_, err = ok_run("compile", os.path.join(data, "llama-tiny"), "-o", plain_kiln)
check("compile without tokenizer.json says so", "kiln compile: no tokenizer: ids only" in err, err)
out, _ = ok_run("inspect", plain_kiln)
check("inspect: no tokenizer", "\ntext\n  no tokenizer: ids only\n" in out, out)
expect_one_line_error(["tokenize", plain_kiln, "--text", "hi"], "no tokenizer")
expect_one_line_error(["generate", plain_kiln, "--prompt", "hi"], "no tokenizer")
_, err = ok_run("generate", llama_kiln, "--prompt", "hi", "-n", "300", "--ignore-eos", "--top-p", "0.5",
                "--temperature", "1")
check("sampling up to the max context", "stopped at the max context" in err, err)
expect_one_line_error(["embed", llama_kiln, "--text", "hi"], "embed needs an encoder")
expect_one_line_error(["generate", bert_kiln, "--prompt", "hi"], "generate needs a causal LM")
# tokenizer.json's own padding (to a multiple of 4 here) does not reach the model: sentence-transformers pads the
# batch itself and masks it.
padded = os.path.join(work, "bert-padded")
shutil.copytree(bert, padded)
with open(wordpiece) as f:
    write_json(os.path.join(padded, "tokenizer.json"), json.load(f))
padded_kiln = os.path.join(work, "bert-padded.kiln")
ok_run("compile", padded, "-o", padded_kiln)
out, _ = ok_run("embed", padded_kiln, *sum([["--text", s] for s in sentences], []))
check("embed ignores tokenizer.json's padding", out == by_text, f"{out!r} vs {by_text!r}")
# Truncated to max_seq_length 16 (special tokens included), as sentence-transformers does.
long_text, _ = ok_run("embed", bert_kiln, "--text", " ".join(["hello"] * 20))
cut_text, _ = ok_run("embed", bert_kiln, "--text", " ".join(["hello"] * 14))
check("embed truncates to max_seq_length", long_text == cut_text and long_text != "", f"{long_text!r} vs {cut_text!r}")
bad_messages = os.path.join(work, "bad.json")
with open(bad_messages, "w") as f:
    f.write('{"role": "user"}')
expect_one_line_error(["generate", llama_kiln, "--messages", bad_messages], "expected a JSON list")
for args in (["generate", llama_kiln], ["generate", llama_kiln, "--prompt", "a", "--chat", "b"],
             ["generate", llama_kiln, "--ids", "1", "--print-prompt"], ["embed", bert_kiln],
             ["embed", bert_kiln, "--text", "a", "--pooling", "sum"]):
    rc, _, _ = run(*args)
    check(f"usage: kiln {' '.join(args)}", rc == 2, f"rc {rc}")
# A corrupted TEXT section: the checksum names it.
with open(llama_kiln, "rb") as f:
    blob = bytearray(f.read())
blob[-10] ^= 0xFF
broken = os.path.join(work, "broken.kiln")
with open(broken, "wb") as f:
    f.write(blob)
expect_one_line_error(["inspect", broken], "text section checksum mismatch")

if failures:
    print(f"{len(failures)} failures:\n" + "\n".join(failures))
    sys.exit(1)
print("text cli: ok")
