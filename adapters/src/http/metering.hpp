// Counts the API calls of each tenant at the HTTP edge and enforces the
// plan's apiCallsPerMonth, without a store write per request: counts collect
// in memory and a flusher actor adds them to the store (api_usage, one
// transaction for all tenants) every flush interval and at shutdown.
//
// Thread-safe: any Asio thread counts; the flusher runs in its own actor.
#pragma once

#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "colony/actors/ports/store_port.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters::http {

using protocol::month_of; // "YYYY-MM" (UTC)

class api_meter {
public:
  api_meter(caf::actor_system& sys, actors::store_port store, std::chrono::milliseconds flush_interval);
  ~api_meter();
  api_meter(const api_meter&) = delete;
  api_meter& operator=(const api_meter&) = delete;

  enum class verdict { counted, over_quota, unknown };
  /// Counts one call of `tenant` in `month` unless that reaches `limit`
  /// (nullopt: unlimited). `unknown`: the month's stored total is not loaded
  /// yet; call loaded() with it and ask again.
  verdict count(const std::string& tenant, const std::string& month, std::optional<std::int64_t> limit);
  /// The stored total of `tenant` for `month`, read from the store.
  void loaded(const std::string& tenant, const std::string& month, std::int64_t stored);
  /// Calls of `tenant` in `month` known to this node (stored + not yet flushed); nullopt if not loaded.
  [[nodiscard]] std::optional<std::int64_t> used(const std::string& tenant, const std::string& month) const;
  /// Writes what is pending now and waits for it (at most `timeout`).
  void flush_now(std::chrono::milliseconds timeout);

  struct state; // shared with the flusher actor

private:
  std::shared_ptr<state> state_;
  caf::actor_system& sys_;
  actors::store_port store_;
  caf::actor flusher_;
};

} // namespace colony::adapters::http
