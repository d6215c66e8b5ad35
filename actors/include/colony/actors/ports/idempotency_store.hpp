// Idempotency-Key records (docs/api.md).
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"

namespace colony::actors {

/// Idempotency-Key records (docs/api.md). begin: take the key for a new
/// request, or say why not; finish: store the answer; release: forget the
/// key (the request failed in a way a retry may redo).
struct idempotency_op {
  enum class kind : std::uint8_t { begin, finish, release } what = kind::begin;
  std::string scope;       // hex SHA-256 of credential, route, path and key
  std::string fingerprint; // hex SHA-256 of method, path and body
  std::int64_t now_us = 0;
  std::int64_t expires_us = 0;      // begin: kept until then
  std::int64_t stale_before_us = 0; // begin: a running row started before this was abandoned
  std::int32_t status = 0;          // finish: the answer
  std::string headers;              // finish: JSON object of the headers that matter
  std::string body;                 // finish: sealed
};

struct idempotency_result {
  store_status status = store_status::ok;
  enum class outcome : std::uint8_t {
    started,   // the key is this request's now: run it
    replay,    // done before: answer status/headers/body
    committed, // the first request's change committed, its answer was lost: answer from ref_*
    running,   // the first request is still in progress (409)
    mismatch,  // the key was used with another request (422)
  } what = outcome::started;
  std::int32_t answer_status = 0;
  std::string headers;
  std::string body;
  std::int32_t ref_kind = 0; // entity_kind of the change
  std::string ref_tenant;
  std::string ref_id;
  std::string detail;
};

using idempotency_store = caf::typed_actor<caf::replies_to<idempotency_atom, idempotency_op>::with<idempotency_result>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::idempotency_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::idempotency_result)
