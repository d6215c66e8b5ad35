// The command consumer: Kafka-driven integrations. One message at a time per
// node (commands of one partition stay in order): parse, skip if its command
// id was applied before, route through the registry like the HTTP request
// would be, write the result, and only then commit the offset
// (at-least-once, made effectively-once by the command id, which is recorded
// in the same transaction as the change it causes).
#include <algorithm>
#include <caf/all.hpp>
#include <librdkafka/rdkafka.h>
// librdkafka's RD_KAFKA_V_* argument macros are GNU statement expressions;
// they expand in this file, where clang's -Wpedantic would flag each one.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif
#include <map>
#include <nlohmann/json.hpp>

#include "colony/protocol/problem.hpp"
#include "colony/actors/entities.hpp"
#include "colony/adapters/kafka.hpp"
#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/command.pb.h"

namespace colony::adapters {
namespace {

using namespace actors;

std::string header(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return {};
  const void* v = nullptr;
  size_t n = 0;
  if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || v == nullptr)
    return {};
  return std::string(static_cast<const char*>(v), n);
}

/// Parses a command; the error says why not.
std::optional<v1::Command> parse(const rd_kafka_message_t* m, std::string& error) {
  std::string_view value(static_cast<const char*>(m->payload), m->len);
  auto ct = header(m, "content-type");
  bool json = ct.starts_with("application/json") ||
    (ct.empty() && !value.empty() && (value.front() == '{' || value.front() == ' '));
  v1::Command cmd;
  if (json) {
    if (auto err = protocol::from_json(value, cmd)) {
      error = "not a colony.v1.Command in JSON: " + (err->field.empty() ? "" : err->field + ": ") + err->message;
      return std::nullopt;
    }
  } else if (!cmd.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    error = "not a colony.v1.Command (protobuf)";
    return std::nullopt;
  }
  if (cmd.command_id().empty() || cmd.command_id().size() > 200)
    error = "commandId is required (at most 200 characters)";
  else if (cmd.tenant_id().empty())
    error = "tenantId is required";
  else if (cmd.action_case() == v1::Command::ACTION_NOT_SET)
    error = "the command names no action";
  if (!error.empty())
    return std::nullopt;
  return cmd;
}

/// The entity command for a Kafka command addressed to tenant `tid`.
command to_command(const v1::Command& c, const std::string& user_id_for_create) {
  command cmd;
  cmd.meta.request_id = c.command_id();
  cmd.meta.message_key = "cmd:" + c.command_id();
  switch (c.action_case()) {
    case v1::Command::kCreateUser:
      cmd.what = op::create_user;
      cmd.user_id = user_id_for_create;
      cmd.payload = std::make_shared<v1::CreateUserRequest>(c.create_user());
      break;
    case v1::Command::kUpdateUser:
      cmd.what = op::patch_user;
      cmd.user_id = c.update_user().user_id();
      cmd.text = protocol::to_json(c.update_user().patch());
      break;
    case v1::Command::kDeleteUser:
      cmd.what = op::remove_user;
      cmd.user_id = c.delete_user().user_id();
      break;
    case v1::Command::kChangePlan:
      cmd.what = op::patch;
      cmd.text = "{\"plan\":\"" + protocol::json_escape(c.change_plan().plan()) + "\"}";
      break;
    case v1::Command::kSuspendTenant:
      cmd.what = op::suspend;
      cmd.text = c.suspend_tenant().reason();
      break;
    case v1::Command::kActivateTenant:
      cmd.what = op::activate;
      cmd.text = c.activate_tenant().reason();
      break;
    case v1::Command::kTrackActivity:
      cmd.what = op::track_usage;
      cmd.payload = std::make_shared<v1::TrackActivity>(c.track_activity());
      break;
    default: break;
  }
  return cmd;
}

struct consumer {
  caf::blocking_actor* self;
  caf::actor registry;
  store_port store;
  command_consumer_options o;
  rd_kafka_t* rk = nullptr;  // consumer
  rd_kafka_t* out = nullptr; // producer for results and dead letters

  ~consumer() {
    if (rk != nullptr) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
    if (out != nullptr) {
      rd_kafka_flush(out, 5000);
      rd_kafka_destroy(out);
    }
  }

