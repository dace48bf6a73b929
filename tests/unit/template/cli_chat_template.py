#!/usr/bin/env python3
"""kiln chat-template against jinja2 on the real templates (a few conversations each, as transformers'
apply_chat_template renders them), and its exit codes: 0 rendered, 1 bad file / template error (one line),
2 usage.

usage: cli_chat_template.py KILN FETCH_SCRIPT    (exit 77: the npm registry is unreachable, skipped)
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_jinja2  # noqa: E402
import conversations  # noqa: E402


def main():
    kiln, fetch = sys.argv[1], sys.argv[2]
    proc = subprocess.run(["bash", fetch], capture_output=True, text=True)
    if proc.returncode == 77:
        print("skipped: the npm registry is unreachable")
        sys.exit(77)
    if proc.returncode != 0:
        sys.exit(f"cli_chat_template.py: {fetch} failed: {proc.stderr.strip()}")
    data = proc.stdout.strip().splitlines()[-1]
    env = compare_jinja2.make_environment()
    failures, checked = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        messages_file = os.path.join(tmp, "messages.json")
        for name in ("llama3", "gemma3", "qwen3", "mistral"):
            model = os.path.join(data, name)
            for conv, extra in conversations.conversations()[::16]:
                if extra:
                    continue
                with open(messages_file, "w", encoding="utf-8") as f:
                    json.dump(conv, f, ensure_ascii=False)
                for agp in (False, True):
                    case = {"config": os.path.join(model, "tokenizer_config.json"), "messages": conv,
                            "add_generation_prompt": agp, "now": compare_jinja2.NOW}
                    ok, text, raised = compare_jinja2.jinja2_render(env, case)
                    cmd = [kiln, "chat-template", model, "--messages", messages_file,
                           "--now", str(compare_jinja2.NOW)] + (["--add-generation-prompt"] if agp else [])
                    r = subprocess.run(cmd, capture_output=True)
                    checked += 1
                    stderr = r.stderr.decode("utf-8", "replace")
                    if ok and (r.returncode != 0 or r.stdout.decode("utf-8") != text):
                        failures.append(f"{name} agp={agp}: rc {r.returncode} {stderr.strip()!r}")
                    elif not ok and (r.returncode != 1 or stderr.count("\n") != 1 or
                                     (raised and f"raise_exception: {raised}" not in stderr)):
                        failures.append(f"{name} agp={agp}: expected one-line error, got rc {r.returncode} {stderr!r}")
        bad = [([kiln, "chat-template", os.path.join(tmp, "missing"), "--chat", "x"], 1),
               ([kiln, "chat-template", os.path.join(data, "qwen3"), "--messages", messages_file, "--chat", "x"], 2),
               ([kiln, "chat-template", os.path.join(data, "qwen3")], 2),
               ([kiln, "chat-template", os.path.join(data, "qwen3"), "--chat", "x", "--bogus"], 2),
               ([kiln, "chat-template", os.path.join(data, "qwen3"), "--chat", "x", "--template", "nope"], 1)]
        for cmd, code in bad:
            r = subprocess.run(cmd, capture_output=True, text=True)
            checked += 1
            if r.returncode != code or r.stderr.count("\n") != 1 or not r.stderr.startswith("kiln: "):
                failures.append(f"{cmd[2:]}: expected exit {code} with one line, got {r.returncode} {r.stderr!r}")
    for f in failures:
        print("FAILED", f)
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
