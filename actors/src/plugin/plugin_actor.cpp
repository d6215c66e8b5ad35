// The plugin kind's activation: one per (tenant, plugin), placed with its
// tenant. It owns the plugin's sandbox (one Lua state, made by the node's
// plugin_engine from the version's source, loaded from the registry on
// first use and again when the tenant's binding names another version),
// runs the hooks its tenant sends it one at a time, and counts broken
// limits: after env.plugin_fault_threshold in a row it asks the tenant to
// suspend the plugin (the circuit breaker). When the pump says its tenant
// has events after its on_event cursor, it reads them in order and hands
// them to on_event one message at a time (hook calls of the write path run
// in between), then moves the cursor; an event that fails waits with a
// backoff and after env.plugin_event_attempts goes to the dead letters.
//
// One hook call runs at a time (the sandbox is one Lua state): while a call
// waits for a host call (colony.kv, colony.users: plugin_host.cpp) or for
// its writes to commit, the actor keeps serving its mailbox and the calls
// that arrive meanwhile queue behind it, in arrival order.
#include "../entity_common.hpp"
#include "colony/actors/plugin/plugin_model.hpp"
#include "plugin_host_node.hpp"
#include "colony/v1/plugin.pb.h"
#include "colony/protocol/json.hpp"
#include "colony/v1/event.pb.h"
#include "colony/v1/tenant.pb.h"

#include <deque>
#include <random>

