#include "Lexer.h"

#include "Unicode.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace kiln::jinja {
namespace {

// Newlines as jinja2 reads them: \r\n and \r become \n; one trailing newline is dropped
// (keep_trailing_newline=False).
std::string normalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n')
        ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

// Byte length of the Python whitespace character (regex \s) at pos, or 0.
size_t spaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size())
    return 0;
  unsigned char c = s[pos];
  if (c < 0x80)
    return isPySpace(c) ? 1 : 0;
  size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (pos + len > s.size())
    return 0;
  std::u32string cp = decodeUtf8(s.substr(pos, len));
  return cp.size() == 1 && isPySpace(cp[0]) ? len : 0;
}

size_t skipSpaces(std::string_view s, size_t pos) {
  while (size_t n = spaceAt(s, pos))
    pos += n;
  return pos;
}

// Python's str.rstrip() with no argument.
std::string_view rstripSpaces(std::string_view s) {
  std::u32string cps = decodeUtf8(s);
  size_t keep = cps.size();
  while (keep > 0 && isPySpace(cps[keep - 1]))
    --keep;
  std::string kept = encodeUtf8(cps.substr(0, keep));
  return s.substr(0, kept.size());
}

bool isAllSpaces(std::string_view s) {
  if (s.empty())
    return false;
  for (char32_t cp : decodeUtf8(s))
    if (!isPySpace(cp))
      return false;
  return true;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || isDigit(c); }

enum class TagKind { Variable, Block, Comment };

class Lexer {
public:
  Lexer(std::string source, const std::string &name) : src_(std::move(source)), name_(name) {}
  StatusOr<std::vector<Token>> run();

private:
  Status error(size_t pos, const std::string &message) {
    return Status::error(name_ + " line " + std::to_string(lineAt(pos)) + ": " + message);
  }
  int lineAt(size_t pos) {
    if (pos < linePos_) {
      linePos_ = 0;
      line_ = 1;
    }
    for (; linePos_ < pos && linePos_ < src_.size(); ++linePos_)
      line_ += src_[linePos_] == '\n';
    return line_;
  }
  void emit(TokenType type, std::string text, size_t pos) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = lineAt(pos);
    tokens_.push_back(std::move(t));
  }
  void emitData(std::string_view text, size_t pos, char sign, bool isVariable);
  bool matchRawBegin(size_t pos, size_t &end);
  Status lexRaw(size_t &pos);
  Status lexComment(size_t &pos);
  Status lexTag(TagKind kind, size_t &pos);
  bool matchTagEnd(TagKind kind, size_t &pos);
  Status lexOperand(size_t &pos);
  bool lexNumber(size_t &pos);
  Status lexString(size_t &pos);
  Status lexOperator(size_t &pos);

  std::string src_;
  const std::string &name_;
  std::vector<Token> tokens_;
  std::vector<char> brackets_; // expected closers of open (, [, {
  bool lineStarting_ = true;   // the last match ended a line (jinja2's line_starting)
  size_t linePos_ = 0;
  int line_ = 1;
};

// The text before a tag, with the tag's whitespace control applied: '-' strips all trailing whitespace,
// otherwise lstrip_blocks removes spaces between the line start and a block or comment tag.
void Lexer::emitData(std::string_view text, size_t pos, char sign, bool isVariable) {
  if (sign == '-') {
    text = rstripSpaces(text);
  } else if (sign != '+' && !isVariable) {
    size_t lineStart = text.rfind('\n');
    lineStart = lineStart == std::string_view::npos ? 0 : lineStart + 1;
    if ((lineStart > 0 || lineStarting_) && isAllSpaces(text.substr(lineStart)))
      text = text.substr(0, lineStart);
  }
  if (!text.empty())
    emit(TokenType::Data, std::string(text), pos);
}

