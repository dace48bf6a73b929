#!/usr/bin/env python3
"""kiln tokenize / detokenize: outputs on a small tokenizer (tests/unit/tokenizer/data/spm, ids checked against
Hugging Face tokenizers) and the exit-code contract (0 ok, 1 bad input with one line naming it, 2 usage).
usage: cli.py KILN SPM_DIR WORK_DIR"""
import json
import os
import subprocess
import sys

kiln, spm, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
failures = []


def run(*args, stdin=None):
    p = subprocess.run([kiln, *args], capture_output=True, input=stdin)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def expect(args, rc, out=None, err=None):
    got_rc, got_out, got_err = run(*args)
    ok = got_rc == rc and (out is None or got_out == out) and (err is None or err in got_err)
    if rc == 1 and got_err.count("\n") != 1:
        ok = False  # bad input: one line (usage errors, exit 2, add the usage text)
    if not ok:
        failures.append(f"kiln {' '.join(map(str, args))}: rc {got_rc} (want {rc})\n  out: {got_out!r}\n  err: {got_err!r}")


def write(name, lines):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(lines)
    return path


texts = write("texts.jsonl", (json.dumps("hello world") + "\n\n" + json.dumps("h\u00e9llo \U0001F600") + "\r\n").encode())
ids = write("ids.jsonl", b"[1,271,259,279]\n[]\n[243,162,155,131,271]\n")
expect(["tokenize", spm, "--text", "hello world"], 0, "[1,271,259,279]\n")
expect(["tokenize", spm, "--text", "hello world", "--no-special"], 0, "[271,259,279]\n")
expect(["tokenize", spm, "--file", texts], 0, "[1,271,259,279]\n[1,267,272,270,259,243,162,155,131]\n")
expect(["detokenize", spm, "--ids", "1,271,259,279"], 0, '"<s> hello world"\n')
expect(["detokenize", spm, "--ids", "1,271,259,279", "--skip-special"], 0, '"hello world"\n')
expect(["detokenize", spm, "--file", ids], 0, '"<s> hello world"\n""\n"\U0001F600 hello"\n')
expect(["detokenize", spm, "--file", ids, "--stream", "--skip-special"], 0,
       '["","hello"," ","world",""]\n[""]\n["","","","","\U0001F600 hello",""]\n')
expect(["detokenize", spm, "--ids", "0"], 0, '"<unk>"\n')
for command in ("tokenize", "detokenize"):
    expect([command, "--help"], 0)
    expect([command], 2)
    expect([command, spm], 2, err="give exactly one of")
    expect([command, spm, "--file", texts, "--bogus"], 2, err="unknown option --bogus")
expect(["tokenize", spm, "--text", "a", "--file", texts], 2)
expect(["detokenize", spm, "--ids", "1,x"], 2, err="--ids: expected ids")
expect(["detokenize", spm, "--ids", "4294967296"], 2, err="--ids: expected ids")
expect(["tokenize", "/nonexistent", "--text", "a"], 1, err="kiln: /nonexistent: no such file or directory")
expect(["tokenize", os.path.join(spm, "tokenizer.json"), "--text", "a"], 1, err="expected a model directory or a .kiln artifact")
expect(["tokenize", work, "--text", "a"], 1, err=os.path.join(work, "tokenizer.json"))
expect(["tokenize", spm, "--file", write("bad.jsonl", b'"ok"\n[1]\n')], 1, err="bad.jsonl:2: expected a JSON string")
expect(["tokenize", spm, "--file", write("badjson.jsonl", b'"unterminated\n')], 1, err="badjson.jsonl:1:")
expect(["detokenize", spm, "--file", write("badids.jsonl", b'[1, -2]\n')], 1, err="badids.jsonl:1: expected a JSON array")
expect(["tokenize", spm, "--file", os.path.join(work, "missing.jsonl")], 1, err="missing.jsonl")
broken = os.path.join(work, "broken")
os.makedirs(broken, exist_ok=True)
with open(os.path.join(broken, "tokenizer.json"), "w") as f:
    json.dump({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled"}}, f)
expect(["tokenize", broken, "--text", "a"], 1, err="tokenizer.json: normalizer: unsupported normalizer type 'Precompiled'")
# Invalid UTF-8 in --text (argv is bytes): refused with the offset.
p = subprocess.run([kiln.encode(), b"tokenize", spm.encode(), b"--text", b"ab\xff"], capture_output=True)
if p.returncode != 1 or b"not valid UTF-8 (byte 2)" not in p.stderr:
    failures.append(f"invalid UTF-8 --text: rc {p.returncode}, err {p.stderr!r}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("tokenize / detokenize CLI: all checks passed")
