// Whose rows a poll of per-shard work wants (due timers, due webhook
// deliveries): every one (one node), or those of the shards this node owns
// and, if `unsharded`, those written before the rows had a shard.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <cstdint>
#include <vector>

namespace colony::actors {

struct shard_scope {
  bool all = true;
  std::vector<std::int32_t> shards;
  bool unsharded = false;
};

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::shard_scope)
