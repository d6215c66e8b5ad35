// What GDPR erasure removes (docs/security.md, "Erasure"): a user's email,
// name and attributes from every event that carries its state, and the
// user.erased tombstone that records the erasure. Pure code; the stores
// apply scrub_user_event to every stored event of the user, in one
// transaction with the tombstone (and with delivery and audit scrubbing).
#pragma once

#include <cstdint>
#include <string>

#include "colony/v1/event.pb.h"

namespace colony::actors {

/// The event payload without the user's personal data (an unreadable payload is returned as it is).
[[nodiscard]] std::string scrub_user_event(const std::string& payload);

/// The user.erased event of user `user_id` of tenant `tenant_id`.
[[nodiscard]] v1::Event erased_event(const std::string& tenant_id, const std::string& user_id,
                                     const std::string& request_id, const std::string& traceparent,
                                     std::int64_t now_us);

} // namespace colony::actors
