// kiln::Status and kiln::StatusOr<T>: error handling without exceptions.
// A Status is ok, or an error carrying a one-line message (by convention it starts with the
// file / tensor / op it is about). StatusOr<T> holds either a T or an error Status.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace kiln {

class [[nodiscard]] Status {
public:
  Status() = default; // ok
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string &message() const { return message_; }

private:
  bool failed_ = false;
  std::string message_;
};

template <class T> class [[nodiscard]] StatusOr {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "StatusOr<Status> makes no sense");

public:
  // An error. Constructing from an ok Status is a programming error; it becomes an error too.
  StatusOr(Status status) : status_(std::move(status)) {
    if (status_.isOk())
      status_ = Status::error("internal error: StatusOr constructed from an ok Status");
  }
  StatusOr(T value) : value_(std::move(value)) {}
  template <class U, std::enable_if_t<std::is_constructible_v<T, U &&> &&
                                          !std::is_same_v<std::decay_t<U>, T> &&
                                          !std::is_same_v<std::decay_t<U>, Status> &&
                                          !std::is_same_v<std::decay_t<U>, StatusOr>,
                                      int> = 0>
  StatusOr(U &&value) : value_(std::in_place, std::forward<U>(value)) {}

  StatusOr(StatusOr &&) = default;
  StatusOr &operator=(StatusOr &&) = default;
  StatusOr(const StatusOr &) = default;
  StatusOr &operator=(const StatusOr &) = default;

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  // Ok() when a value is held.
  const Status &status() const { return status_; }

  T &value() & { check(); return *value_; }
  const T &value() const & { check(); return *value_; }
  T &&value() && { check(); return std::move(*value_); }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  T &&operator*() && { return std::move(*this).value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }

private:
  void check() const {
    if (!value_) {
      std::fprintf(stderr, "kiln: StatusOr::value() on an error: %s\n", status_.message().c_str());
      std::abort();
    }
  }
  std::optional<T> value_;
  Status status_;
};

} // namespace kiln
