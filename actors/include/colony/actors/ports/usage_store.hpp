// API calls metered per tenant and month (batched increments).
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

/// API calls metered at the HTTP edge, per tenant and month ("2026-11").
/// add: increments by `calls` and answers the new totals; read: the totals.
struct api_usage_row {
  std::string tenant_id;
  std::string month;
  std::int64_t calls = 0;
};

struct api_usage_op {
  bool add = false;
  std::vector<api_usage_row> rows;
};

struct api_usage_result {
  store_status status = store_status::ok;
  std::vector<api_usage_row> rows; // in the order asked
  std::string detail;
};

using usage_store = caf::typed_actor<caf::replies_to<usage_atom, api_usage_op>::with<api_usage_result>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_usage_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::api_usage_result)
