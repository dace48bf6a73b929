//===- Cli.cpp ------------------------------------------------------------===//
#include "Cli.h"

#include <algorithm>

namespace kiln::cli {

Args::Args(int argc, char **argv, int first, const Command &command) {
  auto find = [&](const std::string &name) -> const Flag * {
    for (const Flag &f : command.flags)
      if (name == f.name)
        return &f;
    return nullptr;
  };
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool inlineValue = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inlineValue = true;
    }
    const Flag *flag = find(name);
    if ((name == "--help" || name == "-h") && !inlineValue) {
      help_ = true;
    } else if (flag && !flag->value && !inlineValue) {
      values_[name] = "";
    } else if (flag && flag->value) {
      if (!inlineValue) {
        if (i + 1 >= argc) {
          error_ = "option " + name + " needs a value";
          return;
        }
        value = argv[++i];
      }
      values_[name] = value;
      all_[name].push_back(value);
    } else {
      error_ = "unknown option " + a;
      return;
    }
  }
}

std::vector<std::string> Args::getAll(const std::string &name) const {
  auto it = all_.find(name);
  return it == all_.end() ? std::vector<std::string>() : it->second;
}

std::optional<std::string> Args::get(const std::string &name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return std::nullopt;
  return it->second;
}

std::optional<int> parseArgs(int argc, char **argv, const char *commandName, std::optional<Args> &args) {
  const Command *command = findCommand(commandName);
  if (!command)
    return fail(kExitUsage, std::string("unknown command '") + commandName + "' (run kiln --help)");
  args.emplace(argc, argv, 2, *command);
  if (args->helpRequested() && args->ok()) {
    printCommandHelp(*command, stdout);
    return kExitOk;
  }
  if (!args->ok())
    return fail(kExitUsage, args->error() + "; " + usageLine(*command));
  return std::nullopt;
}

int fail(int code, const std::string &message) {
  std::fprintf(stderr, "kiln: %s\n", message.c_str());
  return code;
}

std::optional<std::vector<int64_t>> parseIntList(const std::string &text) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.empty() || item.size() > 12 || item.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    int64_t v = std::stoll(item);
    if (v <= 0)
      return std::nullopt;
    out.push_back(v);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

std::optional<uint64_t> parseIntFlag(const std::string &name, const std::string &text, uint64_t min, uint64_t max,
                                     std::string *error) {
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  uint64_t value = 0;
  bool overflow = false;
  for (char c : digits ? text : std::string())
    overflow = overflow || __builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, uint64_t(c - '0'), &value);
  if (digits && (overflow || value > max)) {
    *error = name + " " + text + " is too large (at most " + std::to_string(max) + ")";
    return std::nullopt;
  }
  if (!digits || value < min) {
    *error = name + " must be an integer >= " + std::to_string(min) + ", got '" + text + "'";
    return std::nullopt;
  }
  return value;
}

std::optional<std::vector<int64_t>> parseIntListFlag(const std::string &name, const std::string &text, uint64_t min,
                                                     uint64_t max, std::string *error) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    std::optional<uint64_t> v = parseIntFlag(name, item, min, max, error);
    if (!v) {
      if (error->find("too large") == std::string::npos)
        *error = name + " must be integers >= " + std::to_string(min) + " separated by commas, got '" + text + "'";
      return std::nullopt;
    }
    out.push_back(int64_t(*v));
    if (comma == std::string::npos)
      return out;
    pos = comma + 1;
  }
}

} // namespace kiln::cli
