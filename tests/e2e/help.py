#!/usr/bin/env python3
"""Honest help: every command has --help, every flag it accepts is in it, and the README's CLI section agrees.

usage: help.py KILN SOURCE_DIR

Checks, for each command `kiln --help` lists:
- `kiln CMD --help` exits 0 with the help on stdout and nothing on stderr;
- every flag the help lists is accepted by the parser (`kiln CMD FLAG [VALUE] --no-such-flag` names only
  --no-such-flag as unknown), and a flag the help does not list is a usage error (exit 2, one line);
- every flag the command's source reads (args.get / args.has in tools/kiln/*.cpp) is in its help;
- the README's CLI block for the command names exactly the help's flags;
and that every environment variable the runtime and tools read (getenv) is in some command's help, and that
`kiln --version` names the source tree's current git revision and the artifact format version.
"""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402

# The commands each source file implements (its args.get / args.has calls are checked against their help).
SOURCES = {"Compile.cpp": ["compile"], "Eval.cpp": ["eval"], "Synth.cpp": ["synth"], "Run.cpp": ["run"],
           "Generate.cpp": ["generate"], "Embed.cpp": ["embed"], "Bench.cpp": ["bench"], "Inspect.cpp": ["inspect"],
           "Devices.cpp": ["devices"], "ChatTemplate.cpp": ["chat-template"],
           "Tokenize.cpp": ["tokenize", "detokenize"]}


