#include <caf/all.hpp>
#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>

#include "backend.hpp"
#include "colony/adapters/store.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/config.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters {
namespace {

using namespace actors;
using store::backend;
using store::unavailable_error;

using batch_result = std::vector<commit_outcome>;

// The service's own clock for load deadlines, apart from the health tick
// (which waits for the writer, and a stuck writer would hold it up).
using expire_atom = caf::atom_constant<caf::atom("expire")>;

// A worker owns one connection. The writer also takes whole batches.
// tick: "the database answers again": drop the reconnect backoff so the next
// operation connects at once.
using worker_port = store_port::extend<caf::replies_to<batch_atom, std::vector<change>>::with<batch_result>,
                                       caf::replies_to<load_atom, std::vector<entity_key>>::with<std::vector<loaded>>,
                                       caf::reacts_to<tick_atom>>;

struct worker_state {
  std::shared_ptr<backend> db;
  bool writer = false;
  bool connected = false;
  std::chrono::steady_clock::time_point next_attempt{};
  std::chrono::milliseconds backoff{100};
  std::string last_error;
  static inline const char* name = "colony.store.worker";
};

using worker_ptr = worker_port::stateful_pointer<worker_state>;

/// Opens the connection if needed, honouring the backoff between attempts.
void ensure(worker_ptr self) {
  auto& st = self->state;
  if (st.connected)
    return;
  auto now = std::chrono::steady_clock::now();
  if (now < st.next_attempt)
    throw unavailable_error(st.last_error.empty() ? "reconnecting" : st.last_error);
  try {
    st.db->open();
    if (st.writer)
      st.db->migrate();
    st.connected = true;
    st.backoff = std::chrono::milliseconds(100);
    st.last_error.clear();
  } catch (const std::exception& e) {
    st.last_error = e.what();
    st.next_attempt = now + st.backoff;
    st.backoff = std::min(st.backoff * 2, std::chrono::milliseconds(5000));
    throw unavailable_error(st.last_error);
  }
}

/// Runs `f` against the connection, mapping driver failures to statuses.
template <class Result, class F>
Result guarded(worker_ptr self, F f) {
  Result r;
  try {
    ensure(self);
    return f(*self->state.db);
  } catch (const unavailable_error& e) {
    self->state.connected = false;
    self->state.last_error = e.what();
    r.status = store_status::unavailable;
    r.detail = e.what();
  } catch (const std::exception& e) {
    r.status = store_status::error;
    r.detail = e.what();
    log::error("store operation failed", {{"error", e.what()}});
  }
  return r;
}

/// A key lookup: the id, "" if there is none, or an error when the database
/// cannot answer, so that callers answer 503 rather than "not found".
template <class F>
auto lookup(worker_ptr self, F f) -> caf::result<decltype(f(std::declval<backend&>()))> {
  try {
    ensure(self);
    return f(*self->state.db);
  } catch (const unavailable_error& e) {
    self->state.connected = false;
    self->state.last_error = e.what();
  } catch (const std::exception& e) {
    log::error("store lookup failed", {{"error", e.what()}});
  }
  // request_timeout: what a caller maps to "unavailable, retry later".
  return caf::make_error(caf::sec::request_timeout, "the store cannot answer");
}

batch_result run_batch(worker_ptr self, const std::vector<change>& batch) {
  try {
    ensure(self);
    return self->state.db->commit(batch);
  } catch (const unavailable_error& e) {
    self->state.connected = false;
    self->state.last_error = e.what();
    return batch_result(batch.size(), commit_outcome{store_status::unavailable, {}, e.what()});
  } catch (const std::exception& e) {
    log::error("store commit failed", {{"error", e.what()}, {"batch", static_cast<int>(batch.size())}});
    return batch_result(batch.size(), commit_outcome{store_status::error, {}, e.what()});
  }
}

worker_port::behavior_type worker(worker_ptr self, std::shared_ptr<backend> db, bool writer) {
  self->state.db = std::move(db);
  self->state.writer = writer;
  // A stray error message (e.g. a reply some sender could not handle) must
  // not end the worker, and with it the store: CAF's default would quit.
  self->set_error_handler([](caf::error& err) {
    log::warn("store worker: error message ignored", {{"error", caf::to_string(err)}});
  });
  return {
    [self](load_atom, const entity_key& key) { return guarded<loaded>(self, [&](backend& b) { return b.load(key); }); },
    [self](load_atom, const std::vector<entity_key>& keys) {
      try {
        ensure(self);
        return self->state.db->load_many(keys);
      } catch (const unavailable_error& e) {
        self->state.connected = false;
        self->state.last_error = e.what();
        return std::vector<loaded>(keys.size(), loaded{store_status::unavailable, {}, 0, 0, e.what()});
      } catch (const std::exception& e) {
        log::error("store load failed", {{"error", e.what()}, {"batch", static_cast<int>(keys.size())}});
        return std::vector<loaded>(keys.size(), loaded{store_status::error, {}, 0, 0, e.what()});
      }
    },
    [self](commit_atom, const change& ch) { return run_batch(self, {ch}).front(); },
    [self](batch_atom, const std::vector<change>& batch) { return run_batch(self, batch); },
    [self](list_atom, const list_query& q) { return guarded<row_page>(self, [&](backend& b) { return b.list(q); }); },
    [self](resolve_atom, const std::string& slug) -> caf::result<std::string> {
      return lookup(self, [&](backend& b) { return b.resolve_slug(slug); });
    },
    [self](tick_atom) {
      self->state.next_attempt = {};
      self->state.backoff = std::chrono::milliseconds(100);
    },
    [self](webhook_atom, const webhook_op& op) {
      return guarded<webhook_result>(self, [&](backend& b) { return b.webhooks(op); });
    },
    [self](api_key_atom, const api_key_op& op) {
      return guarded<api_key_result>(self, [&](backend& b) { return b.api_keys(op); });
    },
    [self](usage_atom, const api_usage_op& op) {
      return guarded<api_usage_result>(self, [&](backend& b) { return b.api_usage(op); });
    },
    [self](audit_atom, const audit_op& op) {
      return guarded<audit_page>(self, [&](backend& b) { return b.audit(op); });
    },
    [self](user_data_atom, const user_data_op& op) {
      return guarded<user_data>(self, [&](backend& b) { return b.user_data(op); });
    },
    [self](idempotency_atom, const idempotency_op& op) {
      return guarded<idempotency_result>(self, [&](backend& b) { return b.idempotency(op); });
    },
    [self](plugin_atom, const plugin_op& op) {
      return guarded<plugin_result>(self, [&](backend& b) { return b.plugins(op); });
    },
    [self](processed_atom, const std::string& key) -> caf::result<bool> {
      return lookup(self, [&](backend& b) { return b.processed(key); });
    },
    [self](resolve_atom, const std::string& system, const std::string& id) -> caf::result<std::string> {
      return lookup(self, [&](backend& b) { return b.resolve_external(system, id); });
    },
    [self](events_atom, const event_query& q) {
      return guarded<event_page>(self, [&](backend& b) { return b.events(q); });
    },
    [self](published_atom, const std::vector<std::int64_t>& positions, std::int64_t at_us) {
      return guarded<commit_outcome>(self, [&](backend& b) {
        b.mark_published(positions, at_us);
        return commit_outcome{};
      });
    },
    [self](backlog_atom) { return guarded<outbox_backlog>(self, [&](backend& b) { return b.backlog(); }); },
    [self](timers_atom, std::int64_t now, std::int32_t limit, const shard_scope& scope) {
      return guarded<timer_page>(self, [&](backend& b) { return b.due_timers(now, limit, scope); });
    },
    [self](timer_done_atom, const std::string& id, std::int64_t due) {
      return guarded<commit_outcome>(self, [&](backend& b) {
        b.timer_done(id, due);
        return commit_outcome{};
      });
    },
    [self](timer_retry_atom, const std::string& id, std::int64_t due, std::int32_t attempts) {
      return guarded<commit_outcome>(self, [&](backend& b) {
        b.timer_retry(id, due, attempts);
        return commit_outcome{};
      });
    },

    [self](health_atom) {
      store_health h;
      try {
        ensure(self);
        self->state.db->ping();
        h.ready = true;
        h.detail = "ok";
      } catch (const std::exception& e) {
        self->state.connected = false;
        self->state.last_error = e.what();
        h.detail = e.what();
      }
      return h;
    },
  };
}

/// A request waiting for its group (a commit or a load) and its answer.
template <class T, class R>
struct pending {
  T item;
  caf::typed_response_promise<R> rp;
  std::chrono::steady_clock::time_point since{}; // set for loads only (their deadline)
};

using pending_commit = pending<change, commit_outcome>;
using pending_load = pending<entity_key, loaded>;

/// Takes up to `max` waiting requests off the queue: the items for the
/// worker, the promises to answer in the same order.
template <class T, class R>
std::pair<std::vector<T>, std::vector<caf::typed_response_promise<R>>> take_group(std::deque<pending<T, R>>& queue,
                                                                                  std::size_t max) {
  std::pair<std::vector<T>, std::vector<caf::typed_response_promise<R>>> out;
  auto n = std::min(queue.size(), max);
  out.first.reserve(n);
  out.second.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.first.push_back(std::move(queue.front().item));
    out.second.push_back(std::move(queue.front().rp));
    queue.pop_front();
  }
  return out;
}