// {%[-+]? raw [-]%} at pos (no trim_blocks newline after a raw opening, as in jinja2).
bool Lexer::matchRawBegin(size_t pos, size_t &end) {
  size_t p = pos + 2;
  if (p < src_.size() && (src_[p] == '-' || src_[p] == '+'))
    ++p;
  p = skipSpaces(src_, p);
  if (src_.compare(p, 3, "raw") != 0)
    return false;
  p = skipSpaces(src_, p + 3);
  if (src_.compare(p, 3, "-%}") == 0) {
    end = skipSpaces(src_, p + 3);
    return true;
  }
  if (src_.compare(p, 2, "%}") == 0) {
    end = p + 2;
    return true;
  }
  return false;
}

Status Lexer::lexRaw(size_t &pos) {
  for (size_t p = src_.find("{%", pos); p != std::string::npos; p = src_.find("{%", p + 1)) {
    size_t q = p + 2;
    char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
    q = skipSpaces(src_, q);
    if (src_.compare(q, 6, "endraw") != 0)
      continue;
    q = skipSpaces(src_, q + 6);
    size_t end;
    if (src_.compare(q, 3, "+%}") == 0)
      end = q + 3;
    else if (src_.compare(q, 3, "-%}") == 0)
      end = skipSpaces(src_, q + 3);
    else if (src_.compare(q, 2, "%}") == 0)
      end = q + 2 + (q + 2 < src_.size() && src_[q + 2] == '\n');
    else
      continue;
    emitData(std::string_view(src_).substr(pos, p - pos), pos, sign, false);
    lineStarting_ = src_[end - 1] == '\n';
    pos = end;
    return Status::ok();
  }
  return error(pos, "missing end of raw directive");
}

Status Lexer::lexComment(size_t &pos) {
  size_t q = src_.find("#}", pos);
  if (q == std::string::npos)
    return error(pos, "missing end of comment tag");
  size_t end;
  if (q > pos && src_[q - 1] == '+')
    end = q + 2;
  else if (q > pos && src_[q - 1] == '-')
    end = skipSpaces(src_, q + 2);
  else
    end = q + 2 + (q + 2 < src_.size() && src_[q + 2] == '\n');
  lineStarting_ = src_[end - 1] == '\n';
  pos = end;
  return Status::ok();
}

bool Lexer::matchTagEnd(TagKind kind, size_t &pos) {
  if (!brackets_.empty())
    return false;
  const char *close = kind == TagKind::Block ? "%}" : "}}";
  size_t end;
  if (kind == TagKind::Block && src_.compare(pos, 3, "+%}") == 0)
    end = pos + 3;
  else if (src_.compare(pos, 1, "-") == 0 && src_.compare(pos + 1, 2, close) == 0)
    end = skipSpaces(src_, pos + 3);
  else if (src_.compare(pos, 2, close) == 0)
    end = pos + 2 + (kind == TagKind::Block && pos + 2 < src_.size() && src_[pos + 2] == '\n');
  else
    return false;
  emit(kind == TagKind::Block ? TokenType::BlockEnd : TokenType::VariableEnd, "", pos);
  lineStarting_ = src_[end - 1] == '\n';
  pos = end;
  return true;
}

Status Lexer::lexTag(TagKind kind, size_t &pos) {
  brackets_.clear();
  while (true) {
    if (matchTagEnd(kind, pos))
      return Status::ok();
    if (size_t n = skipSpaces(src_, pos); n != pos) {
      pos = n;
      continue;
    }
    if (pos >= src_.size())
      return error(pos, std::string("unexpected end of template, expected '") +
                            (kind == TagKind::Block ? "%}" : "}}") + "'");
    if (Status s = lexOperand(pos); !s)
      return s;
  }
}

Status Lexer::lexOperand(size_t &pos) {
  char c = src_[pos];
  if (isDigit(c)) {
    if (lexNumber(pos))
      return Status::ok();
    return error(pos, "invalid number");
  }
  if (isNameStart(c)) {
    size_t end = pos;
    while (end < src_.size() && isNameChar(src_[end]))
      ++end;
    emit(TokenType::Name, src_.substr(pos, end - pos), pos);
    pos = end;
    return Status::ok();
  }
  if (c == '\'' || c == '"')
    return lexString(pos);
  return lexOperator(pos);
}

