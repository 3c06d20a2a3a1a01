// Errors the core raises. Each carries a kind, which picks the JS error class (TypeError,
// RangeError, Error), and a code, the stable string of lib/errors.ts the JS error's `code` gets.
// Messages must name the argument, option or file at fault and say what was expected.
#pragma once
#include <stdexcept>
#include <string>

namespace moecap {

enum class ErrorKind { Type, Range, Runtime };

enum class ErrorCode {
  InvalidArgument,     // ERR_INVALID_ARGUMENT: a method argument (typed array, length, value)
  InvalidOption,       // ERR_INVALID_OPTION: an option or environment variable value
  Closed,              // ERR_CLOSED: a layer or model used after close()
  OutOfMemory,         // ERR_OUT_OF_MEMORY: larger than the memory available, or an allocation failed
  BackendUnavailable,  // ERR_BACKEND_UNAVAILABLE: a backend that cannot be loaded or used here
  CorruptFile,         // ERR_CORRUPT_FILE: a file whose content is not what it must be
  Io,                  // ERR_IO: the operating system refused a file operation
  Internal,            // ERR_INTERNAL: a bug
};

// "ERR_INVALID_ARGUMENT", ... (the strings of lib/errors.ts).
inline const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::InvalidOption: return "ERR_INVALID_OPTION";
    case ErrorCode::Closed: return "ERR_CLOSED";
    case ErrorCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorCode::BackendUnavailable: return "ERR_BACKEND_UNAVAILABLE";
    case ErrorCode::CorruptFile: return "ERR_CORRUPT_FILE";
    case ErrorCode::Io: return "ERR_IO";
    case ErrorCode::Internal: break;
  }
  return "ERR_INTERNAL";
}

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, ErrorCode code, const std::string& msg) : std::runtime_error(msg), kind_(kind), code_(code) {}
  ErrorKind kind() const { return kind_; }
  ErrorCode code() const { return code_; }

 private:
  ErrorKind kind_;
  ErrorCode code_;
};

// Without a code: a Type or Range error is a bad argument, a Runtime error a bug. Sites with a
// more precise cause pass it (or use the helpers below).
[[noreturn]] inline void throw_range(const std::string& m, ErrorCode c = ErrorCode::InvalidArgument) {
  throw Error(ErrorKind::Range, c, m);
}
[[noreturn]] inline void throw_type(const std::string& m, ErrorCode c = ErrorCode::InvalidArgument) {
  throw Error(ErrorKind::Type, c, m);
}
[[noreturn]] inline void throw_runtime(const std::string& m, ErrorCode c = ErrorCode::Internal) {
  throw Error(ErrorKind::Runtime, c, m);
}
// A bad option value (RangeError, ERR_INVALID_OPTION).
[[noreturn]] inline void throw_option(const std::string& m) { throw_range(m, ErrorCode::InvalidOption); }
// More than the memory available (RangeError, ERR_OUT_OF_MEMORY).
[[noreturn]] inline void throw_out_of_memory(const std::string& m) { throw_range(m, ErrorCode::OutOfMemory); }
// A file operation the operating system refused (Error, ERR_IO).
[[noreturn]] inline void throw_io(const std::string& m) { throw_runtime(m, ErrorCode::Io); }
// A file whose content is wrong: header, checksum, version (Error, ERR_CORRUPT_FILE).
[[noreturn]] inline void throw_corrupt(const std::string& m) { throw_runtime(m, ErrorCode::CorruptFile); }

}  // namespace moecap
