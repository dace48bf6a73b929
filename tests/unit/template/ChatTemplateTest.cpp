// The chat-template API: parsing and rendering, errors that name the template line, the bounds on runaway
// templates, the JSON value type and the tokenizer_config.json reader. (Rendering semantics are compared with
// Python's jinja2 by compare_jinja2.py.)
#include "kiln/template/ChatTemplate.h"

#include <gtest/gtest.h>

namespace {

using kiln::ChatTemplate;
using kiln::ChatTemplateConfig;
using kiln::ChatTemplateOptions;
using kiln::TemplateValue;

kiln::StatusOr<std::string> render(const std::string &text, const TemplateValue &messages = TemplateValue::list({}),
                                   const ChatTemplateOptions &options = {}) {
  auto t = ChatTemplate::parse(text);
  if (!t.ok())
    return t.status();
  return t->render(messages, options);
}

std::string errorOf(const kiln::StatusOr<std::string> &r) { return r.ok() ? "no error: " + *r : r.status().message(); }

TEST(ChatTemplate, RendersMessagesAndOptions) {
  const char *llama3Like = "{% for m in messages %}<|{{ m.role }}|>{{ m['content'] | trim }}{% endfor %}"
                           "{% if add_generation_prompt %}<|assistant|>{% endif %}{{ bos_token }}";
  ChatTemplateOptions options;
  options.addGenerationPrompt = true;
  options.variables = {{"bos_token", "<s>"}};
  auto out = render(llama3Like, kiln::messagesValue({{"system", " Be brief. "}, {"user", "Hi"}}), options);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "<|system|>Be brief.<|user|>Hi<|assistant|><s>");
  options.addGenerationPrompt = false;
  EXPECT_EQ(*render(llama3Like, kiln::messagesValue({{"user", "x"}}), options), "<|user|>x<s>");
}

TEST(ChatTemplate, TransformersDefaults) {
  // tools and documents are None, not undefined; unknown names are undefined and print as nothing.
  EXPECT_EQ(*render("{{ tools }}|{{ documents }}|{{ nothing }}|{{ tools is defined }}"), "None|None||True");
  ChatTemplateOptions options;
  options.variables = {{"tools", TemplateValue::list({TemplateValue::object({{"name", "f"}})})}};
  EXPECT_EQ(*render("{{ tools | tojson }}", TemplateValue::list({}), options), "[{\"name\": \"f\"}]");
}

TEST(ChatTemplate, ParseErrorsNameTheLine) {
  EXPECT_EQ(errorOf(render("a\n{% if x %}\nb\n{% endfor %}")), "chat_template line 4: unknown tag 'endfor'");
  EXPECT_EQ(errorOf(render("\n\n{{ x | nosuch }}")),
            "chat_template line 3: no filter named 'nosuch' (or it is not supported)");
  EXPECT_EQ(errorOf(render("{{ x is nosuch }}")), "chat_template line 1: no test named 'nosuch' (or it is not supported)");
  EXPECT_EQ(errorOf(render("x\n{% include 'a' %}")),
            "chat_template line 2: the 'include' tag is not supported in chat templates");
  auto named = ChatTemplate::parse("{{ (", "tokenizer_config.json chat_template");
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.status().message().rfind("tokenizer_config.json chat_template line 1: ", 0), 0u)
      << named.status().message();
  EXPECT_EQ(errorOf(render("ok \xff\xfe")), "chat_template: the template is not valid UTF-8");
}

TEST(ChatTemplate, RenderErrorsNameTheLine) {
  EXPECT_EQ(errorOf(render("line 1\n{{ 1 + 'a' }}")),
            "chat_template line 2: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(errorOf(render("\n{{ raise_exception('Conversation roles must alternate') }}")),
            "chat_template line 2: raise_exception: Conversation roles must alternate");
  EXPECT_EQ(errorOf(render("{{ messages[0]['role'] }}")), "chat_template line 1: 'list object' has no attribute "
                                                          "or item 0");
}