/// Answers each promise with its result, or `missing` if the worker gave fewer.
template <class R>
void deliver_all(std::vector<caf::typed_response_promise<R>>& promises, std::vector<R>& results, const R& missing) {
  for (std::size_t i = 0; i < promises.size(); ++i)
    promises[i].deliver(i < results.size() ? std::move(results[i]) : missing);
}

struct service_state {
  worker_port writer;
  std::vector<worker_port> readers;
  std::size_t next_reader = 0;
  // Loads (activations) are grouped like commits: a reader with no load
  // batch out takes every load waiting (up to max_batch) in one query.
  std::deque<pending_load> loads;
  // The promises of each reader's group out, and since when: a group the
  // database has not answered within load_timeout is answered `unavailable`
  // by expire_atom (the entity then answers 503), so activations need no CAF
  // request timeout of their own (each such timeout is a clock entry holding
  // the actor for its whole duration: ~200 B per activation, see
  // docs/performance.md).
  struct reader_load {
    bool out = false; // a group is at the reader (until it answers, even if expired)
    std::vector<caf::typed_response_promise<loaded>> promises;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<reader_load> reader_loads; // one per reader
  std::chrono::milliseconds load_timeout{30000};
  std::deque<pending_commit> pending;
  bool in_flight = false;
  std::size_t max_batch = 256;
  std::shared_ptr<runtime::metrics> metrics;
  store_health health;
  std::string where;
  static inline const char* name = "colony.store";
};

// The service implements store_port plus a private health timer (tick). It is
// dynamically typed inside (CAF 0.17 cannot extend a stateful typed actor with
// a self-sent atom here) and handed out as a store_port.
using service_ptr = caf::stateful_actor<service_state>*;

void flush(service_ptr self) {
  auto& st = self->state;
  if (st.in_flight || st.pending.empty())
    return;
  auto [batch, promises] = take_group(st.pending, st.max_batch);
  st.in_flight = true;
  auto started = std::chrono::steady_clock::now();
  self->request(st.writer, caf::infinite, batch_atom::value, std::move(batch))
    .then([self, promises = std::move(promises), started](batch_result& results) mutable {
      auto& s = self->state;
      s.in_flight = false;
      if (s.metrics)
        s.metrics->store_commit(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                                promises.size());
      deliver_all(promises, results, commit_outcome{store_status::error, {}, "missing result"});
      if (!results.empty() && results.front().status == store_status::unavailable)
        s.health = store_health{false, results.front().detail, protocol::now_us()};
      flush(self);
    });
}

void dispatch_loads(service_ptr self) {
  auto& st = self->state;
  for (std::size_t r = 0; r < st.readers.size() && !st.loads.empty(); ++r) {
    auto& rl = st.reader_loads[r];
    if (rl.out)
      continue;
    auto group = take_group(st.loads, st.max_batch);
    rl.out = true;
    rl.promises = std::move(group.second);
    rl.since = std::chrono::steady_clock::now();
    self->request(st.readers[r], caf::infinite, load_atom::value, std::move(group.first))
      .then(
        [self, r](std::vector<loaded>& results) {
          auto& s = self->state;
          auto& done = s.reader_loads[r];
          done.out = false;
          deliver_all(done.promises, results, loaded{store_status::error, {}, 0, 0, "missing result"});
          done.promises.clear();
          dispatch_loads(self);
        },
        [self, r](caf::error& err) {
          auto& s = self->state;
          auto& done = s.reader_loads[r];
          done.out = false;
          for (auto& p : done.promises)
            p.deliver(loaded{store_status::unavailable, {}, 0, 0, caf::to_string(err)});
          done.promises.clear();
          dispatch_loads(self);
        });
  }
}

/// Answers `unavailable` to loads waiting longer than load_timeout, queued or
/// out at a reader that has not answered (that reader gets no new group until
/// it does).
void expire_loads(service_ptr self) {
  auto& st = self->state;
  auto cutoff = std::chrono::steady_clock::now() - st.load_timeout;
  auto late = [&st] {
    return loaded{store_status::unavailable,
                  {},
                  0,
                  0,
                  "the store did not answer within " + std::to_string(st.load_timeout.count()) + " ms"};
  };
  while (!st.loads.empty() && st.loads.front().since < cutoff) {
    st.loads.front().rp.deliver(late());
    st.loads.pop_front();
  }
  for (auto& rl : st.reader_loads) {
    if (!rl.out || rl.since >= cutoff)
      continue;
    for (auto& p : rl.promises)
      p.deliver(late());
    rl.promises.clear();
  }
}

caf::behavior service(service_ptr self, store::backend_factory factory, std::string where, int readers, int max_batch,
                      std::chrono::milliseconds load_timeout, std::shared_ptr<runtime::metrics> metrics) {
  auto& st = self->state;
  st.load_timeout = load_timeout;
  st.where = std::move(where);
  st.max_batch = static_cast<std::size_t>(max_batch);
  st.metrics = std::move(metrics);
  st.health = store_health{false, "not yet connected to " + st.where, protocol::now_us()};
  auto spawn_worker = [&](bool writer) {
    std::shared_ptr<backend> db = factory();
    auto w = self->system().spawn<caf::detached>(worker, std::move(db), writer);
    self->link_to(w);
    return w;
  };
  self->attach_functor([](const caf::error& reason) {
    if (reason && reason != caf::exit_reason::user_shutdown)
      log::error("store service stopped", {{"reason", caf::to_string(reason)}});
  });
  st.writer = spawn_worker(true);
  for (int i = 0; i < readers; ++i)
    st.readers.push_back(spawn_worker(false));
  st.reader_loads.resize(st.readers.size());
  self->send(self, tick_atom::value);
  auto expire_period = std::clamp(load_timeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  self->delayed_send(self, expire_period, expire_atom::value);
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error& err) {
    log::warn("store: error message ignored", {{"error", caf::to_string(err)}});
  });
  auto reader = [self]() -> worker_port& {
    auto& s = self->state;
    return s.readers[s.next_reader++ % s.readers.size()];
  };
  return {
    [self](load_atom, entity_key& key) -> caf::result<loaded> {
      auto rp = self->make_response_promise<loaded>();
      self->state.loads.push_back(pending_load{std::move(key), rp, std::chrono::steady_clock::now()});
      dispatch_loads(self);
      return rp;
    },
    [self](commit_atom, change& ch) -> caf::result<commit_outcome> {
      auto rp = self->make_response_promise<commit_outcome>();
      self->state.pending.push_back(pending_commit{std::move(ch), rp});
      flush(self);
      return rp;
    },
    [self, reader](list_atom, list_query& q) -> caf::result<row_page> {
      return self->delegate(reader(), list_atom::value, std::move(q));
    },
    [self, reader](resolve_atom, std::string& slug) -> caf::result<std::string> {
      return self->delegate(reader(), resolve_atom::value, std::move(slug));
    },
    [self, reader](webhook_atom, webhook_op& op) -> caf::result<webhook_result> {
      using k = webhook_op::kind;
      bool write = op.what == k::create_endpoint || op.what == k::delete_endpoint || op.what == k::enqueue ||
        op.what == k::record || op.what == k::due; // due claims what it returns
      if (write)
        return self->delegate(self->state.writer, webhook_atom::value, std::move(op));
      return self->delegate(reader(), webhook_atom::value, std::move(op));
    },
    [self, reader](api_key_atom, api_key_op& op) -> caf::result<api_key_result> {
      using k = api_key_op::kind;
      if (op.what == k::create || op.what == k::revoke)
        return self->delegate(self->state.writer, api_key_atom::value, std::move(op));
      return self->delegate(reader(), api_key_atom::value, std::move(op));
    },
    [self, reader](user_data_atom, user_data_op& op) -> caf::result<user_data> {
      if (op.erase)
        return self->delegate(self->state.writer, user_data_atom::value, std::move(op));
      return self->delegate(reader(), user_data_atom::value, std::move(op));
    },
    [self](idempotency_atom, idempotency_op& op) -> caf::result<idempotency_result> {
      return self->delegate(self->state.writer, idempotency_atom::value, std::move(op));
    },
    [self, reader](plugin_atom, plugin_op& op) -> caf::result<plugin_result> {
      if (op.what == plugin_op::kind::publish || op.what == plugin_op::kind::advance ||
          op.what == plugin_op::kind::effects)
        return self->delegate(self->state.writer, plugin_atom::value, std::move(op));
      return self->delegate(reader(), plugin_atom::value, std::move(op));
    },
    [self, reader](audit_atom, audit_op& op) -> caf::result<audit_page> {
      if (op.append)
        return self->delegate(self->state.writer, audit_atom::value, std::move(op));
      return self->delegate(reader(), audit_atom::value, std::move(op));
    },
    [self, reader](usage_atom, api_usage_op& op) -> caf::result<api_usage_result> {
      if (op.add)
        return self->delegate(self->state.writer, usage_atom::value, std::move(op));
      return self->delegate(reader(), usage_atom::value, std::move(op));
    },
    [self, reader](processed_atom, std::string& key) -> caf::result<bool> {
      return self->delegate(reader(), processed_atom::value, std::move(key));
    },
    [self, reader](resolve_atom, std::string& system, std::string& id) -> caf::result<std::string> {
      return self->delegate(reader(), resolve_atom::value, std::move(system), std::move(id));
    },
    [self, reader](events_atom, event_query& q) -> caf::result<event_page> {
      return self->delegate(reader(), events_atom::value, std::move(q));
    },
    [self](published_atom, std::vector<std::int64_t>& positions, std::int64_t at_us) -> caf::result<commit_outcome> {
      return self->delegate(self->state.writer, published_atom::value, std::move(positions), at_us);
    },
    [self, reader](backlog_atom) -> caf::result<outbox_backlog> {
      return self->delegate(reader(), backlog_atom::value);
    },
    [self, reader](timers_atom, std::int64_t now, std::int32_t limit, shard_scope& scope) -> caf::result<timer_page> {
      return self->delegate(reader(), timers_atom::value, now, limit, std::move(scope));
    },
    [self](timer_done_atom, std::string& id, std::int64_t due) -> caf::result<commit_outcome> {
      return self->delegate(self->state.writer, timer_done_atom::value, std::move(id), due);
    },
    [self](timer_retry_atom, std::string& id, std::int64_t due, std::int32_t attempts) -> caf::result<commit_outcome> {
      return self->delegate(self->state.writer, timer_retry_atom::value, std::move(id), due, attempts);
    },
    [self](health_atom) -> store_health { return self->state.health; },
    [self, expire_period](expire_atom) {
      expire_loads(self);
      self->delayed_send(self, expire_period, expire_atom::value);
    },
    [self](tick_atom) {
      // Probe the writer: it reconnects (with backoff) and migrates when needed.
      self->request(self->state.writer, std::chrono::seconds(10), health_atom::value)
        .then(
          [self](store_health& h) {
            auto& s = self->state;
            if (h.ready != s.health.ready) {
              if (h.ready) {
                log::info("store ready", {{"store", s.where}});
                for (auto& r : s.readers) // they may be waiting out a backoff from the outage
                  self->send(r, tick_atom::value);
              } else
                log::warn("store unavailable; reconnecting with backoff", {{"store", s.where}, {"error", h.detail}});
              h.since_us = protocol::now_us();
            } else {
              h.since_us = s.health.since_us;
            }
            h.detail = (h.ready ? s.where + " ok" : s.where + ": " + h.detail);
            s.health = std::move(h);
            self->delayed_send(self, s.health.ready ? std::chrono::seconds(1) : std::chrono::milliseconds(200),
                               tick_atom::value);
          },
          [self](caf::error&) {
            auto& s = self->state;
            s.health = store_health{false, s.where + ": no answer from the database", protocol::now_us()};
            self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
          });
    },
  };
}

} // namespace

std::string describe_store(const store_options& opts) {
  if (opts.spec.starts_with("sqlite:")) {
    auto path = opts.spec.substr(7);
    if (path.empty())
      path = (std::filesystem::path(opts.data_dir) / "colony.db").string();
    return "sqlite:" + path;
  }
  return runtime::mask_dsn(opts.spec);
}

actors::store_port spawn_store(caf::actor_system& sys, const store_options& opts) {
  store::backend_factory factory;
  if (opts.spec.starts_with("sqlite:")) {
    auto path = describe_store(opts).substr(7);
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty())
      std::filesystem::create_directories(parent);
    factory = [path] { return store::make_sqlite_backend(path); };
  } else {
    auto dsn = opts.spec;
    factory = [dsn, fence = opts.fence] { return store::make_postgres_backend(dsn, fence); };
  }
  auto handle = sys.spawn(service, std::move(factory), describe_store(opts), std::max(1, opts.read_connections),
                          std::max(1, opts.max_batch), opts.load_timeout, opts.metrics);
  return caf::actor_cast<actors::store_port>(handle);
}

} // namespace colony::adapters
