// The error vocabulary of every command (errc, failure) and its one mapping to
// RFC 9457 problem documents, shared by the HTTP API and the Kafka command
// results (and, next, by replies forwarded between nodes).
//
// Plain values: no I/O, no actor types. The domain models return failures;
// the edges render them with problem_of.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "colony/protocol/json.hpp"

namespace colony::protocol {

/// Why a command was refused. Starts at 1; 0 is never a failure.
enum class errc : std::uint8_t {
  invalid = 1,         // validation failed (400)
  malformed,           // body is not what the route takes (400)
  not_found,           // no such entity (404)
  conflict,            // uniqueness violated (409)
  illegal_transition,  // lifecycle refused (409)
  plan_below_usage,    // plan change would put usage above limits (409)
  precondition_failed, // If-Match did not match (412)
  limit_exceeded,      // plan limit reached (403)
  tenant_suspended,    // writes refused while suspended (403)
  tenant_cancelled,    // writes refused once cancelled (403)
  unavailable,         // the store cannot be reached right now (503)
  internal,            // a bug; the client sees a request id, not details (500)
  forbidden,           // the caller's role may not do this to this entity (403)
  moved,               // the tenant's shard is owned by another node now (503; forwarded commands retry)
  plugin_rejected,     // a tenant's plugin refused the write (422; strings: plugin, reason)
  plugin_failed,       // a tenant's plugin failed and its failure policy is "fail" (503; strings: plugin)
};
inline constexpr std::uint8_t errc_last = static_cast<std::uint8_t>(errc::plugin_failed);

/// A refused command with what the client needs to fix it.
struct failure {
  errc code = errc::internal;
  std::string detail;
  std::vector<field_error> errors;                           // per-field validation errors
  std::vector<std::pair<std::string, std::string>> strings;  // extension members (problem+json)
  std::vector<std::pair<std::string, std::int64_t>> numbers; // extension members (problem+json)
  // A change that got no answer in time: it may yet commit, so its
  // Idempotency-Key stays taken (a retry is answered from the commit).
  // Never on the wire: set where the wait ended.
  bool outcome_unknown = false;
};

[[nodiscard]] inline failure fail(errc code, std::string detail) {
  failure f;
  f.code = code;
  f.detail = std::move(detail);
  return f;
}

/// The HTTP status, problem type (after https://colony.dev/problems/) and title of a code.
struct problem_kind {
  int status;
  std::string_view type;
  std::string_view title;
};
[[nodiscard]] problem_kind kind_of(errc code);

inline constexpr std::string_view problem_base = "https://colony.dev/problems/";

/// A problem+json document (RFC 9457).
struct problem {
  int status = 500;
  std::string body;
  bool retry_after = false; // 503: the client should retry (Retry-After: 1)
};

/// A problem with the given members; `detail` may quote client text (made valid UTF-8).
[[nodiscard]] problem problem_of(int status, std::string_view type, std::string_view title, std::string_view detail,
                                 std::string_view request_id);
/// The problem of a failure, with its errors[] and extension members. An
/// internal failure shows only the request id, never its detail.
[[nodiscard]] problem problem_of(const failure& f, std::string_view request_id);

} // namespace colony::protocol