TEST(ChatTemplate, BoundsRunawayTemplates) {
  ChatTemplateOptions options;
  options.limits.maxSteps = 100000;
  std::string loops = errorOf(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                                     "{% endfor %}", TemplateValue::list({}), options));
  EXPECT_NE(loops.find("exceeded its budget of 100000 steps"), std::string::npos) << loops;
  options.limits.maxOutputBytes = 1 << 20;
  std::string big = errorOf(render("{% for i in range(1000) %}{{ 'x' * 10000 }}{% endfor %}", TemplateValue::list({}),
                                   options));
  EXPECT_NE(big.find("more than 1048576 bytes"), std::string::npos) << big;
  std::string huge = errorOf(render("{{ 'x' * 100000000000 }}"));
  EXPECT_NE(huge.find("bytes in one string"), std::string::npos) << huge;
  std::string recursion = errorOf(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"));
  EXPECT_NE(recursion.find("macro calls nest deeper than"), std::string::npos) << recursion;
  std::string nested = errorOf(render("{{ " + std::string(500, '[') + std::string(500, ']') + " }}"));
  EXPECT_NE(nested.find("nests deeper than"), std::string::npos) << nested;
  std::string growing = errorOf(render("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}"
                                       "{% set ns.x = [ns.x] %}{% endfor %}"));
  EXPECT_NE(growing.find("a value nests deeper than"), std::string::npos) << growing;
  std::string viaGenerators = errorOf(render("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}"
                                             "{% set ns.x = [ns.x] | batch(1) %}{% endfor %}"));
  EXPECT_NE(viaGenerators.find("a value nests deeper than"), std::string::npos) << viaGenerators;
  // Quadratic copying (a list or string rebuilt every iteration) is charged to the step budget too.
  std::string quadratic = errorOf(render("{% set ns = namespace(l=[], s='') %}{% for i in range(100000) %}"
                                         "{% set ns.l = ns.l + [i] %}{% endfor %}"));
  EXPECT_NE(quadratic.find("exceeded its budget"), std::string::npos) << quadratic;
  std::string strings = errorOf(render("{% set ns = namespace(s='') %}{% for i in range(100000) %}"
                                       "{% set ns.s = ns.s ~ 'abcdefghijklmnopqrstuvwxyz0123456789' %}{% endfor %}"));
  EXPECT_NE(strings.find("exceeded its budget"), std::string::npos) << strings;
  std::string cycle = errorOf(render("{% set ns = namespace() %}{% set ns.me = ns %}"));
  EXPECT_NE(cycle.find("inside a namespace is not supported"), std::string::npos) << cycle;
}

TEST(ChatTemplate, StrftimeNowUsesTheGivenClock) {
  ChatTemplateOptions options;
  options.now = 1751371200; // 2025-07-01 12:00 UTC: the same date in every time zone
  EXPECT_EQ(*render("{{ strftime_now('%Y-%m-%d') }}", TemplateValue::list({}), options), "2025-07-01");
}

TEST(TemplateValue, FromJsonKeepsPythonSemantics) {
  auto v = TemplateValue::fromJson(R"({"b": 1, "a": [1.5, true, null, "x"], "b": 2, "big": 9007199254740993})",
                                   "test.json");
  ASSERT_TRUE(v.ok()) << v.status().message();
  ASSERT_EQ(v->members().size(), 3u); // a repeated key keeps its first position and its last value
  EXPECT_EQ(v->members()[0].first, "b");
  EXPECT_EQ(v->find("b")->asInt(), 2);
  EXPECT_EQ(v->find("a")->items()[0].kind(), TemplateValue::Kind::Float);
  EXPECT_EQ(v->find("big")->asInt(), 9007199254740993);
  EXPECT_EQ(*render("{{ messages }}", *v), "{'b': 2, 'a': [1.5, True, None, 'x'], 'big': 9007199254740993}");
  auto bad = TemplateValue::fromJson("{\"a\": ", "messages.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "messages.json: not valid JSON");
  auto tooBig = TemplateValue::fromJson("[18446744073709551615]", "m.json");
  ASSERT_FALSE(tooBig.ok());
  EXPECT_NE(tooBig.status().message().find("larger than 64 bits"), std::string::npos);
}

TEST(ChatTemplateConfig, ReadsTemplatesAndSpecialTokens) {
  auto c = ChatTemplateConfig::fromTokenizerConfig(
      R"({"chat_template": "{{ bos_token }}", "bos_token": {"content": "<s>", "__type": "AddedToken"},
          "eos_token": "</s>", "pad_token": null, "unk_token": "",
          "additional_special_tokens": ["<a>", {"content": "<b>"}],
          "extra_special_tokens": {"image_token": "<img>"}})",
      "tokenizer_config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_NE(c->find("default"), nullptr);
  EXPECT_EQ(*c->find("default"), "{{ bos_token }}");
  std::vector<std::string> names;
  for (const auto &t : c->specialTokens)
    names.push_back(t.first);
  EXPECT_EQ(names, (std::vector<std::string>{"bos_token", "eos_token", "additional_special_tokens", "image_token"}));
  EXPECT_EQ(c->specialTokens[0].second.asString(), "<s>");
  EXPECT_EQ(c->specialTokens[2].second.items()[1].asString(), "<b>");

  auto named = ChatTemplateConfig::fromTokenizerConfig(
      R"({"chat_template": [{"name": "default", "template": "d"}, {"name": "tool_use", "template": "t"}]})", "c.json");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(*named->find("default"), "d");
  EXPECT_EQ(*named->find("tool_use"), "t");
  EXPECT_EQ(named->find("rag"), nullptr);

  auto none = ChatTemplateConfig::fromTokenizerConfig(R"({"eos_token": "</s>"})", "c.json");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->find("default"), nullptr);
  auto bad = ChatTemplateConfig::fromTokenizerConfig(R"({"chat_template": 5})", "c.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "c.json: chat_template must be a string or a list of named templates");
  EXPECT_FALSE(ChatTemplateConfig::fromTokenizerConfig("[1]", "c.json").ok());
}

} // namespace