// jinja2's float_re then integer_re (with _ separators; 0b / 0o / 0x prefixes).
bool Lexer::lexNumber(size_t &pos) {
  auto digitsFrom = [&](size_t p, bool (*ok)(char)) {
    size_t q = p;
    if (q >= src_.size() || !ok(src_[q]))
      return p;
    ++q;
    while (q < src_.size()) {
      if (ok(src_[q]))
        ++q;
      else if (src_[q] == '_' && q + 1 < src_.size() && ok(src_[q + 1]))
        q += 2;
      else
        break;
    }
    return q;
  };
  auto strip = [](std::string s) {
    std::string out;
    for (char c : s)
      if (c != '_')
        out.push_back(c);
    return out;
  };
  bool afterDot = pos > 0 && src_[pos - 1] == '.';
  size_t intEnd = digitsFrom(pos, isDigit);
  size_t p = intEnd;
  bool fraction = false, exponent = false;
  if (p < src_.size() && src_[p] == '.' && digitsFrom(p + 1, isDigit) != p + 1) {
    p = digitsFrom(p + 1, isDigit);
    fraction = true;
  }
  if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
    size_t q = p + 1;
    if (q < src_.size() && (src_[q] == '+' || src_[q] == '-'))
      ++q;
    if (size_t r = digitsFrom(q, isDigit); r != q) {
      p = r;
      exponent = true;
    }
  }
  if (!afterDot && (fraction || exponent)) {
    emit(TokenType::Float, src_.substr(pos, p - pos), pos);
    tokens_.back().number = std::strtod(strip(tokens_.back().text).c_str(), nullptr);
    pos = p;
    return true;
  }
  int base = 10;
  size_t end;
  char prefix = pos + 1 < src_.size() && src_[pos] == '0' ? char(src_[pos + 1] | 0x20) : 0;
  if (prefix == 'b' || prefix == 'o' || prefix == 'x') {
    base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
    bool (*ok)(char) = isHex;
    if (base == 2)
      ok = [](char c) { return c == '0' || c == '1'; };
    else if (base == 8)
      ok = [](char c) { return c >= '0' && c <= '7'; };
    size_t q = pos + 2 + (pos + 2 < src_.size() && src_[pos + 2] == '_');
    end = digitsFrom(q, ok);
    if (end == q)
      return false;
  } else if (src_[pos] == '0') {
    end = digitsFrom(pos, [](char c) { return c == '0'; });
  } else {
    end = intEnd;
  }
  std::string digits = strip(src_.substr(pos, end - pos));
  if (base != 10)
    digits = digits.substr(2);
  errno = 0;
  unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
  if (errno == ERANGE || v > uint64_t(INT64_MAX))
    return false;
  emit(TokenType::Integer, src_.substr(pos, end - pos), pos);
  tokens_.back().integer = int64_t(v);
  pos = end;
  return true;
}

