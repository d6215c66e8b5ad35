// The Kafka modules: the outbox relay (kafka-brokers, kafka.events-topic,
// kafka.value-format) and the command consumer (kafka.commands-topic, ...).
// Both are off without kafka-brokers. The relay starts before the entities
// and stops after them, so that their last commits are published; the
// consumer starts after them and stops before them, so that the command in
// hand finishes and its offset is committed.
#include <caf/all.hpp>
#include <cstdio>

#include "colony/adapters/kafka.hpp"
#include "colony/runtime/cluster.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

runtime::readiness_line relay_line(const relay_monitor* monitor) {
  if (monitor == nullptr)
    return {'+', "events relay: off (no kafka-brokers); GET /v1/events serves the outbox"};
  auto r = monitor->get();
  auto age = r.oldest_us ? static_cast<double>(protocol::now_us() - r.oldest_us) / 1e6 : 0.0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", age);
  return {r.brokers_up ? '+' : '!',
          "events relay: kafka " +
            (r.brokers_up ? std::string{"reachable"}
                          : "unreachable" + (r.detail.empty() ? std::string{} : " (" + r.detail + ")")) +
            "; backlog " + std::to_string(r.backlog) + " events, oldest " + buf + " s; published " +
            std::to_string(r.published)};
}

class relay_impl final : public runtime::module {
public:
  std::string_view name() const override { return "relay"; }
  std::string_view title() const override { return "the event relay"; }

  void options(runtime::option_registry& r) override {
    r.add("relay",
          opt::string("kafka-brokers",
                      "Kafka bootstrap servers (host:port,...); empty: the event relay and the command "
                      "consumer are off, and events are served by GET /v1/events only",
                      &node_config::kafka_brokers));
    r.add("relay",
          opt::string("kafka.events-topic", "topic the outbox relay publishes domain events to",
                      &node_config::kafka_events_topic, opt::kafka_topic));
    r.add("relay",
          opt::choice("kafka.value-format", "encoding of event values: protobuf (colony.v1.Event) or json",
                      {"protobuf", "json"}, &node_config::kafka_value_format));
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    if (cfg.kafka_brokers.empty()) {
      node.readiness->add([] { return relay_line(nullptr); });
      log::info("event relay off: no --kafka-brokers; events stay readable at GET /v1/events");
      return;
    }
    relay_options o;
    o.owner = node.chores;
    o.brokers = cfg.kafka_brokers;
    o.topic = cfg.kafka_events_topic;
    o.json_values = cfg.kafka_value_format == "json";
    o.metrics = node.metrics;
    auto monitor = std::make_shared<relay_monitor>();
    actor_ = spawn_outbox_relay(node.sys, node.store, o, monitor);
    node.readiness->add([monitor] { return relay_line(monitor.get()); });
    log::info(
      "event relay on",
      {{"brokers", cfg.kafka_brokers}, {"topic", cfg.kafka_events_topic}, {"value_format", cfg.kafka_value_format}});
  }

  std::chrono::milliseconds stop_budget(const node_config&) const override { return std::chrono::seconds(8); }

  void stop(runtime::node_context& node, std::chrono::steady_clock::time_point deadline) override {
    // The relay flushes what is in flight and records the acknowledged
    // events before the store goes away.
    runtime::stop_and_wait(node.sys, actor_, deadline, "the event relay");
  }

private:
  caf::actor actor_;
};

class commands_impl final : public runtime::module {
public:
  std::string_view name() const override { return "commands"; }
  std::string_view title() const override { return "the command consumer"; }

  void options(runtime::option_registry& r) override {
    const std::string m = "commands";
    r.add(m,
          opt::string("kafka.commands-topic", "topic of commands from other systems (colony.v1.Command)",
                      &node_config::kafka_commands_topic, opt::kafka_topic));
    r.add(m,
          opt::string("kafka.results-topic", "topic the result of each command goes to, keyed by command id",
                      &node_config::kafka_results_topic, opt::kafka_topic));
    r.add(m,
          opt::string("kafka.dlq-topic", "dead-letter topic for commands that cannot be parsed or keep failing",
                      &node_config::kafka_dlq_topic, opt::kafka_topic));
    r.add(m,
          opt::string("kafka.group-id", "consumer group of the command consumer", &node_config::kafka_group_id,
                      opt::not_empty));
    r.add(m,
          opt::integer("kafka.command-attempts", "tries of a command that fails transiently before it is dead-lettered",
                       1, 100, &node_config::kafka_command_attempts));
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    if (cfg.kafka_brokers.empty())
      return;
    command_consumer_options o;
    o.brokers = cfg.kafka_brokers;
    o.group_id = cfg.kafka_group_id;
    o.commands_topic = cfg.kafka_commands_topic;
    o.results_topic = cfg.kafka_results_topic;
    o.dlq_topic = cfg.kafka_dlq_topic;
    o.attempts = cfg.kafka_command_attempts;
    o.request_timeout = cfg.request_timeout;
    o.metrics = node.metrics;
    if (!cfg.cluster_listen.empty()) // node names are unique in a cluster (the membership table sees to it)
      o.instance_id = "colony-" + runtime::cluster::node_name_of(cfg.node_name);
    actor_ = spawn_command_consumer(node.sys, node.entities.actor, node.store, o);
    log::info("command consumer on",
              {{"topic", cfg.kafka_commands_topic},
               {"group", cfg.kafka_group_id},
               {"instance", o.instance_id},
               {"results", cfg.kafka_results_topic},
               {"dlq", cfg.kafka_dlq_topic}});
  }

  std::chrono::milliseconds stop_budget(const node_config&) const override { return std::chrono::seconds(15); }

  void stop(runtime::node_context& node, std::chrono::steady_clock::time_point deadline) override {
    runtime::stop_and_wait(node.sys, actor_, deadline, "the command consumer");
  }

private:
  caf::actor actor_;
};

} // namespace

std::unique_ptr<runtime::module> relay_module() { return std::make_unique<relay_impl>(); }
std::unique_ptr<runtime::module> commands_module() { return std::make_unique<commands_impl>(); }

} // namespace colony::adapters