namespace colony::actors {
namespace {

/// A hook call waiting for its turn, or running.
struct hook_job {
  v1::PluginCall call;
  request_meta meta;
  std::function<void(v1::PluginOutcome)> done;
  bool chained = false;
  std::shared_ptr<plugin_code> code; // the state the call runs in (taken when it starts)
};

struct plugin_state {
  entity_key key; // kind plugin, the tenant, the plugin's name
  std::shared_ptr<const entity_env> env;
  std::shared_ptr<plugin_code> code;  // shared with a pool thread while a step runs there
  std::uint64_t step_token = 0;       // of the step running on the pool
  bool offloaded = false;             // a step took longer than plugins.inline-time: steps run on the pool
  std::shared_ptr<hook_job> stepping; // its job
  std::string version;                // of `code`
  int faults_in_a_row = 0;
  bool suspension_asked = false;
  std::int64_t binding_at_us = 0; // the binding's updatedAt: enabling again starts the count anew
  std::uint64_t handled = 0;
  std::uint64_t events_handled = 0;
  activation_cell* cell = nullptr;
  // on_event: a batch in progress (pumping), read after `cursor`.
  bool pumping = false;
  plugin_cursor cursor;
  std::int64_t read_after = 0; // the cursor's position in the store (advance's condition)
  v1::PluginBinding feed_binding;
  std::deque<event_row> feed;
  std::vector<plugin_dead_letter> dead;
  bool batch_full = false;
  bool committing = false; // pumping or busy: not passivated with work in hand (offer_passivation reads it)
  // The hook calls: the one running (busy) and those queued behind it.
  bool busy = false;
  std::deque<std::shared_ptr<hook_job>> jobs;
  detail::host_call host; // of the running call
  static inline const char* name = "colony.plugin";
};

using self_ptr = caf::stateful_actor<plugin_state>*;

entity_reply answer(v1::PluginOutcome o) {
  entity_reply r;
  r.entity = std::make_shared<const v1::PluginOutcome>(std::move(o));
  return r;
}

v1::PluginOutcome failed(std::string fault, std::string message) {
  v1::PluginOutcome o;
  o.set_outcome("failed");
  o.set_fault(std::move(fault));
  o.set_reason(std::move(message));
  return o;
}

std::string label(const plugin_state& st, const std::string& version) {
  return st.key.tenant_id + "/" + st.key.id + "@" + version;
}

/// A broken limit in the audit log (actor and target the plugin), written
/// on its own: the call it ended wrote nothing.
void audit_limit(self_ptr self, const plugin_run& r, const std::string& hook, const request_meta& meta) {
  auto& st = self->state;
  audit_record a;
  a.id = protocol::new_uuid_v7();
  a.tenant_id = st.key.tenant_id;
  a.at_us = protocol::now_us();
  a.actor = "plugin:" + st.key.id;
  a.action = "plugin.limit_exceeded";
  a.target = "plugin:" + st.key.id + "@" + st.version;
  a.request_id = meta.request_id;
  a.outcome = "failure";
  a.detail = hook + ": " + r.fault + ": " + r.message.substr(0, 300);
  audit_op op;
  op.append = true;
  op.records.push_back(std::move(a));
  self->request(caf::actor_cast<audit_store>(st.env->store), st.env->store_timeout, audit_atom::value, std::move(op))
    .then([](audit_page&) {}, [](caf::error&) {});
}

/// The circuit breaker: asks the tenant once to suspend the plugin.
void count_fault(self_ptr self, const plugin_run& r, const std::string& hook, const request_meta& meta) {
  auto& st = self->state;
  if (!r.limit_broken()) {
    if (r.st == plugin_run::state::done)
      st.faults_in_a_row = 0;
    return;
  }
  audit_limit(self, r, hook, meta);
  if (++st.faults_in_a_row < st.env->plugin_fault_threshold || st.suspension_asked)
    return;
  auto router = st.env->router.lock();
  if (!router)
    return;
  st.suspension_asked = true;
  command cmd;
  cmd.what = op::suspend_plugin;
  cmd.text = st.key.id;
  cmd.meta.actor = "plugin:" + st.key.id;
  cmd.meta.request_id = protocol::new_uuid_v7();
  auto reason = std::to_string(st.faults_in_a_row) + " broken limits in a row, the last: " + r.message;
  auto why = std::make_shared<v1::TransitionRequest>();
  why->set_reason(reason.size() > 300 ? reason.substr(0, 300) : reason);
  cmd.payload = std::move(why);
  auto tenant = router->route(entity_key{entity_kind::tenant, st.key.tenant_id, st.key.tenant_id});
  if (tenant)
    self->request(tenant, st.env->store_timeout * 2, std::move(cmd))
      .then(
        [self](entity_reply& rep) {
          auto& s = self->state;
          s.suspension_asked = !rep.error.has_value();
          if (s.suspension_asked && s.env->plugin_reports)
            s.env->plugin_reports->suspended(s.key.id);
        },
        [self](caf::error&) { self->state.suspension_asked = false; });
}

void hold(plugin_state& st) { st.committing = st.pumping || st.busy; }

using next_job_atom = caf::atom_constant<caf::atom("nextjob")>;

/// The call's answer; the next queued call starts a message later (no
/// recursion through a long queue).
void finish(self_ptr self, const std::shared_ptr<hook_job>& job, v1::PluginOutcome o) {
  auto& st = self->state;
  if (st.env->plugin_reports)
    st.env->plugin_reports->call_ended(st.key.id, job->call.hook(), o.outcome() == "ok" ? "ok" : o.fault());
  st.host = {};
  job->done(std::move(o));
  st.busy = false;
  if (!st.jobs.empty()) {
    st.busy = true; // reserved for the next: nothing overtakes the queue
    self->send(self, next_job_atom::value);
  }
  hold(st);
}

using step_done_atom = caf::atom_constant<caf::atom("stepdone")>;

void step(self_ptr self, const std::shared_ptr<hook_job>& job, plugin_run r);

/// Runs one step of the job's hook (a call or a resume) on the plugin pool
/// (or here, without one); step() goes on with its outcome. The actor keeps
/// serving its mailbox meanwhile, and touches the code only once it is back.
void run_step(self_ptr self, const std::shared_ptr<hook_job>& job, std::function<plugin_run(plugin_code&)> work) {
  auto& st = self->state;
  const auto& env = *st.env;
  if (!env.plugin_pool || (!st.offloaded && env.plugin_inline_time.count() > 0)) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_plugin_step(*job->code, work);
    // A step longer than plugins.inline-time sends this plugin's steps to
    // the pool from now on (the rest of this activation).
    if (env.plugin_pool && std::chrono::steady_clock::now() - t0 > env.plugin_inline_time)
      st.offloaded = true;
    step(self, job, std::move(r));
    return;
  }
  st.stepping = job;
  auto token = ++st.step_token;
  st.env->plugin_pool->post(
    [me = caf::actor_cast<caf::actor>(self), code = job->code, work = std::move(work), token]() mutable {
      caf::anon_send(me, step_done_atom::value, token, run_plugin_step(*code, work));
    });
}

/// Where a run of the hook stands: waiting for a host call, or at its end.
void step(self_ptr self, const std::shared_ptr<hook_job>& job, plugin_run r) {
  auto& st = self->state;
  if (r.st == plugin_run::state::pending) {
    detail::node_host_io io{self, *st.env};
    detail::serve_host_call(io, st.host, r.request, [self, job](detail::host_answer a) {
      run_step(self, job, [a = std::move(a)](plugin_code& c) { return c.resume(a.json, a.error); });
    });
    return;
  }
  count_fault(self, r, job->call.hook(), job->meta);
  if (r.lost && st.code == job->code)
    st.code.reset();
  v1::PluginOutcome o;
  o.set_instructions(static_cast<std::int64_t>(r.instructions));
  if (r.st != plugin_run::state::done) {
    o.set_outcome("failed");
    o.set_fault(r.fault);
    o.set_reason(std::move(r.message));
    finish(self, job, std::move(o));
    return;
  }
  o.set_outcome("ok");
  o.set_results_json(std::move(r.results));
  // Its kv writes and events, in one transaction, before the answer.
  detail::commit_effects(self, *st.env, st.host,
                         [self, job, o = std::move(o)](std::optional<std::pair<std::string, std::string>> why) mutable {
                           if (why) {
                             o.set_outcome("failed");
                             o.set_fault(why->first);
                             o.set_reason(why->second);
                             o.clear_results_json();
                           }
                           finish(self, job, std::move(o));
                         });
}

void with_code(self_ptr self, const std::string& version, std::function<void(const v1::PluginOutcome*)> then);

/// Starts the first queued call (busy is set: it is this call's turn).
void start_next(self_ptr self) {
  auto& st = self->state;
  if (st.jobs.empty()) {
    st.busy = false;
    hold(st);
    return;
  }
  auto job = std::move(st.jobs.front());
  st.jobs.pop_front();
  with_code(self, job->call.binding().version(), [self, job](const v1::PluginOutcome* load_failed) {
    if (load_failed != nullptr) {
      finish(self, job, *load_failed);
      return;
    }
    auto& s = self->state;
    const auto& call = job->call;
    s.host = {};
    s.host.tenant_id = s.key.tenant_id;
    s.host.binding = call.binding();
    s.host.hook = call.hook();
    s.host.meta = job->meta;
    s.host.chained = job->chained;
    const auto& args = call.args_json();
    auto ctx = hook_context(s.key.tenant_id, call.binding(), job->meta.request_id, job->meta.traceparent);
    std::string all = args.size() > 2 ? "[" + ctx + "," + args.substr(1) : "[" + ctx + "]";
    job->code = s.code;
    run_step(self, job, [hook = call.hook(), all = std::move(all)](plugin_code& c) { return c.call(hook, all); });
  });
}

/// Queues a hook call; it starts now if none is running.
/// `chained`: on_event of another plugin's event (colony.emit is refused: no chains).
void submit(self_ptr self, v1::PluginCall call, request_meta meta, std::function<void(v1::PluginOutcome)> done,
            bool chained = false) {
  auto& st = self->state;
  st.jobs.push_back(
    std::make_shared<hook_job>(hook_job{std::move(call), std::move(meta), std::move(done), chained, nullptr}));
  if (st.busy)
    return;
  st.busy = true;
  hold(st);
  start_next(self);
}

/// Runs `then` with the sandbox of `version` loaded (from the registry if
/// it is not the one loaded; the mailbox waits meanwhile), or with why not.
void with_code(self_ptr self, const std::string& version, std::function<void(const v1::PluginOutcome*)> then) {
  auto& st = self->state;
  if (st.code && st.version == version) {
    then(nullptr);
    return;
  }
  plugin_op op;
  op.what = plugin_op::kind::get;
  op.name = st.key.id;
  op.version = version;
  self->request(caf::actor_cast<plugin_store>(st.env->store), st.env->store_timeout, plugin_atom::value, std::move(op))
    .await(
      [self, then, version](plugin_result& res) {
        auto& s = self->state;
        if (res.status != store_status::ok || res.rows.empty()) {
          auto f = failed("load",
                          res.status == store_status::not_found ? "version " + version + " is not in the registry"
                                                                : "the registry could not be read; retry later");
          then(&f);
          return;
        }
        v1::PluginVersion v;
        if (!v.ParseFromString(res.rows.front().state)) {
          auto f = failed("load", "the registry's record of this version does not parse");
          then(&f);
          return;
        }
        plugin_run err;
        s.code = s.env->plugins->load(label(s, v.version()), v.source(), &err);
        if (!s.code) {
          auto f = failed(err.fault, err.message);
          then(&f);
          return;
        }
        s.version = v.version();
        then(nullptr);
      },
      [then](caf::error&) {
        auto f = failed("load", "the registry did not answer; retry later");
        then(&f);
      });
}

// --- on_event ------------------------------------------------------------

using feed_atom = caf::atom_constant<caf::atom("feed")>;

void feed_next(self_ptr self);
void feed_read(self_ptr self);

void feed_stop(self_ptr self) {
  auto& st = self->state;
  st.pumping = false;
  hold(st);
  st.feed.clear();
  st.dead.clear();
}

/// Writes the cursor (and the batch's dead letters) if the store still has
/// it where this batch read it; a full batch goes on with the next.
void feed_commit(self_ptr self) {
  auto& st = self->state;
  if (st.cursor.position == st.read_after && st.dead.empty() && st.cursor.attempts == 0 &&
      st.cursor.last_error.empty()) {
    feed_stop(self);
    return;
  }
  plugin_op op;
  op.what = plugin_op::kind::advance;
  op.position = st.read_after;
  st.cursor.updated_us = protocol::now_us();
  op.cursors.push_back(st.cursor);
  op.dead_letters = std::move(st.dead);
  st.dead.clear();
  bool again = st.batch_full && st.cursor.attempts == 0;
  self->request(caf::actor_cast<plugin_store>(st.env->store), st.env->store_timeout, plugin_atom::value, std::move(op))
    .then(
      [self, again](plugin_result& r) {
        auto& s = self->state;
        if (r.status == store_status::ok && again) {
          s.read_after = s.cursor.position;
          feed_read(self);
          return;
        }
        // Not written (stale: another activation moved it; or the store failed): the
        // events after the stored position are handed over again, at least once.
        feed_stop(self);
      },
      [self](caf::error&) { feed_stop(self); });
}

/// Reads the batch after the cursor and starts handing it over.
void feed_read(self_ptr self) {
  auto& st = self->state;
  event_query q;
  q.tenant_id = st.key.tenant_id;
  q.after = st.cursor.position;
  q.limit = st.env->plugin_event_batch;
  self->request(st.env->store, st.env->store_timeout, events_atom::value, std::move(q))
    .then(
      [self](event_page& page) {
        auto& s = self->state;
        if (page.status != store_status::ok) {
          feed_stop(self);
          return;
        }
        s.batch_full = static_cast<int>(page.rows.size()) >= s.env->plugin_event_batch;
        s.feed.assign(std::make_move_iterator(page.rows.begin()), std::make_move_iterator(page.rows.end()));
        with_code(self, s.feed_binding.version(), [self](const v1::PluginOutcome* load_failed) {
          if (load_failed != nullptr) {
            // Not the events' fault: wait and try again, no dead letters.
            auto& s2 = self->state;
            s2.feed.clear();
            s2.batch_full = false;
            s2.cursor.attempts = std::max(s2.cursor.attempts, 1);
            s2.cursor.last_error = load_failed->fault() + ": " + load_failed->reason();
            s2.cursor.next_attempt_us = protocol::now_us() + event_retry_us(s2.cursor.attempts, 0.0);
            feed_commit(self);
            return;
          }
          feed_next(self);
        });
      },
      [self](caf::error&) { feed_stop(self); });
}

/// What on_event made of one event: the cursor moves past it, or it waits
/// with a backoff, or (attempts spent) it goes to the dead letters.
void feed_outcome(self_ptr self, event_row& row, v1::Event& ev, const v1::PluginOutcome& o) {
  auto& st = self->state;
  if (!st.pumping) // the batch was given up meanwhile (a store failure): nothing to move
    return;
  if (o.outcome() == "ok") {
    st.cursor.position = row.position;
    st.cursor.attempts = 0;
    st.cursor.last_error.clear();
    st.cursor.next_attempt_us = 0;
    ++st.events_handled;
    self->send(self, feed_atom::value);
    return;
  }
  auto why = o.fault() + ": " + o.reason();
  auto attempts = st.cursor.attempts + 1;
  if (attempts >= st.env->plugin_event_attempts) {
    plugin_dead_letter d;
    d.id = protocol::new_uuid_v7();
    d.tenant_id = st.key.tenant_id;
    d.plugin = st.key.id;
    d.position = row.position;
    d.event_id = ev.id();
    d.event_type = ev.type();
    d.event = std::move(row.payload);
    d.error = why;
    d.attempts = attempts;
    d.created_us = protocol::now_us();
    st.dead.push_back(std::move(d));
    st.cursor.position = row.position;
    st.cursor.attempts = 0;
    st.cursor.last_error = why;
    st.cursor.next_attempt_us = 0;
    self->send(self, feed_atom::value);
    return;
  }
  // Later, from this event on (per-entity order holds: nothing after it goes first).
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  st.cursor.attempts = attempts;
  st.cursor.last_error = why;
  st.cursor.next_attempt_us =
    protocol::now_us() + event_retry_us(attempts, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
  st.feed.clear();
  st.batch_full = false;
  feed_commit(self);
}

/// One event to on_event; the next one is a message later (hook calls of
/// the write path are served in between).
void feed_next(self_ptr self) {
  auto& st = self->state;
  if (st.feed.empty()) {
    feed_commit(self);
    return;
  }
  if (!st.code) { // a reset failed: load again with the next batch
    st.batch_full = true;
    feed_commit(self);
    return;
  }
  auto row = std::move(st.feed.front());
  st.feed.pop_front();
  v1::Event ev;
  if (!ev.ParseFromString(row.payload)) { // not one this build can read: nothing to hand over
    st.cursor.position = row.position;
    self->send(self, feed_atom::value);
    return;
  }
  if (ev.has_plugin_emitted() && ev.plugin_emitted().plugin() == st.key.id) { // its own: never handed back
    st.cursor.position = row.position;
    self->send(self, feed_atom::value);
    return;
  }
  bool chained = ev.has_plugin_emitted();
  v1::PluginCall call;
  call.set_hook(std::string{plugin_hook::on_event});
  call.set_args_json("[" + protocol::to_json(ev) + "]");
  *call.mutable_binding() = st.feed_binding;
  request_meta meta;
  meta.request_id = ev.request_id();
  meta.traceparent = ev.traceparent();
  auto row_ptr = std::make_shared<event_row>(std::move(row));
  auto ev_ptr = std::make_shared<v1::Event>(std::move(ev));
  submit(
    self, std::move(call), std::move(meta),
    [self, row_ptr, ev_ptr](v1::PluginOutcome o) { feed_outcome(self, *row_ptr, *ev_ptr, o); }, chained);
}

/// The pump's nudge: read the cursor, the tenant's binding, then the batch.
void feed_start(self_ptr self) {
  auto& st = self->state;
  if (st.pumping || !st.env->plugins)
    return;
  st.pumping = true;
  hold(st);
  plugin_op op;
  op.what = plugin_op::kind::cursor;
  op.tenant_id = st.key.tenant_id;
  op.name = st.key.id;
  self->request(caf::actor_cast<plugin_store>(st.env->store), st.env->store_timeout, plugin_atom::value, std::move(op))
    .then(
      [self](plugin_result& r) {
        auto& s = self->state;
        if (r.status != store_status::ok || r.cursors.empty() || r.cursors.front().paused ||
            r.cursors.front().next_attempt_us > protocol::now_us()) {
          feed_stop(self);
          return;
        }
        s.cursor = std::move(r.cursors.front());
        s.read_after = s.cursor.position;
        auto router = s.env->router.lock();
        auto tenant =
          router ? router->route(entity_key{entity_kind::tenant, s.key.tenant_id, s.key.tenant_id}) : caf::actor{};
        if (!tenant) {
          feed_stop(self);
          return;
        }
        command get;
        get.what = op::get;
        get.meta.request_id = protocol::new_uuid_v7();
        self->request(tenant, s.env->store_timeout, std::move(get))
          .then(
            [self](entity_reply& rep) {
              auto& s2 = self->state;
              const auto* t = dynamic_cast<const v1::Tenant*>(rep.entity.get());
              const auto* b = t == nullptr ? nullptr : find_binding(*t, s2.key.id);
              if (b == nullptr || feed_of(t, s2.key.id) != event_feed::running) {
                feed_stop(self); // the change that paused or removed the feed also moved its cursor
                return;
              }
              s2.feed_binding = *b;
              feed_read(self);
            },
            [self](caf::error&) { feed_stop(self); });
      },
      [self](caf::error&) { feed_stop(self); });
}

caf::result<entity_reply> handle(self_ptr self, command& cmd) {
  auto& st = self->state;
  if (cmd.inject_crash && st.env->fault_injection)
    throw std::runtime_error("fault injection: crash requested for " + st.key.str());
  if (cmd.what == op::plugin_events) {
    feed_start(self);
    return entity_reply{};
  }
  if (cmd.what != op::plugin_call)
    return entity_reply::fail(fail(errc::malformed, "operation not supported on a plugin"));
  const auto* call = dynamic_cast<const v1::PluginCall*>(cmd.payload.get());
  if (call == nullptr)
    return entity_reply::fail(fail(errc::malformed, "a plugin call needs a payload"));
  if (!st.env->plugins)
    return answer(failed("load", "plugins cannot run on this node"));
  if (auto at = protocol::timestamp_us(call->binding().updated_at()); at != st.binding_at_us) {
    st.binding_at_us = at;
    st.faults_in_a_row = 0;
    st.suspension_asked = false;
  }
  auto rp = self->make_response_promise<entity_reply>();
  submit(self, *call, cmd.meta, [rp](v1::PluginOutcome o) mutable { rp.deliver(answer(std::move(o))); });
  return rp;
}

caf::behavior plugin_actor(self_ptr self, entity_key key, std::shared_ptr<const entity_env> env,
                           activation_cell* cell) {
  self->state.key = std::move(key);
  self->state.cell = cell;
  self->state.env = std::move(env);
  detail::install_crash_handler(self);
  return {
    [self](command& cmd) -> caf::result<entity_reply> {
      detail::count_handled(self->state, cmd);
      return handle(self, cmd);
    },
    [self](feed_atom) { feed_next(self); },
    [self](next_job_atom) { start_next(self); },
    [self](step_done_atom, std::uint64_t token, plugin_run& r) {
      auto& st = self->state;
      if (token != st.step_token || !st.stepping)
        return;
      step(self, std::exchange(st.stepping, nullptr), std::move(r));
    },
    [self](idle_atom) { detail::offer_passivation(self); },
    [self](passivate_atom) { return detail::offer_passivation(self); },
  };
}

} // namespace

caf::actor spawn_plugin_actor(caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env,
                              activation how) {
  return sys.spawn(plugin_actor, std::move(key), std::move(env), how.cell);
}

} // namespace colony::actors