// Python's "unicode-escape" decoding of a string literal's body (jinja2 encodes non-ASCII characters with
// backslashreplace first, so they pass through unchanged).
StatusOr<std::string> decodeEscapes(std::string_view body) {
  std::u32string in = decodeUtf8(body), out;
  auto hexValue = [&](size_t start, size_t count, char32_t &v) {
    if (start + count > in.size())
      return false;
    v = 0;
    for (size_t k = start; k < start + count; ++k) {
      char32_t c = in[k];
      if (c >= 0x80 || !isHex(char(c)))
        return false;
      v = v * 16 + char32_t(isDigit(char(c)) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return true;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 >= in.size()) {
      out.push_back(in[i]);
      continue;
    }
    char32_t e = in[++i], v = 0;
    static const char kSimple[] = "\\\\''\"\"b\bf\ft\tn\nr\rv\va\a";
    const char *simple = e < 0x80 && e ? std::strchr(kSimple, int(e)) : nullptr;
    if (e == '\n') {
      continue; // line continuation
    } else if (simple && (simple - kSimple) % 2 == 0) {
      out.push_back(char32_t(simple[1]));
    } else if (e >= '0' && e <= '7') {
      v = e - '0';
      for (int k = 0; k < 2 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7'; ++k)
        v = v * 8 + (in[++i] - '0');
      out.push_back(v);
    } else if (e == 'x' || e == 'u' || e == 'U') {
      size_t count = e == 'x' ? 2 : e == 'u' ? 4 : 8;
      if (!hexValue(i + 1, count, v))
        return Status::error(std::string("truncated \\") + char(e) + "XXXX escape");
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return Status::error("surrogate code points in string escapes are not supported");
      out.push_back(v);
      i += count;
    } else if (e == 'N') {
      return Status::error("\\N{...} escapes are not supported");
    } else {
      out.push_back('\\');
      out.push_back(e);
    }
  }
  return encodeUtf8(out);
}

Status Lexer::lexString(size_t &pos) {
  char quote = src_[pos];
  size_t p = pos + 1;
  while (p < src_.size() && src_[p] != quote)
    p += src_[p] == '\\' ? 2 : 1;
  if (p >= src_.size())
    return error(pos, "unterminated string");
  auto value = decodeEscapes(std::string_view(src_).substr(pos + 1, p - pos - 1));
  if (!value.ok())
    return error(pos, value.status().message());
  emit(TokenType::String, std::move(*value), pos);
  pos = p + 1;
  return Status::ok();
}

Status Lexer::lexOperator(size_t &pos) {
  static const char *kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
  for (const char *op : kTwo)
    if (src_.compare(pos, 2, op) == 0) {
      emit(TokenType::Operator, op, pos);
      pos += 2;
      return Status::ok();
    }
  char c = src_[pos];
  if (!std::strchr("+-/*%~[](){}><=.:|,;", c) || c == 0) {
    unsigned char b = c;
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : 4; // the whole UTF-8 character
    return error(pos, "unexpected character '" + src_.substr(pos, len) + "' in a tag");
  }
  if (c == '(' || c == '[' || c == '{') {
    brackets_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
  } else if (c == ')' || c == ']' || c == '}') {
    if (brackets_.empty())
      return error(pos, std::string("unexpected '") + c + "'");
    if (brackets_.back() != c)
      return error(pos, std::string("unexpected '") + c + "', expected '" + brackets_.back() + "'");
    brackets_.pop_back();
  }
  emit(TokenType::Operator, std::string(1, c), pos);
  ++pos;
  return Status::ok();
}

StatusOr<std::vector<Token>> Lexer::run() {
  size_t pos = 0;
  while (pos < src_.size()) {
    size_t tag = pos;
    while ((tag = src_.find('{', tag)) != std::string::npos && tag + 1 < src_.size() &&
           !std::strchr("{%#", src_[tag + 1]))
      ++tag;
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      emit(TokenType::Data, src_.substr(pos), pos);
      break;
    }
    char open = src_[tag + 1];
    size_t after = tag + 2;
    char sign = after < src_.size() && (src_[after] == '-' || src_[after] == '+') ? src_[after] : 0;
    TagKind kind = open == '{' ? TagKind::Variable : open == '%' ? TagKind::Block : TagKind::Comment;
    size_t rawEnd = 0;
    bool raw = kind == TagKind::Block && matchRawBegin(tag, rawEnd);
    emitData(std::string_view(src_).substr(pos, tag - pos), pos, sign, kind == TagKind::Variable);
    pos = after + (sign ? 1 : 0);
    Status s;
    if (raw) {
      lineStarting_ = src_[rawEnd - 1] == '\n';
      pos = rawEnd;
      s = lexRaw(pos);
    } else if (kind == TagKind::Comment) {
      s = lexComment(pos);
    } else {
      emit(kind == TagKind::Block ? TokenType::BlockBegin : TokenType::VariableBegin, "", tag);
      s = lexTag(kind, pos);
    }
    if (!s)
      return s;
  }
  emit(TokenType::Eof, "", src_.size());
  return std::move(tokens_);
}

} // namespace

StatusOr<std::vector<Token>> tokenize(std::string_view source, const std::string &name) {
  if (!isValidUtf8(source))
    return Status::error(name + ": the template is not valid UTF-8");
  Lexer lexer(normalizeNewlines(source), name);
  return lexer.run();
}

} // namespace kiln::jinja
