// The webhook notifier: fans committed events out to the tenants' webhook
// endpoints and delivers them. Both halves are durable: the fan-out writes one
// delivery row per (endpoint, event) together with its read position in the
// outbox, and a delivery stays pending (with its retry time) until an
// endpoint answered 2xx or the attempts are used up (then it is dead and
// visible in the deliveries list). Deliveries run concurrently on the
// notifier's own Asio thread, each with a timeout, so a slow endpoint never
// delays the others.
#include <utility> // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/all.hpp>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "colony/actors/integrations/webhook_model.hpp"
#include "colony/adapters/webhooks.hpp"
#include "colony/protocol/json.hpp"
#include "http_exchange.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/event.pb.h"

namespace colony::adapters {
namespace {

using namespace actors;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

constexpr const char* cursor_name = "webhooks";
/// A claimed delivery is due again this long after its attempt's timeout
/// (when the node that claimed it did not record the attempt: it died).
constexpr std::chrono::seconds claim_margin{2};

struct attempt_result {
  std::string delivery_id;
  int status = 0;    // HTTP status; 0 when no answer
  std::string error; // why not delivered
};

struct results_queue {
  std::mutex m;
  std::vector<attempt_result> done;
  void push(attempt_result r) {
    std::lock_guard<std::mutex> g{m};
    done.push_back(std::move(r));
  }
  std::vector<attempt_result> take() {
    std::lock_guard<std::mutex> g{m};
    return std::exchange(done, {});
  }
};

void notifier(caf::blocking_actor* self, store_port store, webhook_options o) {
  constexpr auto timeout = std::chrono::seconds(10);
  auto ask = [&](webhook_op op) {
    webhook_result out;
    out.status = store_status::unavailable;
    self->request(store, timeout, webhook_atom::value, std::move(op))
      .receive([&](webhook_result& r) { out = std::move(r); }, [](caf::error&) {});
    return out;
  };
  auto stopped = [&](std::chrono::milliseconds wait) {
    bool stop = false;
    self->receive([&](stop_atom) { stop = true; }, caf::after(wait) >> [] {});
    return stop;
  };
  // Not before the store is ready (migrated).
  for (bool ready = false; !ready;) {
    self->request(store, timeout, health_atom::value)
      .receive([&](store_health& h) { ready = h.ready; }, [](caf::error&) {});
    if (!ready && stopped(std::chrono::milliseconds(100)))
      return;
  }
  std::optional<std::int64_t> position;
  net::ssl::context tls{net::ssl::context::tls_client};
  load_trust(tls, o.ca_file);
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread io([&ioc] { ioc.run(); });
  auto queue = std::make_shared<results_queue>();
  std::map<std::string, webhook_delivery> in_flight;
  std::mt19937_64 rng{std::random_device{}()};

  for (;;) {
    // The fan-out is the "webhooks" chore's (one reader of the outbox, one
    // cursor); deliveries are sent by the owner of their tenant's shard on a
    // cluster (a dead node's are due again on the new owners when their
    // claim runs out), and the chore's holder sends those written before
    // deliveries had a shard.
    bool fan_out = !o.owner || o.owner->granted("webhooks");
    shard_scope scope;
    if (o.owner) {
      if (auto mine = o.owner->shards()) {
        scope.all = false;
        scope.shards = std::move(*mine);
      }
      scope.unsharded = !scope.all && fan_out;
    }
    bool sends = scope.all || !scope.shards.empty() || scope.unsharded;
    if (!fan_out && !sends && in_flight.empty()) {
      if (stopped(o.poll_interval))
        break;
      continue;
    }
    // 1. Fan out new events to matching endpoints (with the new read position, atomically).
    if (!fan_out)
      position.reset(); // read again when granted: another node moved it meanwhile
    if (fan_out && !position) {
      webhook_op op;
      op.what = webhook_op::kind::read_cursor;
      op.cursor = cursor_name;
      auto r = ask(op);
      if (r.status == store_status::ok)
        position = r.position;
    }
    if (fan_out && position) {
      event_page page;
      page.status = store_status::unavailable;
      self->request(store, timeout, events_atom::value, event_query{{}, *position, 200, false})
        .receive([&](event_page& p) { page = std::move(p); }, [](caf::error&) {});
      if (page.status == store_status::ok && !page.rows.empty()) {
        std::map<std::string, std::vector<webhook_endpoint>> endpoints; // by tenant, for this batch
        webhook_op enqueue;
        enqueue.what = webhook_op::kind::enqueue;
        enqueue.cursor = cursor_name;
        bool ok = true;
        auto now = protocol::now_us();
        for (const auto& row : page.rows) {
          v1::Event ev;
          if (!ev.ParseFromString(row.payload))
            continue;
          auto it = endpoints.find(ev.tenant_id());
          if (it == endpoints.end()) {
            webhook_op list;
            list.what = webhook_op::kind::list_endpoints;
            list.tenant_id = ev.tenant_id();
            auto r = ask(list);
            if (r.status != store_status::ok) {
              ok = false;
              break;
            }
            it = endpoints.emplace(ev.tenant_id(), std::move(r.endpoints)).first;
          }
          auto occurred = protocol::timestamp_us(ev.occurred_at());
          for (const auto& e : it->second) {
            if (e.created_us > occurred || !webhook_matches(e.event_types, ev.type()))
              continue; // an endpoint gets the events from its creation on
            webhook_delivery d;
            d.id = protocol::new_uuid_v7();
            d.endpoint_id = e.id;
            d.tenant_id = e.tenant_id;
            d.event_id = ev.id();
            d.event_type = ev.type();
            d.body = protocol::to_json(ev);
            d.next_attempt_us = now;
            d.created_us = now;
            enqueue.deliveries.push_back(std::move(d));
          }
        }
        if (ok) {
          enqueue.position = page.rows.back().position;
          if (ask(enqueue).status == store_status::ok)
            position = enqueue.position;
        }
      }
    }

    // 2. Record finished attempts.
    auto finished = queue->take();
    if (!finished.empty()) {
      webhook_op record;
      record.what = webhook_op::kind::record;
      auto now = protocol::now_us();
      for (auto& f : finished) {
        auto it = in_flight.find(f.delivery_id);
        if (it == in_flight.end())
          continue;
        auto d = std::move(it->second);
        in_flight.erase(it);
        d.attempts += 1;
        d.last_status = f.status;
        d.last_error = f.error;
        d.updated_us = now;
        std::uniform_real_distribution<double> jitter(0.0, 1.0);
        auto next = after_attempt(f.error.empty(), d.attempts, o.max_attempts, o.retry_base, jitter(rng), now);
        if (o.metrics)
          o.metrics->count("colony_webhook_attempts_total",
                           "Webhook delivery attempts this node made, by outcome (delivered, retry, dead)",
                           {{"outcome",
                             next.what == delivery_next::state::delivered ? "delivered"
                               : next.what == delivery_next::state::dead  ? "dead"
                                                                          : "retry"}});
        if (next.what == delivery_next::state::delivered) {
          d.status = "delivered";
        } else if (next.what == delivery_next::state::dead) {
          d.status = "dead";
          log::warn(
            "webhook delivery dead-lettered",
            {{"delivery", d.id}, {"endpoint", d.endpoint_id}, {"attempts", d.attempts}, {"error", d.last_error}});
        } else {
          d.next_attempt_us = next.next_attempt_us; // backoff (webhook_model: after_attempt)
        }
        record.deliveries.push_back(std::move(d));
      }
      if (!record.deliveries.empty() && ask(record).status != store_status::ok)
        log::warn("webhook results not recorded; those deliveries are retried");
    }

    // 3. Claim due deliveries (until the attempt's timeout and a margin
    // are over) and start them, concurrently.
    if (sends && static_cast<int>(in_flight.size()) < o.max_in_flight) {
      webhook_op due;
      due.what = webhook_op::kind::due;
      due.now_us = protocol::now_us();
      due.limit = o.max_in_flight - static_cast<int>(in_flight.size());
      due.scope = std::move(scope);
      due.lease_us =
        due.now_us + std::chrono::duration_cast<std::chrono::microseconds>(o.timeout + claim_margin).count();
      auto r = ask(due);
      for (auto& d : r.deliveries) {
        if (in_flight.contains(d.id) || static_cast<int>(in_flight.size()) >= o.max_in_flight)
          continue;
        auto url = protocol::parse_http_url(d.url);
        if (!url) {
          queue->push(attempt_result{d.id, 0, "the endpoint URL cannot be used"});
          in_flight.emplace(d.id, d);
          continue;
        }
        auto secret = o.secrets ? o.secrets->open(d.secret) : std::optional<std::string>{d.secret};
        if (!secret) {
          log::error("a webhook secret does not open under the secrets key (was secrets-key changed?)",
                     {{"delivery", d.id}});
          queue->push(attempt_result{d.id, 0, "the endpoint's secret cannot be read"});
          in_flight.emplace(d.id, d);
          continue;
        }
        auto t = protocol::now_us() / 1'000'000;
        std::vector<std::pair<std::string, std::string>> headers{
          {"Colony-Signature", "t=" + std::to_string(t) + ",v1=" + timestamped_signature(*secret, t, d.body)},
          {"Colony-Event-Id", d.event_id},
          {"Colony-Event-Type", d.event_type},
          {"Colony-Delivery-Id", d.id},
          {"Colony-Delivery-Attempt", std::to_string(d.attempts + 1)}};
        exchange_request req;
        req.url = *url;
        req.body = d.body;
        req.headers = std::move(headers);
        req.timeout = o.timeout;
        req.allow_private = o.allow_private_targets;
        req.max_body = 8 << 20; // Beast's default for a response; only the status counts
        req.log_id = d.id;
        auto id = d.id;
        in_flight.emplace(d.id, std::move(d));
        net::post(ioc, [&ioc, &tls, queue, req = std::move(req), id]() mutable {
          start_exchange(ioc, tls, std::move(req), [queue, id](exchange_result x) {
            auto error = x.status == 0            ? x.error
              : x.status >= 200 && x.status < 300 ? std::string{}
                                                  : "answered " + std::to_string(x.status);
            queue->push(attempt_result{id, x.status, std::move(error)});
          });
        });
      }
    }

    if (stopped(o.poll_interval))
      break;
  }
  // In-flight attempts are abandoned: their rows are still pending and are sent again after the restart.
  work.reset();
  ioc.stop();
  io.join();
}

} // namespace

caf::actor spawn_webhook_notifier(caf::actor_system& sys, store_port store, webhook_options opts) {
  return sys.spawn<caf::detached>(notifier, std::move(store), opts);
}

} // namespace colony::adapters
