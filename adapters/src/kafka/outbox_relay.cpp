// The outbox relay: reads unpublished outbox rows in commit order, produces
// them to Kafka with an idempotent producer (acks=all, unlimited retries, so
// per-partition order holds), and marks each row published once its delivery
// report says the brokers have it. A crash between the ack and the mark gives
// a duplicate with the same event id on restart (at-least-once), never a loss.
//
// It runs as a detached (blocking) actor: librdkafka's delivery reports arrive
// through rd_kafka_poll on the relay's own thread, and the store is asked with
// blocking requests, so no scheduler thread ever waits on Kafka.
#include <algorithm>
#include <caf/all.hpp>
#include <librdkafka/rdkafka.h>
// librdkafka's RD_KAFKA_V_* argument macros are GNU statement expressions;
// they expand in this file, where clang's -Wpedantic would flag each one.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif

#include "colony/adapters/kafka.hpp"
#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/event.pb.h"

namespace colony::adapters {
namespace {

using namespace actors;
using clock = std::chrono::steady_clock;

struct relay_state {
  std::vector<std::int64_t> delivered;
  std::size_t in_flight = 0;
  bool failed = false;
  std::int64_t min_failed = 0;
  bool fatal = false;
  std::shared_ptr<relay_monitor> monitor;
  std::shared_ptr<runtime::metrics> metrics;
};

void set_brokers_up(relay_state& st, bool up, const std::string& detail) {
  bool changed = false;
  st.monitor->update([&](relay_status& s) {
    changed = s.brokers_up != up;
    s.brokers_up = up;
    if (!detail.empty() || up)
      s.detail = detail;
  });
  if (st.metrics)
    st.metrics->kafka_brokers_up(up);
  if (changed) {
    if (up)
      log::info("kafka brokers reachable; relaying the outbox");
    else
      log::warn("kafka brokers unreachable; events wait in the outbox", {{"error", detail}});
  }
}

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto& st = *static_cast<relay_state*>(opaque);
  auto pos = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(m->_private));
  --st.in_flight;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    st.delivered.push_back(pos);
    return;
  }
  log::error("kafka delivery failed; the event stays in the outbox and is sent again",
             {{"position", pos}, {"error", rd_kafka_err2str(m->err)}});
  st.min_failed = st.failed ? std::min(st.min_failed, pos) : pos;
  st.failed = true;
}

void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto& st = *static_cast<relay_state*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    set_brokers_up(st, false, reason);
  } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_fatal_error(rk, buf, sizeof buf);
    log::error("kafka producer fatal error; it is recreated", {{"error", std::string{buf}}});
    st.fatal = true;
  } else {
    log::debug("kafka client error", {{"error", std::string{reason}}});
  }
}

rd_kafka_t* make_producer(const relay_options& o, relay_state& st) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(std::string{"kafka option "} + k + ": " + err);
  };
  set("bootstrap.servers", o.brokers);
  set("client.id", "colonyd");
  set("enable.idempotence", "true");
  set("acks", "all");
  set("message.timeout.ms", "0"); // never give up: events wait until the brokers are back
  set("linger.ms", "5");
  set("partitioner", "murmur2_random"); // the Java client's partitioning of keys
  set("reconnect.backoff.max.ms", "2000");
  set("log_level", "3");
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, &st);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string{"kafka producer: "} + err);
  }
  return rk;
}

/// One header block per event: CloudEvents' Kafka binding (binary mode).
bool produce(rd_kafka_t* rk, const relay_options& o, const event_row& row, relay_state& st) {
  v1::Event ev;
  if (!ev.ParseFromString(row.payload)) {
    log::error("unreadable outbox row; skipped", {{"position", row.position}});
    st.delivered.push_back(row.position); // never blocks the stream; logged above
    return true;
  }
  std::string value = o.json_values ? protocol::to_json(ev) : row.payload;
  std::string content_type = o.json_values ? "application/json" : "application/protobuf; proto=colony.v1.Event";
  std::string source = "/colony/tenants/" + ev.tenant_id();
  std::string time = protocol::format_rfc3339(protocol::timestamp_us(ev.occurred_at()));
  auto ts_ms = protocol::timestamp_us(ev.occurred_at()) / 1000;
  for (;;) {
    auto rc = rd_kafka_producev(
      rk, RD_KAFKA_V_TOPIC(o.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(ev.aggregate_id().data(), ev.aggregate_id().size()), RD_KAFKA_V_VALUE(value.data(), value.size()),
      RD_KAFKA_V_TIMESTAMP(ts_ms),
      RD_KAFKA_V_HEADER("content-type", content_type.data(), static_cast<ssize_t>(content_type.size())),
      RD_KAFKA_V_HEADER("ce_specversion", "1.0", 3),
      RD_KAFKA_V_HEADER("ce_id", ev.id().data(), static_cast<ssize_t>(ev.id().size())),
      RD_KAFKA_V_HEADER("ce_type", ev.type().data(), static_cast<ssize_t>(ev.type().size())),
      RD_KAFKA_V_HEADER("ce_source", source.data(), static_cast<ssize_t>(source.size())),
      RD_KAFKA_V_HEADER("ce_subject", ev.aggregate_id().data(), static_cast<ssize_t>(ev.aggregate_id().size())),
      RD_KAFKA_V_HEADER("ce_time", time.data(), static_cast<ssize_t>(time.size())),
      RD_KAFKA_V_HEADER("traceparent", ev.traceparent().data(), static_cast<ssize_t>(ev.traceparent().size())),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::intptr_t>(row.position))), RD_KAFKA_V_END);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++st.in_flight;
      return true;
    }
    if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      log::error("kafka produce refused", {{"position", row.position}, {"error", rd_kafka_err2str(rc)}});
      return false;
    }
    rd_kafka_poll(rk, 100); // the local queue is full: let deliveries drain it
  }
}

