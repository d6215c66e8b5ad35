// Audit records without a change to go with, and reading them (newest first).
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

/// Appends audit records (no change to go with), or reads a page of them,
/// newest first: tenant (empty with all_tenants for the platform's view),
/// filters, and `before` (a position; 0: from the newest).
struct audit_op {
  bool append = false;
  std::vector<audit_record> records;
  std::string tenant_id;
  bool all_tenants = false;
  std::string actor, action, target;
  std::int64_t from_us = 0, to_us = 0; // 0: open
  std::int64_t before = 0;
  int limit = 50;
};

struct audit_page {
  store_status status = store_status::ok;
  std::vector<audit_record> rows;
  std::string detail;
};

using audit_store = caf::typed_actor<caf::replies_to<audit_atom, audit_op>::with<audit_page>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::audit_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::audit_page)
