#include "kiln/template/ChatTemplate.h"

#include <gtest/gtest.h>

namespace {

std::string render(const std::string &text, const kiln::TemplateValue &messages = kiln::TemplateValue::list({}),
                   kiln::ChatTemplateOptions options = {}) {
  auto t = kiln::ChatTemplate::parse(text);
  if (!t.ok())
    return "PARSE ERROR: " + t.status().message();
  auto r = t->render(messages, options);
  if (!r.ok())
    return "RENDER ERROR: " + r.status().message();
  return *r;
}

TEST(ChatTemplate, RendersTextAndExpressions) {
  EXPECT_EQ(render("a{{ 1 + 2 }}b"), "a3b");
  EXPECT_EQ(render("{{ 'x' ~ 1 ~ none }}"), "x1None");
}

} // namespace
