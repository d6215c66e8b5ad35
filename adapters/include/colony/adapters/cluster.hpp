// The cluster adapter: membership in PostgreSQL, shard placement, forwarding
// over CAF's middleman, failover with fencing (docs/clustering.md).
#pragma once

#include <memory>

#include "colony/runtime/module.hpp"

namespace colony::adapters {

/// The cluster module (cluster-*, node-name): one node while cluster-listen
/// is empty. Place it right after the entities module.
[[nodiscard]] std::unique_ptr<runtime::module> cluster_module();

} // namespace colony::adapters
