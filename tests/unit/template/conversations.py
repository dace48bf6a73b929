"""The conversations the real chat templates are rendered with (each with add_generation_prompt off and on):
system / user / assistant turns, multi-turn, assistant-last, roles out of order, special characters, unicode,
empty and whitespace-only content, special-token strings inside content, Gemma 3's content parts, Qwen3's
thinking / tool calls / tools, plus seeded random mixes of all of these.

conversations() returns a list of (messages, extra_variables); the first CORPUS_SUBSET (the handpicked ones)
are the ones the broader corpus comparison uses.
"""
import random


TEXTS = [
    "Hello!",
    "What is the capital of France?",
    "  leading and trailing spaces  ",
    "\n\nnewlines around\n\n",
    "tabs\tinside\tand\r\nCRLF\rCR",
    "",
    "   ",
    "quotes ' \" and backslashes \\ \\n (literal)",
    "jinja syntax in content: {{ messages }} {% if x %} {# c #} }} %}",
    "<b>HTML</b> &amp; <script>alert('x')</script>",
    "JSON {\"a\": [1, 2, {\"b\": null}]}",
    "unicode: héllo wörld, 日本語テキスト, Ελληνικά, русский, עברית, العربية",
    "emoji 👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽 and flags 🇫🇷",
    "combining: e\u0301 a\u0308 and NBSP\u00a0here, ideographic space\u3000end",
    "\u3000\u00a0unicode whitespace around\u2028\u2029\u00a0",
    "line separator\u2028paragraph\u2029zero width\u200bjoiner\u200d",
    "special tokens inside: <|eot_id|> <start_of_turn> <|im_end|> [INST] </s> <bos>",
    "code:\n```python\ndef f(x):\n    return {'k': x}\n```\n",
    "a very long message " * 40,
    "numbers 0123456789 3.14159 -42 1e10",
    "Σίσυφος ΣΑΣ final sigma and ß ﬁ ligatures",
    "<think>\nI should greet.\n</think>\n\nHi there.",
    "\x1f control \x07 chars \x00 null",
]

SYSTEMS = ["You are a helpful assistant.", "", "  Be brief.  \n", "Antworte auf Deutsch. 🇩🇪"]


def turns(texts, first_role="user"):
    roles = ["user", "assistant"] if first_role == "user" else ["assistant", "user"]
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]


def handpicked():
    convs = []
    for t in TEXTS:  # one user turn each
        convs.append(([{"role": "user", "content": t}], {}))
    convs += [
        ([{"role": "system", "content": SYSTEMS[0]}, {"role": "user", "content": "Hi"}], {}),
        (turns(["Hi", "Hello! How can I help?", "Tell me a joke."]), {}),
        ([{"role": "system", "content": SYSTEMS[2]}] + turns(["Hi", "Hello!", "Bye", "Goodbye!"]), {}),
        (turns(["Hi", "Hello!"]), {}),  # assistant last
        (turns(TEXTS[:9]), {}),
        ([{"role": "system", "content": SYSTEMS[3]}] + turns(TEXTS[9:16]), {}),
        ([{"role": "system", "content": "only a system message"}], {}),
        ([], {}),
        (turns(["Hi", "again, user twice"], "user")[:1] + [{"role": "user", "content": "again"}], {}),
        (turns(["assistant first", "then user"], "assistant"), {}),
        ([{"role": "user", "content": "Hi"}, {"role": "tool", "content": "tool output"}], {}),
        ([{"role": "system", "content": ""}, {"role": "user", "content": ""}], {}),
        ([{"role": "developer", "content": "unknown role"}, {"role": "user", "content": "Hi"}], {}),
        # Gemma 3: content as a list of parts.
        ([{"role": "user", "content": [{"type": "text", "text": "  parts  "}, {"type": "text", "text": "two"}]}], {}),
        ([{"role": "system", "content": [{"type": "text", "text": "System in parts."}]},
          {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
          {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}], {}),
        # Qwen3: thinking, reasoning_content, tools and tool calls.
        (turns(["Hi", "<think>\nplan\n</think>\n\nHello!", "And now?"]), {}),
        (turns(["Hi", "<think>\nlast turn thinking\n</think>\n\nDone."]), {}),
        ([{"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Answer", "reasoning_content": "  because  "}], {}),
        (turns(["Hi"]), {"enable_thinking": False}),
        (turns(["Hi"]), {"enable_thinking": True}),
        ([{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Paris?"},
          {"role": "assistant", "content": "",
           "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                            "arguments": {"city": "Paris", "unit": "°C"}}}]},
          {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "second result"},
          {"role": "assistant", "content": "It is 21.5 °C."}],
         {"tools": [{"type": "function", "function": {
             "name": "get_weather", "description": "Weather for a city ✓",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                             "unit": {"type": "string", "enum": ["°C", "°F"]}},
                            "required": ["city"]}}}]}),
        ([{"role": "user", "content": "call it"},
          {"role": "assistant", "content": "Calling.",
           "tool_calls": [{"name": "f", "arguments": "{\"raw\": \"string args\"}"},
                          {"name": "g", "arguments": {"n": 1, "x": [1.5, True, None]}}]}], {}),
        ([{"role": "user", "content": "<tool_response>\nr\n</tool_response>"}], {}),
        ([{"role": "user", "content": "weather?"},
          {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}], {}),
        ([{"role": "user", "content": 42, "name": "extra key", "metadata": {"x": [1, 2]}}], {}),
        ([{"role": "user"}], {}),
    ]
    return convs


def random_conversations(count, seed):
    rng = random.Random(seed)
    convs = []
    for _ in range(count):
        n = rng.randint(1, 7)
        texts = [rng.choice(TEXTS) + ("" if rng.random() < 0.5 else " " + rng.choice(TEXTS)) for _ in range(n)]
        conv = turns(texts)
        if rng.random() < 0.5:
            conv.insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
        if rng.random() < 0.1 and len(conv) > 2:  # an occasional out-of-order role
            conv[-1] = dict(conv[-1], role=rng.choice(["user", "assistant", "system"]))
        convs.append((conv, {}))
    return convs


def conversations():
    return handpicked() + random_conversations(60, seed=12)


CORPUS_SUBSET = len(handpicked())