void relay(caf::blocking_actor* self, store_port store, relay_options o, std::shared_ptr<relay_monitor> monitor) {
  relay_state st;
  st.monitor = std::move(monitor);
  st.metrics = o.metrics;
  st.monitor->update([&](relay_status& s) {
    s.enabled = true;
    s.detail = "connecting to " + o.brokers;
  });
  rd_kafka_t* rk = nullptr;
  try {
    rk = make_producer(o, st);
  } catch (const std::exception& e) {
    log::error("the event relay cannot start", {{"error", e.what()}});
    st.monitor->update([&](relay_status& s) { s.detail = e.what(); });
    return;
  }
  constexpr auto timeout = std::chrono::seconds(10);
  // Not before the store is ready (migrated), so nothing is read from a schema that is not there yet.
  for (bool ready = false; !ready;) {
    self->request(store, timeout, health_atom::value)
      .receive([&](store_health& h) { ready = h.ready; }, [](caf::error&) {});
    bool stop = false;
    if (!ready)
      self->receive([&](stop_atom) { stop = true; }, caf::after(std::chrono::milliseconds(100)) >> [] {});
    if (stop) {
      rd_kafka_destroy(rk);
      return;
    }
  }
  std::int64_t cursor = 0; // last position handed to the producer
  auto next_backlog = clock::now();
  auto next_probe = clock::now();
  bool running = true;

  auto mark_delivered = [&] {
    if (st.delivered.empty())
      return;
    auto positions = st.delivered;
    self->request(store, timeout, published_atom::value, positions, protocol::now_us())
      .receive(
        [&](commit_outcome& out) {
          if (out.status != store_status::ok)
            return; // kept; marked on the next round
          st.delivered.erase(st.delivered.begin(),
                             st.delivered.begin() + static_cast<std::ptrdiff_t>(positions.size()));
          if (st.metrics)
            st.metrics->events_published(positions.size());
          st.monitor->update([&](relay_status& s) { s.published += static_cast<std::int64_t>(positions.size()); });
          set_brokers_up(st, true, "");
        },
        [&](caf::error&) {});
  };

  while (running) {
    rd_kafka_poll(rk, 0);
    mark_delivered();
    if (st.fatal && st.in_flight == 0) {
      rd_kafka_destroy(rk);
      st.fatal = false;
      st.failed = false;
      cursor = 0; // everything not marked published is sent again
      rk = make_producer(o, st);
    }
    if (st.failed && st.in_flight == 0) {
      cursor = st.min_failed - 1;
      st.failed = false;
    }
    bool more = false;
    bool owned = !o.owner || o.owner->granted("relay");
    if (owned && !st.failed && !st.fatal && st.in_flight < static_cast<std::size_t>(o.max_in_flight)) {
      self->request(store, timeout, events_atom::value, event_query{{}, cursor, o.batch, true})
        .receive(
          [&](event_page& page) {
            if (page.status != store_status::ok)
              return;
            for (const auto& row : page.rows) {
              if (!produce(rk, o, row, st))
                break;
              cursor = row.position;
            }
            more = page.rows.size() == static_cast<std::size_t>(o.batch);
          },
          [&](caf::error&) {});
    }
    auto now = clock::now();
    if (now >= next_backlog) {
      next_backlog = now + std::chrono::seconds(1);
      self->request(store, timeout, backlog_atom::value)
        .receive(
          [&](outbox_backlog& b) {
            if (b.status != store_status::ok)
              return;
            st.monitor->update([&](relay_status& s) {
              s.backlog = b.count;
              s.oldest_us = b.oldest_us;
            });
            if (st.metrics)
              st.metrics->outbox_backlog(
                b.count, b.oldest_us ? static_cast<double>(protocol::now_us() - b.oldest_us) / 1e6 : 0.0);
          },
          [&](caf::error&) {});
    }
    if (!st.monitor->get().brokers_up && now >= next_probe) {
      next_probe = now + std::chrono::seconds(1);
      const rd_kafka_metadata_t* md = nullptr;
      if (rd_kafka_metadata(rk, 0, nullptr, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->broker_cnt > 0)
          set_brokers_up(st, true, "");
        rd_kafka_metadata_destroy(md);
      }
    }
    self->receive([&](stop_atom) { running = false; }, caf::after(std::chrono::milliseconds(0)) >> [] {});
    if (running && !more)
      rd_kafka_poll(rk, st.in_flight > 0 ? 10 : 50);
  }
  // Shutdown: give in-flight events a moment, record what was acknowledged.
  rd_kafka_flush(rk, 5000);
  rd_kafka_poll(rk, 0);
  mark_delivered();
  if (st.in_flight > 0)
    log::warn("stopping with events not yet acknowledged; they are sent again at the next start",
              {{"in_flight", static_cast<std::int64_t>(st.in_flight)}});
  rd_kafka_destroy(rk);
}

} // namespace

caf::actor spawn_outbox_relay(caf::actor_system& sys, store_port store, relay_options opts,
                              std::shared_ptr<relay_monitor> monitor) {
  return sys.spawn<caf::detached>(relay, std::move(store), std::move(opts), std::move(monitor));
}

} // namespace colony::adapters