def run(kiln, *args):
    p = subprocess.run([kiln, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def commands(kiln):
    rc, out, err = run(kiln, "--help")
    check(rc == 0 and not err, f"kiln --help: rc {rc}, stderr {err!r}")
    names = []
    for line in out.splitlines():
        m = re.match(r"  kiln ([a-z][a-z-]*)", line)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    check(len(names) >= 6, f"kiln --help lists commands: {names}")
    return names


def help_flags(kiln, name):
    """The flags of `kiln NAME --help`'s options section: {flag: takes_value}."""
    rc, out, err = run(kiln, name, "--help")
    check(rc == 0 and out and not err, f"kiln {name} --help: rc {rc}, stderr {err!r}")
    rc2, out2, _ = run(kiln, name, "-h")
    check(rc2 == 0 and out2 == out, f"kiln {name} -h is --help")
    flags, section = {}, None
    for line in out.splitlines():
        if line in ("options:", "environment:"):
            section = line
            continue
        if section == "options:" and line.startswith("  "):
            words = line.split()
            if words[0] == "-h,":
                continue
            takes_value = len(line) > 29 and line[2:28].strip() != words[0]
            flags[words[0]] = takes_value
    check(flags or name == "inspect", f"kiln {name} --help lists options")
    return flags, out


def check_parser(kiln, name, flags):
    for flag, takes_value in flags.items():
        args = [name, flag] + (["1"] if takes_value else []) + ["--no-such-flag"]
        rc, out, err = run(kiln, *args)
        check(rc == 2 and "unknown option --no-such-flag" in err and err.count("\n") == 1,
              f"kiln {' '.join(args)}: the parser accepts {flag} (rc {rc}, {err.strip()!r})")
    rc, out, err = run(kiln, name, "--undocumented")
    check(rc == 2 and err.count("\n") == 1 and "--undocumented" in err and f"kiln {name} --help" in err,
          f"kiln {name} --undocumented: exit 2 with one line (rc {rc}, {err!r})")


def check_sources(source, flags_of):
    """Every flag a command's source reads is in its help; every tools/kiln/*.cpp with a command is known."""
    for path in glob.glob(os.path.join(source, "tools", "kiln", "*.cpp")):
        f = os.path.basename(path)
        text = open(path).read()
        if "parseArgs(argc" not in text:
            continue
        check(f in SOURCES, f"tools/kiln/{f} parses a command's flags; add it to help.py's SOURCES")
        documented = set()
        for name in SOURCES.get(f, []):
            check(name in flags_of, f"kiln --help does not list {name} (tools/kiln/{f})")
            documented |= set(flags_of.get(name, {}))
        for flag in set(re.findall(r'args\.(?:get|has)\("([^"]+)"\)', text)):
            check(flag in documented, f"{f} reads {flag} but kiln {'/'.join(SOURCES.get(f, []))} --help does not list it")


def synopses(lines):
    """The synopses among `lines`: each "kiln NAME ..." line joined with its continuation lines (indented by
    more than the 4 spaces of a description), whitespace normalized."""
    out, current = [], None
    for line in lines:
        if re.match(r"kiln[ -]", line):
            current = [line]
            out.append(current)
        elif current is not None and re.match(r"     +\S", line):
            current.append(line)
        else:
            current = None
    return [" ".join(" ".join(c).split()) for c in out]


def readme_synopses(source):
    """The synopses of the README's CLI section (its first code block)."""
    text = open(os.path.join(source, "README.md")).read()
    cli = text[text.index("## CLI"):]
    cli = cli[cli.index("```") + 3:]
    return synopses(cli[:cli.index("```")].splitlines())


def help_synopses(text):
    lines = []
    for line in text.splitlines():
        if not line.strip():
            break
        lines.append(re.sub(r"^(usage:)? +kiln", "kiln", line) if re.match(r"(usage:)? +kiln ", line) else line)
    return synopses(lines)


def check_readme(readme, name, text, flags):
    """The README's CLI section shows exactly the help's synopses for the command."""
    mine = help_synopses(text)
    check(mine, f"kiln {name} --help starts with its synopses")
    words = set(" ".join(mine).replace("[", " ").replace("]", " ").replace("(", " ").replace("|", " ").split())
    for flag in flags:
        check(flag in words or flag + "=ir" in words, f"kiln {name} --help's synopsis lacks {flag}")
    theirs = [s for s in readme if s.startswith(f"kiln {name} ")]
    for s in mine:
        check(s in theirs, f"README's CLI section lacks kiln {name}'s synopsis as --help gives it: {s}")
    for s in theirs:
        check(s in mine, f"README's CLI section has a synopsis kiln {name} --help does not: {s}")


def check_env(source, helps):
    documented = "\n".join(helps)
    for path in glob.glob(os.path.join(source, "runtime", "**", "*.cpp"), recursive=True) + \
            glob.glob(os.path.join(source, "tools", "kiln", "*.cpp")):
        # getenv and runtime/src/Environment.h's readers
        for var in set(re.findall(r'(?:getenv|envFlag|envIs|envCount)\("([A-Z_]+)"', open(path).read())):
            check(re.search(rf"^  {var} ", documented, re.M) is not None,
                  f"{os.path.relpath(path, source)} reads {var}, which no command's --help lists")
    for var in ("KILN_PROFILE", "KILN_VULKAN_DEVICE", "VK_DRIVER_FILES"):
        check(var in documented, f"{var} in the runtime commands' --help")


def check_version(kiln, source):
    rc, out, err = run(kiln, "--version")
    m = re.fullmatch(r"kiln (\S+) \(git ([0-9a-f]{12}|unknown)\), artifact format version (\d+)(, [a-z -]+)?\n", out)
    check(rc == 0 and m is not None and not err, f"kiln --version: {out!r}")
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=source, capture_output=True, text=True)
    if m and head.returncode == 0:
        check(m.group(2) == head.stdout.strip(),
              f"kiln --version says git {m.group(2)}, the source is at {head.stdout.strip()} (stale build?)")
    fmt = re.search(r"kFormatVersion = (\d+);",
                    open(os.path.join(source, "artifact", "include", "kiln", "artifact", "ArtifactFormat.h")).read())
    if m and fmt:
        check(m.group(3) == fmt.group(1), f"kiln --version's format version {m.group(3)} != {fmt.group(1)}")


def main():
    kiln, source = sys.argv[1], sys.argv[2]
    names = commands(kiln)
    readme = readme_synopses(source)
    helps, flags_of = [], {}
    for name in names:
        flags, text = help_flags(kiln, name)
        helps.append(text)
        check_parser(kiln, name, flags)
        flags_of[name] = flags
        check_readme(readme, name, text, flags)
    check_sources(source, flags_of)
    check_env(source, helps)
    check_version(kiln, source)
    rc, out, err = run(kiln, "no-such-command")
    check(rc == 2 and err.count("\n") == 1, f"kiln no-such-command: exit 2, one line ({rc}, {err!r})")
    return summary(f"{len(names)} commands checked")


if __name__ == "__main__":
    sys.exit(main())
