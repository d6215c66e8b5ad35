// Kafka adapters (librdkafka; its headers stay in adapters/src/kafka).
//
// The outbox relay publishes committed events from the store's outbox to a
// Kafka topic and marks each one published only after the brokers
// acknowledged it (idempotent producer, acks=all). While the brokers are
// unreachable events wait in the outbox; the relay reports the backlog and its
// age through relay_monitor (for /readyz?verbose) and the metrics.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "colony/actors/ports/store_port.hpp"
#include "colony/runtime/metrics.hpp"
#include "colony/runtime/module.hpp"
#include "colony/runtime/singleton.hpp"

namespace colony::adapters {

struct relay_options {
  std::string brokers; // bootstrap servers
  std::string topic = "colony.events.v1";
  bool json_values = false;                                                     // false: colony.v1.Event protobuf bytes
  int batch = 500;                                                              // outbox rows read per round
  int max_in_flight = 10'000;                                                   // produced but not yet acknowledged
  std::shared_ptr<runtime::metrics> metrics;                                    // may be null
  std::shared_ptr<runtime::singleton> owner = runtime::single_node_singleton(); // reads only while "relay" is granted
};

struct relay_status {
  bool enabled = false;
  bool brokers_up = false;
  std::int64_t backlog = 0;   // unpublished outbox events
  std::int64_t oldest_us = 0; // created_us of the oldest of them (0: none)
  std::int64_t published = 0; // events acknowledged since start
  std::string detail;         // last broker error, if any
};

/// The relay's latest status, readable from any thread.
class relay_monitor {
public:
  [[nodiscard]] relay_status get() const {
    std::lock_guard<std::mutex> g{m_};
    return s_;
  }
  template <class F>
  void update(F f) {
    std::lock_guard<std::mutex> g{m_};
    f(s_);
  }

private:
  mutable std::mutex m_;
  relay_status s_;
};

struct command_consumer_options {
  std::string brokers;
  std::string group_id = "colony";
  std::string commands_topic = "colony.commands.v1";
  std::string results_topic = "colony.command-results.v1";
  std::string dlq_topic = "colony.commands.dlq.v1";
  int attempts = 3; // tries of a command that fails transiently
  std::chrono::milliseconds request_timeout{10'000};
  /// Non-empty: static group membership (KIP-345) under this id (the node
  /// name on a cluster), so a node restarted within the session timeout
  /// gets its partitions back without a rebalance of the others.
  std::string instance_id;
  /// Set: the lag of each assigned partition (high watermark minus this
  /// consumer's position) as colony_kafka_consumer_lag, every 5 s.
  std::shared_ptr<runtime::metrics> metrics;
};

/// Starts the command consumer: reads colony.v1.Command messages (protobuf
/// or JSON), routes each to its entity through the registry like an HTTP
/// request, applies each command id at most once, writes a result message
/// per command, sends unparsable or persistently failing messages to the
/// dead-letter topic, and commits an offset only after its command is done.
/// Stop it with actors::stop_atom.
[[nodiscard]] caf::actor spawn_command_consumer(caf::actor_system& sys, caf::actor registry, actors::store_port store,
                                                command_consumer_options opts);

/// Starts the relay (a detached actor with its own producer). Stop it with
/// actors::stop_atom: it flushes what is in flight (at most 5 s) and exits.
[[nodiscard]] caf::actor spawn_outbox_relay(caf::actor_system& sys, actors::store_port store, relay_options opts,
                                            std::shared_ptr<relay_monitor> monitor);

/// The relay module (kafka-brokers, kafka.events-topic, kafka.value-format)
/// and the command consumer module (kafka.commands-topic, ...); both are
/// off without kafka-brokers.
[[nodiscard]] std::unique_ptr<runtime::module> relay_module();
[[nodiscard]] std::unique_ptr<runtime::module> commands_module();

} // namespace colony::adapters
