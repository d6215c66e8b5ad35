// The node's metrics, as the runtime and the adapters report them. The
// Prometheus implementation lives in adapters/metrics; every method is
// thread-safe and cheap (no allocation on the hot path after warm-up).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "colony/actors/messages.hpp"

namespace colony::runtime {

class metrics {
public:
  virtual ~metrics() = default;
  virtual void http_request(std::string_view method, std::string_view route, int status, double seconds) = 0;
  virtual void entity_activated(actors::entity_kind kind) = 0;
  virtual void entity_passivated(actors::entity_kind kind) = 0;
  virtual void entity_crashed(actors::entity_kind kind) = 0;
  virtual void live_entities(actors::entity_kind kind, std::int64_t count) = 0;
  virtual void store_commit(double seconds, std::size_t batch_size) = 0;
  /// Outbox rows waiting for the relay, and the age of the oldest (0 if none).
  virtual void outbox_backlog(std::int64_t events, double oldest_age_seconds) = 0;
  virtual void events_published(std::size_t count) = 0;
  virtual void kafka_brokers_up(bool up) = 0;
  /// Families a module declares for itself (named colony_*): a counter, a
  /// gauge, a latency histogram (seconds), each created on first use with
  /// its help text. Labels are (name, value) pairs. No-ops by default.
  using labels = std::vector<std::pair<std::string, std::string>>;
  virtual void count(std::string_view /*family*/, std::string_view /*help*/, const labels& /*labels*/,
                     double /*by*/ = 1) {}
  virtual void gauge(std::string_view /*family*/, std::string_view /*help*/, const labels& /*labels*/,
                     double /*value*/) {}
  virtual void observe(std::string_view /*family*/, std::string_view /*help*/, const labels& /*labels*/,
                       double /*seconds*/) {}
  /// The Prometheus text exposition of everything above.
  [[nodiscard]] virtual std::string render() = 0;

  /// One series as it stands: a counter's or gauge's value; a histogram's
  /// sum (`value`), count and cumulative buckets (upper bound, count).
  struct sample {
    std::string family;
    labels series_labels;
    double value = 0;
    std::uint64_t count = 0;
    std::vector<std::pair<double, std::uint64_t>> buckets;
  };
  /// The series of these families (the console's stores view reads the
  /// numbers /metrics shows, not a second set of counters). Empty by default.
  [[nodiscard]] virtual std::vector<sample> read(const std::vector<std::string>& /*families*/) { return {}; }
};

} // namespace colony::runtime
