// Store adapters: SQLite (embedded default) and PostgreSQL behind store_port.
//
// spawn_store returns an actor that implements store_port. Blocking driver
// calls run in detached worker actors, each owning one connection: one writer
// that groups concurrent commits into one transaction (group commit), and
// `read_connections` readers for loads and lists. Lost connections are
// re-opened with exponential backoff; `health` reports the outage meanwhile.
// Migrations are applied by the writer on every (re)connect, idempotently.
#pragma once

#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "colony/actors/ports/store_port.hpp"
#include "colony/runtime/cluster.hpp"
#include "colony/runtime/metrics.hpp"
#include "colony/runtime/module.hpp"

namespace colony::adapters {

struct store_options {
  std::string spec = "sqlite:"; // sqlite:, sqlite:/path, postgresql://...
  std::string data_dir = "./var";
  int read_connections = 2;
  int max_batch = 256;
  // A load (activation) the database has not answered within this is
  // answered `unavailable`; colonyd sets it to http.request-timeout.
  std::chrono::milliseconds load_timeout{std::chrono::seconds(30)};
  std::shared_ptr<runtime::metrics> metrics; // may be null
  // PostgreSQL: once armed, every entity commit checks in its transaction
  // that this node's incarnation owns the entity's shard (docs/clustering.md).
  std::shared_ptr<const runtime::cluster::write_fence> fence;
};

/// Where the store lives, safe for logs (passwords masked).
[[nodiscard]] std::string describe_store(const store_options& opts);

[[nodiscard]] actors::store_port spawn_store(caf::actor_system& sys, const store_options& opts);

/// The store module (store, storage.*): sets the node's store port.
[[nodiscard]] std::unique_ptr<runtime::module> store_module();

} // namespace colony::adapters
