"""Seeded random templates for compare_jinja2.py --random: text with spaces, tabs and newlines around tags
with every whitespace-control sign, comments, if / for / set / namespace / macro blocks, and expressions
built from the operators, filters, tests and methods chat templates use, over the variables of
engine_cases.V. Many render; some fail in both engines (type errors, undefined values); all must agree."""
import random

TEXTS = ["", " ", "  ", "\n", "\n\n", " \n ", "\t", "x", " y ", "a\nb", "\n  ", "  \n", "\u00a0", "\r\n"]

from engine_cases import V

# Typed pools keep most random expressions valid (a type error only ends a render, comparing nothing).
STR = ["s", "u", "e", "ws", "'x'", "' a b '", "'Hello'", "msgs[0].content", "d.c.x", "words[0]", "s[::-1]",
       "(u ~ n)", "('a\\nb ' * 2)", "'ΣΑΣ ß ǆ'", "'it\\'s \\\"q\\\" \\\\ \\t\\x41\\u00e9'", "\"dq 'sq'\"",
       "(l | tojson)", "(d | tojson(indent=1))", "(msgs | map(attribute='role') | join('|'))", "s[-3:1:-2]",
       "(words | join)", "u[2:]", "('%s' ~ n)", "(d | dictsort | string)", "(msgs[0] | items | list | string)"]
NUM = ["n", "f", "1", "0", "-3", "2.5", "l[1]", "(n // 2)", "(n % 3)", "(f * 2)", "(2 ** 3)", "(-n)",
       "l | length", "s | length", "(7 / 2)", "1e16", "0.1", "true"]
LIST = ["l", "words", "[1, 'a']", "[]", "msgs", "l[1:]", "words[::-1]", "(l + [9])", "range(3) | list",
        "d.a", "(s.split())", "words | sort", "l | reverse | list"]
ANY = ["t", "z", "nope", "d", "{'k': 1}", "(1, 2)", "msgs[-1]", "d.c", "loop_var", "msgs[-1].content",
       "{'a': [1, (2, 3)], 'b': {'c': none}}", "(1,)", "[[], {}, ()]", "d.get('zz', 'dflt')", "nope.attr is defined"]
STR_FILTERS = ["trim", "upper", "lower", "title", "capitalize", "string", "first", "last", "tojson",
               "default('D')", "default('D', true)", "replace('a', 'b')", "trim('x')", "indent(2)", "center(9)",
               "length", "reverse", "list"]
LIST_FILTERS = ["length", "first", "last", "list", "tojson", "join(', ')", "reverse | list", "sort | list",
                "unique | list", "select | list", "reject('string') | list", "map('string') | join",
                "batch(2) | list", "min", "max", "sum", "selectattr('role', 'equalto', 'user') | list",
                "map(attribute='role') | list", "string"]
TESTS = ["defined", "undefined", "none", "string", "mapping", "iterable", "number", "integer", "sequence",
         "odd", "even", "equalto 1", "in [1, 'x']", "true", "false", "lower", "upper", "divisibleby 2"]
STR_METHODS = ["strip()", "lstrip()", "rstrip('\\n')", "split()", "split('a')", "rsplit(none, 1)",
               "startswith('H')", "endswith('d')", "upper()", "lower()", "title()", "find('o')", "count('l')",
               "replace('l', 'L')", "splitlines()", "partition(' ')", "center(11, '*')", "zfill(6)"]


def typed(rng, kind, depth):
    pool = {"str": STR, "num": NUM, "list": LIST}[kind]
    r = rng.random()
    if depth > 1 or r < 0.45:
        return rng.choice(pool)
    if kind == "str":
        if r < 0.6:
            return f"{typed(rng, 'str', depth + 1)} {rng.choice(['+', '~'])} {typed(rng, 'str', depth + 1)}"
        if r < 0.75:
            return f"({typed(rng, 'str', depth + 1)}).{rng.choice(STR_METHODS)}"
        return f"{typed(rng, 'str', depth + 1)} | {rng.choice(STR_FILTERS)}"
    if kind == "num":
        if r < 0.8:
            return f"{typed(rng, 'num', depth + 1)} {rng.choice(['+', '-', '*', '//', '%'])} {typed(rng, 'num', depth + 1)}"
        return f"{typed(rng, 'num', depth + 1)} | {rng.choice(['abs', 'int', 'float', 'round', 'string'])}"
    return f"{typed(rng, 'list', depth + 1)} | {rng.choice(LIST_FILTERS)}"


