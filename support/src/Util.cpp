#include "kiln/support/Util.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::support {

namespace {
// Appends s with control characters as \xNN, stopping once out holds maxOut bytes; returns the bytes of s used.
size_t appendEscaped(std::string &out, std::string_view s, size_t maxOut) {
  size_t i = 0;
  for (; i < s.size() && out.size() < maxOut; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return i;
}
} // namespace

std::string quoteName(std::string_view s) {
  std::string out = "'";
  if (appendEscaped(out, s, 200) < s.size())
    out += "...";
  return out + "'";
}

std::string oneLine(std::string_view message) {
  std::string out;
  appendEscaped(out, message, std::string::npos);
  return out;
}

Status readFile(const std::string &path, std::string &out, uint64_t maxBytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused as not a regular file below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return Status::error(path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  if (uint64_t(st.st_size) > maxBytes) {
    ::close(fd);
    return Status::error(path + ": file is " + std::to_string(st.st_size) +
                         " bytes, more than the limit of " + std::to_string(maxBytes));
  }
  out.clear();
  out.resize(size_t(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int err = errno;
      ::close(fd);
      return Status::error(path + ": " + std::strerror(err));
    }
    if (r == 0)
      break;
    got += size_t(r);
  }
  out.resize(got);
  ::close(fd);
  return Status::ok();
}

Status writeFile(const std::string &path, const void *data, size_t size) {
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return Status::error(path + ": " + std::strerror(errno));
  if (size && std::fwrite(data, 1, size, f) != size) {
    int err = errno;
    std::fclose(f);
    return Status::error(path + ": write failed: " + std::strerror(err));
  }
  if (std::fclose(f) != 0)
    return Status::error(path + ": write failed: " + std::strerror(errno));
  return Status::ok();
}

namespace {
bool sameFile(const struct stat &a, const struct stat &b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// The input (or the file in the input directory) that `out` is, or "" if none.
std::string inputThatIs(const struct stat &out, const InputPath &input) {
  struct stat st {};
  if (::stat(input.path.c_str(), &st) != 0)
    return "";
  if (sameFile(out, st))
    return input.path;
  if (!S_ISDIR(st.st_mode))
    return "";
  std::string found;
  if (DIR *dir = ::opendir(input.path.c_str())) {
    while (const dirent *entry = ::readdir(dir)) {
      std::string path = input.path + "/" + entry->d_name;
      struct stat file {};
      if (found.empty() && std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0 &&
          ::stat(path.c_str(), &file) == 0 && S_ISREG(file.st_mode) && sameFile(out, file))
        found = path;
    }
    ::closedir(dir);
  }
  return found;
}
} // namespace

Status checkOutputPath(const std::string &flag, const std::string &output, const std::vector<InputPath> &inputs) {
  const std::string named = flag + " " + output;
  const size_t slash = output.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : output.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::error(named + ": directory " + dir + " does not exist (create it first)");
  if (::stat(output.c_str(), &st) != 0)
    return Status::ok(); // a new file: not an input
  if (S_ISDIR(st.st_mode))
    return Status::error(named + " is a directory (give a file path)");
  for (const InputPath &input : inputs)
    if (std::string same = inputThatIs(st, input); !same.empty())
      return Status::error(named + " is the same file as " +
                           (same == input.path ? "" : same + " in ") + input.role + " " + input.path +
                           "; refusing to overwrite an input");
  return Status::ok();
}

} // namespace kiln::support
