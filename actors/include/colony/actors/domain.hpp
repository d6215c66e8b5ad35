// Vocabulary shared by the domain models: error codes, failures and outcomes.
//
// Plain C++ values: no I/O, no actor types. Failures are mapped to HTTP
// problems at the edge (adapters/http), never here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "colony/protocol/json.hpp"

namespace colony::actors {

/// Why a command was refused. Starts at 1; 0 is never a failure.
enum class errc : std::uint8_t {
  invalid = 1,          // validation failed (400)
  malformed,            // body is not what the route takes (400)
  not_found,            // no such entity (404)
  conflict,             // uniqueness violated (409)
  illegal_transition,   // lifecycle refused (409)
  plan_below_usage,     // plan change would put usage above limits (409)
  precondition_failed,  // If-Match did not match (412)
  limit_exceeded,       // plan limit reached (403)
  tenant_suspended,     // writes refused while suspended (403)
  tenant_cancelled,     // writes refused once cancelled (403)
  unavailable,          // the store cannot be reached right now (503)
  internal,             // a bug; the client sees a request id, not details (500)
  forbidden,            // the caller's role may not do this to this entity (403)
};

/// A refused command with what the client needs to fix it.
struct failure {
  errc code = errc::internal;
  std::string detail;
  std::vector<protocol::field_error> errors;                 // per-field validation errors
  std::vector<std::pair<std::string, std::string>> strings;  // extension members (problem+json)
  std::vector<std::pair<std::string, std::int64_t>> numbers; // extension members (problem+json)
};

[[nodiscard]] inline failure fail(errc code, std::string detail) {
  failure f;
  f.code = code;
  f.detail = std::move(detail);
  return f;
}

/// The result of a domain operation: a value or a failure.
template <class T>
class [[nodiscard]] outcome {
public:
  outcome(T value) : v_(std::move(value)) {}
  outcome(failure f) : v_(std::move(f)) {}
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  failure& error() { return std::get<1>(v_); }
  const failure& error() const { return std::get<1>(v_); }

private:
  std::variant<T, failure> v_;
};

} // namespace colony::actors