def expr(rng, depth=0):
    r = rng.random()
    kind = rng.choice(["str", "num", "list"])
    if r < 0.55:
        return typed(rng, kind, depth)
    if r < 0.65:
        return rng.choice(ANY)
    if r < 0.75:
        return f"{typed(rng, kind, depth + 1)} {rng.choice(['==', '!=', '<', '>=', 'in', 'not in'])} {typed(rng, kind, depth + 1)}"
    if r < 0.85:
        return f"{expr(rng, depth + 1)} is {rng.choice(['', 'not '])}{rng.choice(TESTS)}"
    if r < 0.93:
        return f"{expr(rng, depth + 1)} if {expr(rng, depth + 1)} else {expr(rng, depth + 1)}"
    return f"{rng.choice(['not ', ''])}{expr(rng, depth + 1)} {rng.choice(['and', 'or'])} {expr(rng, depth + 1)}"


def tag(rng, body):
    return "{%" + rng.choice(["", "-", "+"]) + " " + body + " " + rng.choice(["", "-", "+"]) + "%}"


def output(rng):
    return "{{" + rng.choice(["", "-", "", "+"]) + " " + expr(rng) + " " + rng.choice(["", "-"]) + "}}"


def block(rng, depth):
    pad = lambda: rng.choice(TEXTS)
    r = rng.random()
    if depth > 1 or r < 0.35:
        return pad() + output(rng) + pad()
    if r < 0.45:
        return pad() + "{#" + rng.choice(["", "-"]) + " c " + rng.choice(["", "-"]) + "#}" + pad()
    inner = lambda: "".join(block(rng, depth + 1) for _ in range(rng.randint(1, 2)))
    if r < 0.65:
        out = pad() + tag(rng, "if " + expr(rng)) + inner()
        if rng.random() < 0.4:
            out += pad() + tag(rng, "elif " + expr(rng)) + inner()
        if rng.random() < 0.4:
            out += pad() + tag(rng, "else") + inner()
        return out + pad() + tag(rng, "endif") + pad()
    if r < 0.82:
        seq = rng.choice(["l", "words", "msgs", "s", "d", "range(3)", "[]", "nope", "l | reverse", "msgs[::-1]"])
        cond = " if " + expr(rng) if rng.random() < 0.2 else ""
        body = inner() + rng.choice(["", "{{ loop.index }}", "{{ loop.first }}{{ loop.last }}",
                                     "{% set ns.c = ns.c + 1 %}", "{% if loop_var == 1 %}{% break %}{% endif %}",
                                     "{{ loop.cycle('o', 'e') }}", "[{{ loop.previtem }}|{{ loop.nextitem }}]",
                                     "{% if loop.index is even %}{% continue %}{% endif %}{{ loop.revindex }}"])
        tail = pad() + tag(rng, "else") + inner() if rng.random() < 0.2 else ""
        return (pad() + "{% set ns = namespace(c=0) %}" + tag(rng, f"for loop_var in {seq}{cond}") + body + tail +
                pad() + tag(rng, "endfor") + "{{ ns.c }}" + pad())
    if r < 0.86:
        return pad() + tag(rng, f"set v{depth} = {expr(rng)}") + pad() + "{{ v%d }}" % depth + pad()
    if r < 0.88:
        return pad() + tag(rng, f"set v{depth}") + inner() + tag(rng, "endset") + pad() + "[{{ v%d }}]" % depth
    if r < 0.90:
        return pad() + tag(rng, f"with w = {expr(rng)}") + inner() + "{{ w }}" + tag(rng, "endwith") + pad()
    if r < 0.92:
        return pad() + tag(rng, rng.choice(["filter upper", "filter trim", "filter title"])) + inner() + \
            tag(rng, "endfilter") + pad()
    if r < 0.93:
        return pad() + tag(rng, "raw") + pad() + "{{ raw }}{% x %}" + pad() + tag(rng, "endraw") + pad()
    return (pad() + tag(rng, f"macro mac{depth}(a, b='B')") + inner() + "{{ a }}{{ b }}" + tag(rng, "endmacro") +
            "{{ mac%d(%s) }}" % (depth, expr(rng)) + pad())


def random_templates(count, seed):
    rng = random.Random(seed)
    return [("".join(block(rng, 0) for _ in range(rng.randint(1, 3))), V) for _ in range(count)]
