// Durable timers: the due ones; timer_done deletes one (if still at that due
// time), timer_retry moves it later and counts the attempt.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/entity_store.hpp"
#include "colony/actors/ports/shard_scope.hpp"

namespace colony::actors {

struct timer_page {
  store_status status = store_status::ok;
  std::vector<timer_row> rows;
  std::string detail;
};

using timer_store =
  caf::typed_actor<caf::replies_to<timers_atom, std::int64_t, std::int32_t, shard_scope>::with<timer_page>,
                   caf::replies_to<timer_done_atom, std::string, std::int64_t>::with<commit_outcome>,
                   caf::replies_to<timer_retry_atom, std::string, std::int64_t, std::int32_t>::with<commit_outcome>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::timer_page)
