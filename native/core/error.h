// Errors the core raises. The binding maps `kind` to a JS error class, so messages must
// name the argument at fault and say what was expected.
#pragma once
#include <stdexcept>
#include <string>

namespace moecap {

enum class ErrorKind { Type, Range, Runtime };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void throw_range(const std::string& m) { throw Error(ErrorKind::Range, m); }
[[noreturn]] inline void throw_type(const std::string& m) { throw Error(ErrorKind::Type, m); }
[[noreturn]] inline void throw_runtime(const std::string& m) { throw Error(ErrorKind::Runtime, m); }

}  // namespace moecap