  static rd_kafka_conf_t* conf(const std::vector<std::pair<const char*, std::string>>& kv) {
    char err[512];
    rd_kafka_conf_t* c = rd_kafka_conf_new();
    for (const auto& [k, v] : kv)
      if (rd_kafka_conf_set(c, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        throw std::runtime_error(std::string{"kafka option "} + k + ": " + err);
      }
    return c;
  }

  /// Eager rebalances (assign, revoke) as librdkafka hands them over;
  /// logged, so an operator (and the tests) can see who holds what.
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void*) {
    std::string list;
    for (int i = 0; parts != nullptr && i < parts->cnt; ++i)
      list += (list.empty() ? "" : ",") + std::to_string(parts->elems[i].partition);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, parts);
      log::info("kafka: command partitions assigned", {{"partitions", list}});
    } else {
      rd_kafka_assign(rk, nullptr);
      log::info("kafka: command partitions revoked", {{"partitions", list}});
    }
  }

  void open() {
    char err[512];
    std::vector<std::pair<const char*, std::string>> kv{
      {"bootstrap.servers", o.brokers},
      {"group.id", o.group_id},
      {"client.id", "colonyd"},
      {"enable.auto.commit", "false"},
      {"auto.offset.reset", "earliest"},
      // Eager assignment only: librdkafka 2.0's cooperative-sticky has known
      // bugs (lost or doubly-owned partitions) fixed in later releases.
      {"partition.assignment.strategy", "roundrobin"},
      // A node that died is noticed within 10 s (librdkafka's default is 45 s).
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "1000"},
      {"log_level", "3"}};
    if (!o.instance_id.empty())
      kv.emplace_back("group.instance.id", o.instance_id);
    auto* cc = conf(kv);
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (rk == nullptr) {
      rd_kafka_conf_destroy(cc);
      throw std::runtime_error(std::string{"kafka consumer: "} + err);
    }
    rd_kafka_poll_set_consumer(rk);
    auto* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o.commands_topic.c_str(), RD_KAFKA_PARTITION_UA);
    auto rc = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error(std::string{"kafka subscribe: "} + rd_kafka_err2str(rc));
    auto* pc = conf({{"bootstrap.servers", o.brokers},
                     {"client.id", "colonyd-results"},
                     {"enable.idempotence", "true"},
                     {"acks", "all"},
                     {"linger.ms", "1"},
                     {"log_level", "3"}});
    out = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    if (out == nullptr) {
      rd_kafka_conf_destroy(pc);
      throw std::runtime_error(std::string{"kafka producer: "} + err);
    }
  }

  /// Produces and waits until the brokers have it (so that the offset commit
  /// that follows never gets ahead of the result).
  bool publish(const std::string& topic, std::string_view key, std::string_view value,
               const std::vector<std::pair<std::string, std::string>>& headers) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [k, v] : headers)
      rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    auto rc = rd_kafka_producev(out, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(key.data(), key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), // copied (F_COPY)
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(hdrs);
      log::error("kafka produce failed", {{"topic", topic}, {"error", rd_kafka_err2str(rc)}});
      return false;
    }
    while (rd_kafka_flush(out, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      bool stop = false;
      self->receive([&](stop_atom) { stop = true; }, caf::after(std::chrono::milliseconds(0)) >> [] {});
      if (stop)
        return false;
    }
    return true;
  }

  void result(const v1::Command& c, const nlohmann::json& doc) {
    publish(o.results_topic, c.command_id(), doc.dump(),
            {{"content-type", "application/json"}, {"colony-command-id", c.command_id()}});
  }

  void dead_letter(const rd_kafka_message_t* m, const std::string& stage, const std::string& error) {
    log::warn("command to the dead-letter topic",
              {{"stage", stage}, {"error", error}, {"offset", static_cast<std::int64_t>(m->offset)}});
    std::string_view key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
    std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    publish(o.dlq_topic, key, value,
            {{"colony-error", error},
             {"colony-error-stage", stage},
             {"colony-original-topic", rd_kafka_topic_name(m->rkt)},
             {"colony-original-partition", std::to_string(m->partition)},
             {"colony-original-offset", std::to_string(m->offset)},
             {"content-type", header(m, "content-type")}});
  }

  /// Asks the store whether the command was applied; nullopt if it cannot say.
  std::optional<bool> seen(const std::string& id) {
    std::optional<bool> out;
    self->request(store, o.request_timeout, processed_atom::value, "cmd:" + id)
      .receive([&](bool b) { out = b; }, [](caf::error&) {});
    return out;
  }

  /// The tenant's id from an id or a slug: "" if there is none, nullopt if the store cannot say.
  std::optional<std::string> tenant(const std::string& raw) {
    if (protocol::is_uuid(raw)) {
      std::string id = raw;
      for (auto& ch : id)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return id;
    }
    std::optional<std::string> out;
    self->request(store, o.request_timeout, resolve_atom::value, raw)
      .receive([&](std::string& id) { out = std::move(id); }, [](caf::error&) {});
    return out;
  }

  void handle(const rd_kafka_message_t* m) {
    std::string error;
    auto parsed = parse(m, error);
    if (!parsed) {
      dead_letter(m, "parse", error);
      return;
    }
    const auto& c = *parsed;
    auto user_id = protocol::new_uuid_v7(); // one id for every try of a create
    std::string last_error;
    for (int attempt = 1; attempt <= o.attempts; ++attempt) {
      if (attempt > 1) {
        bool stop = false;
        self->receive([&](stop_atom) { stop = true; },
                      caf::after(std::chrono::milliseconds(200 << (attempt - 2))) >> [] {});
        if (stop)
          return; // not committed: redelivered after the restart
      }
      auto was = seen(c.command_id());
      if (!was) {
        last_error = "the store cannot say whether the command was applied";
        continue;
      }
      if (*was) {
        result(c,
               {{"commandId", c.command_id()},
                {"status", "duplicate"},
                {"detail", "this command id was applied before; nothing changed"}});
        return;
      }
      auto tid = tenant(c.tenant_id());
      if (!tid) {
        last_error = "the store cannot resolve the tenant";
        continue;
      }
      if (tid->empty()) {
        auto r = protocol::problem_of(fail(errc::not_found, "no tenant '" + c.tenant_id() + "'"), c.command_id());
        result(c, {{"commandId", c.command_id()}, {"status", "problem"}, {"problem", nlohmann::json::parse(r.body)}});
        return;
      }
      std::optional<entity_reply> reply;
      caf::error failed;
      self->request(registry, o.request_timeout, entity_key{entity_kind::tenant, *tid, *tid}, to_command(c, user_id))
        .receive([&](entity_reply& r) { reply = std::move(r); }, [&](caf::error& e) { failed = e; });
      if (!reply) {
        last_error = failure_from(failed).detail;
        continue;
      }
      if (reply->error && (reply->error->code == errc::unavailable || reply->error->code == errc::internal)) {
        last_error = reply->error->detail;
        continue;
      }
      nlohmann::json doc{{"commandId", c.command_id()}};
      if (reply->error) {
        auto r = protocol::problem_of(*reply->error, c.command_id());
        doc["status"] = "problem";
        doc["problem"] = nlohmann::json::parse(r.body);
      } else {
        doc["status"] = reply->duplicate ? "duplicate" : "ok";
        doc["version"] = reply->version;
        if (reply->entity)
          doc["entity"] = nlohmann::json::parse(protocol::to_json(*reply->entity));
      }
      result(c, doc);
      return;
    }
    dead_letter(m, "apply", "failed " + std::to_string(o.attempts) + " times: " + last_error);
  }

  /// Partitions this consumer reported a lag for (a revoked one is set to 0:
  /// another member consumes it now, and lags there).
  std::map<std::int32_t, bool> lag_reported{};

  /// colony_kafka_consumer_lag{partition}: the cached high watermark (from
  /// the fetches; no broker round trip) minus the position consumed.
  void report_lag() {
    if (!o.metrics)
      return;
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (parts != nullptr)
        rd_kafka_topic_partition_list_destroy(parts);
      return;
    }
    rd_kafka_position(rk, parts);
    for (auto& [p, assigned] : lag_reported)
      assigned = false;
    for (int i = 0; i < parts->cnt; ++i) {
      const auto& e = parts->elems[i];
      std::int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(rk, e.topic, e.partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0)
        continue;
      auto at = e.offset >= 0 ? e.offset : low; // nothing consumed yet: from the start (auto.offset.reset earliest)
      o.metrics->gauge("colony_kafka_consumer_lag", "Command messages not yet consumed, per assigned partition",
                       {{"topic", e.topic}, {"partition", std::to_string(e.partition)}},
                       static_cast<double>(std::max<std::int64_t>(0, high - at)));
      lag_reported[e.partition] = true;
    }
    for (const auto& [p, assigned] : lag_reported)
      if (!assigned)
        o.metrics->gauge("colony_kafka_consumer_lag", "Command messages not yet consumed, per assigned partition",
                         {{"topic", o.commands_topic}, {"partition", std::to_string(p)}}, 0);
    rd_kafka_topic_partition_list_destroy(parts);
  }

  void run() {
    bool running = true;
    auto next_lag = std::chrono::steady_clock::now();
    while (running) {
      self->receive([&](stop_atom) { running = false; }, caf::after(std::chrono::milliseconds(0)) >> [] {});
      if (!running)
        break;
      if (auto now = std::chrono::steady_clock::now(); now >= next_lag) {
        report_lag();
        next_lag = now + std::chrono::seconds(5);
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
      rd_kafka_poll(out, 0);
      if (m == nullptr)
        continue;
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          log::debug("kafka consumer", {{"error", rd_kafka_message_errstr(m)}});
        rd_kafka_message_destroy(m);
        continue;
      }
      handle(m);
      // Done (result or dead letter written): now the offset may move on.
      if (auto rc = rd_kafka_commit_message(rk, m, 0); rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        log::warn("kafka offset commit failed; the command may be redelivered (it is deduplicated)",
                  {{"error", rd_kafka_err2str(rc)}});
      rd_kafka_message_destroy(m);
    }
  }
};

void consume(caf::blocking_actor* self, caf::actor registry, store_port store, command_consumer_options o) {
  consumer c{self, std::move(registry), std::move(store), std::move(o)};
  try {
    c.open();
  } catch (const std::exception& e) {
    log::error("the command consumer cannot start", {{"error", e.what()}});
    return;
  }
  c.run();
}

} // namespace

caf::actor spawn_command_consumer(caf::actor_system& sys, caf::actor registry, store_port store,
                                  command_consumer_options opts) {
  return sys.spawn<caf::detached>(consume, std::move(registry), std::move(store), std::move(opts));
}

} // namespace colony::adapters
