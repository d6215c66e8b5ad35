#include "../entity_common.hpp"
#include "colony/actors/plugin/plugin_model.hpp"
#include "colony/actors/tenant/tenant_model.hpp"
#include "colony/protocol/json.hpp"
#include "colony/v1/command.pb.h"
#include "colony/v1/plugin.pb.h"
#include "colony/v1/user.pb.h"
#include "plugin_hooks.hpp"

namespace colony::actors {
namespace {

struct tenant_state {
  entity_key key;
  std::shared_ptr<const entity_env> env;
  std::shared_ptr<const v1::Tenant> current; // null: the tenant does not exist
  std::int32_t seats_in_flight = 0;          // user creations admitted, not yet answered
  std::uint64_t handled = 0;                 // commands seen (the directory compares on idle)
  activation_cell* cell = nullptr;           // where `handled` is mirrored (activation)
  bool load_failed = false;
  bool committing = false; // a commit is awaited (the mailbox waits too)
  static inline const char* name = "colony.tenant";
};

using self_ptr = caf::stateful_actor<tenant_state>*;

entity_row row_of(const v1::Tenant& t) {
  entity_row r;
  r.tenant_id = t.id();
  r.id = t.id();
  r.unique_key = t.slug();
  r.name = t.name();
  r.status = t.status();
  r.plan = t.plan();
  r.created_us = protocol::timestamp_us(t.created_at());
  r.updated_us = protocol::timestamp_us(t.updated_at());
  r.version = t.version();
  r.state = t.SerializeAsString();
  return r;
}

std::string event_type_for(op what) {
  switch (what) {
    case op::create: return "tenant.created";
    case op::activate: return "tenant.activated";
    case op::suspend: return "tenant.suspended";
    case op::cancel: return "tenant.cancelled";
    default: return "tenant.updated";
  }
}

entity_reply ok_reply(const std::shared_ptr<const v1::Tenant>& t, bool created = false) {
  entity_reply r;
  r.entity = t;
  r.version = t->version();
  r.created = created;
  return r;
}

/// The state a load brought (or load_failed).
void take_loaded(self_ptr self, const loaded& l) {
  auto& st = self->state;
  if (l.status == store_status::ok) {
    auto t = std::make_shared<v1::Tenant>();
    if (!t->ParseFromString(l.state)) {
      st.load_failed = true;
      return;
    }
    // Limits follow the configured plan; usage.users is the live seat count.
    if (auto it = st.env->rules.plans.find(t->plan()); it != st.env->rules.plans.end())
      fill_limits(*t->mutable_limits(), it->second);
    t->mutable_usage()->set_users(l.user_count);
    st.current = std::move(t);
    st.load_failed = false;
  } else if (l.status != store_status::not_found) {
    st.load_failed = true;
  }
}

/// After a command that leaves no live state, ask to be passivated right away.
void drop_if_empty(self_ptr self) {
  auto& st = self->state;
  if ((st.current == nullptr || st.load_failed) && !st.committing)
    detail::offer_passivation(self);
}

/// What a commit may carry besides the tenant and its events.
struct commit_extras {
  std::vector<std::pair<std::string, std::string>> external_ids;
  std::vector<timer_row> timers;
  std::string event_type; // instead of the one the op implies (plugin.enabled, ...)
};

/// Persists `next` (and its event) and answers the client after the commit.
caf::result<entity_reply> commit(self_ptr self, v1::Tenant next, change_kind what, op cause, const request_meta& meta,
                                 commit_extras extras = {}) {
  auto& st = self->state;
  auto now = protocol::timestamp_us(next.updated_at());
  change ch;
  ch.kind = entity_kind::tenant;
  ch.what = what;
  ch.row = row_of(next);
  ch.expected_version = st.current ? st.current->version() : 0;
  ch.message_key = meta.message_key;
  ch.idempotency_scope = meta.idempotency_scope;
  ch.external_ids = std::move(extras.external_ids);
  ch.timers = std::move(extras.timers);
  // on_event cursors follow the bindings in the same transaction.
  for (auto& [name, feed] : feed_changes(st.current.get(), next))
    ch.plugin_cursors.push_back(plugin_cursor_change{feed == event_feed::running ? plugin_cursor_change::kind::open
                                                       : feed == event_feed::paused
                                                       ? plugin_cursor_change::kind::pause
                                                       : plugin_cursor_change::kind::remove,
                                                     next.id(), name});
  std::string type = extras.event_type.empty() ? event_type_for(cause) : std::move(extras.event_type);
  auto event = [&](std::string event_type) {
    auto ev = detail::event_header(std::move(event_type), st.key, next.version(), meta, now);
    auto* p = ev.mutable_tenant_changed();
    *p->mutable_state() = next;
    if (st.current) {
      p->set_previous_status(st.current->status());
      p->set_previous_plan(st.current->plan());
    }
    return detail::seal(ev);
  };
  // The trial-expiry timer is set in the same transaction as the tenant: a
  // trial tenant always has one, also after trialEndsAt moved.
  if (next.status() == tenant_status::trial &&
      (!st.current ||
       protocol::timestamp_us(st.current->trial_ends_at()) != protocol::timestamp_us(next.trial_ends_at())))
    ch.timers.push_back(timer_row{
      "trial:" + next.id(), "trial_expiry", next.id(), next.id(), protocol::timestamp_us(next.trial_ends_at()), 0, {}});
  if (st.current && st.current->plan() != next.plan())
    ch.events.push_back(event("tenant.plan_changed"));
  ch.events.push_back(event(type));
  detail::audit_change(ch, meta, st.key, type, now);
  auto snapshot = std::make_shared<const v1::Tenant>(std::move(next));
  auto rp = self->make_response_promise<entity_reply>();
  st.committing = true;
  self->request(st.env->store, st.env->store_timeout, commit_atom::value, std::move(ch))
    .await(
      [self, rp, snapshot, what](commit_outcome& o) mutable {
        self->state.committing = false;
        if (o.status == store_status::ok) {
          self->state.current = snapshot;
          rp.deliver(ok_reply(snapshot, what == change_kind::insert));
          return;
        }
        if (o.status == store_status::duplicate && o.field == "message_key") {
          // Applied before (a redelivered webhook or command): nothing to do.
          if (self->state.current) {
            auto r = ok_reply(self->state.current);
            r.duplicate = true;
            rp.deliver(std::move(r));
            return;
          }
          // A creation applied before by another activation (its first
          // attempt's answer was lost, e.g. on a node that died): this one
          // never saw it, so it reads the tenant as it is now.
          self->request(self->state.env->store, caf::infinite, load_atom::value, self->state.key)
            .await(
              [self, rp](loaded& l) mutable {
                take_loaded(self, l);
                if (!self->state.current) { // an earlier attempt made it under another id
                  rp.deliver(entity_reply::fail(fail(
                    errc::conflict, "an earlier attempt of this request was applied; list the tenants to find it")));
                  return;
                }
                auto r = ok_reply(self->state.current);
                r.duplicate = true;
                rp.deliver(std::move(r));
              },
              [rp](caf::error&) mutable {
                rp.deliver(entity_reply::fail(fail(errc::unavailable, "the store did not answer; retry later")));
              });
          return;
        }
        if (o.status == store_status::stale || o.status == store_status::moved) {
          // Another activation wrote first, or (moved) the shard went to
          // another node: drop our copy; nothing stale is served from it.
          self->state.current = nullptr;
          self->state.load_failed = true;
        }
        rp.deliver(entity_reply::fail(detail::failure_from(o, "a tenant")));
        drop_if_empty(self);
      },
      [self, rp](caf::error&) mutable {
        self->state.committing = false;
        drop_if_empty(self);
        rp.deliver(entity_reply::fail(fail(errc::unavailable, "the store did not answer; retry later")));
      });
  return rp;
}

/// Sends a user write to the user's actor and answers `rp` with its reply.
/// `creating`: a seat is held (seats_in_flight) until the answer.
void send_user_write(self_ptr self, command cmd, caf::response_promise rp, bool creating) {
  auto& st = self->state;
  auto router = st.env->router.lock();
  entity_key user_key{entity_kind::user, st.key.id, cmd.user_id};
  auto user = router ? router->route(user_key, creating && cmd.new_id) : caf::actor{};
  auto adjust = [self, creating](bool committed) {
    auto& s = self->state;
    if (creating)
      --s.seats_in_flight;
    if (committed && s.current) {
      auto copy = std::make_shared<v1::Tenant>(*s.current);
      copy->mutable_usage()->set_users(copy->usage().users() + (creating ? 1 : -1));
      s.current = std::move(copy);
    }
  };
  if (!user) {
    adjust(false);
    rp.deliver(entity_reply::fail(fail(errc::unavailable, "the node is shutting down")));
    return;
  }
  bool counted = cmd.what != op::patch; // a patch changes no seat count
  self->request(user, st.env->store_timeout * 2, std::move(cmd))
    .then(
      [rp, adjust, counted](entity_reply& r) mutable {
        if (counted)
          adjust(!r.error.has_value() && !r.duplicate);
        rp.deliver(std::move(r));
      },
      [rp, adjust, counted](caf::error& err) mutable {
        if (counted)
          adjust(false);
        rp.deliver(entity_reply::fail(failure_from(err)));
      });
}

/// before_user_create: the hooks see the creation body as a user and may change it.
void create_with_hooks(self_ptr self, std::shared_ptr<command> cmd, caf::response_promise rp) {
  auto& st = self->state;
  auto h = std::make_shared<detail::user_hooks>();
  h->tenant = st.current;
  h->hook = std::string{plugin_hook::before_user_create};
  h->user = protocol::to_json(*cmd->payload);
  h->meta = cmd->meta;
  h->check = [](const std::string& user) { return created_user_error(user); };
  h->done = [self, cmd, rp](outcome<std::string> user) mutable {
    if (!user) {
      --self->state.seats_in_flight;
      rp.deliver(entity_reply::fail(std::move(user.error())));
      return;
    }
    auto req = std::make_shared<v1::CreateUserRequest>();
    (void)protocol::from_json(creation_from_hook(user.value()).value(), *req); // checked by h->check
    cmd->payload = std::move(req);
    send_user_write(self, std::move(*cmd), rp, true);
  };
  detail::run_user_hooks(self, *st.env, std::move(h));
}

/// before_user_update: the hooks see the user as the patch would leave it
/// (and the patch); what they return becomes the patch.
void patch_with_hooks(self_ptr self, std::shared_ptr<command> cmd, caf::response_promise rp) {
  auto& st = self->state;
  auto router = st.env->router.lock();
  auto user = router ? router->route(entity_key{entity_kind::user, st.key.id, cmd->user_id}) : caf::actor{};
  if (!user) {
    rp.deliver(entity_reply::fail(fail(errc::unavailable, "the node is shutting down")));
    return;
  }
  command get;
  get.what = op::get;
  get.meta = cmd->meta;
  self->request(user, st.env->store_timeout * 2, std::move(get))
    .then(
      [self, cmd, rp](entity_reply& r) mutable {
        std::string current;
        if (!r.error && r.bytes)
          current = protocol::bytes_to_json(r.type, *r.bytes);
        else if (!r.error && r.entity)
          current = protocol::to_json(*r.entity);
        auto proposed =
          current.empty() ? outcome<std::string>{fail(errc::malformed, "")} : proposed_user(current, cmd->text);
        if (!proposed || !self->state.current) { // no such user, or a patch the user will refuse: it answers
          send_user_write(self, std::move(*cmd), rp, false);
          return;
        }
        auto h = std::make_shared<detail::user_hooks>();
        h->tenant = self->state.current;
        h->hook = std::string{plugin_hook::before_user_update};
        h->user = std::move(proposed.value());
        h->more_args.push_back(cmd->text);
        h->meta = cmd->meta;
        h->check = [current](const std::string& returned) -> std::optional<std::string> {
          auto p = patch_from_hook(current, returned);
          return p ? std::nullopt : std::optional<std::string>{p.error().detail};
        };
        h->done = [self, cmd, rp, current](outcome<std::string> returned) mutable {
          if (!returned) {
            rp.deliver(entity_reply::fail(std::move(returned.error())));
            return;
          }
          cmd->text = patch_from_hook(current, returned.value()).value(); // checked by h->check
          send_user_write(self, std::move(*cmd), rp, false);
        };
        detail::run_user_hooks(self, *self->state.env, std::move(h));
      },
      [rp](caf::error& err) mutable { rp.deliver(entity_reply::fail(failure_from(err))); });
}

/// Whether a patch names only members a plugin hook may see change.
bool settable_patch(const std::string& patch) {
  auto fields = patch_from_hook("{}", patch); // every member of the patch must be settable
  return fields.ok();
}

caf::result<entity_reply> forward_user_write(self_ptr self, command cmd) {
  auto& st = self->state;
  const auto& t = *st.current;
  if (auto err = check_writable(t))
    return entity_reply::fail(*err);
  auto router = st.env->router.lock();
  if (!router)
    return entity_reply::fail(fail(errc::unavailable, "the node is shutting down"));
  if (cmd.what == op::patch_user) {
    cmd.what = op::patch;
    if (any_hook(t, plugin_hook::before_user_update) && settable_patch(cmd.text)) {
      auto rp = self->make_response_promise<entity_reply>();
      patch_with_hooks(self, std::make_shared<command>(std::move(cmd)), rp);
      return rp;
    }
    auto user = router->route(entity_key{entity_kind::user, st.key.id, cmd.user_id});
    if (!user)
      return entity_reply::fail(fail(errc::unavailable, "the node is shutting down"));
    self->delegate(user, std::move(cmd));
    return caf::delegated<entity_reply>{};
  }
  bool creating = cmd.what == op::create_user;
  if (creating) {
    if (auto err = check_seat_available(t, st.seats_in_flight))
      return entity_reply::fail(*err);
    cmd.what = op::create;
    ++st.seats_in_flight;
  } else {
    cmd.what = op::remove;
  }
  auto rp = self->make_response_promise<entity_reply>();
  if (creating && cmd.payload && any_hook(t, plugin_hook::before_user_create))
    create_with_hooks(self, std::make_shared<command>(std::move(cmd)), rp);
  else
    send_user_write(self, std::move(cmd), rp, creating);
  return rp;
}

caf::result<entity_reply> handle(self_ptr self, command& cmd) {
  auto& st = self->state;
  const auto& env = *st.env;
  if (cmd.inject_crash && env.fault_injection)
    throw std::runtime_error("fault injection: crash requested for " + st.key.str());
  if (st.load_failed)
    return entity_reply::fail(fail(errc::unavailable, "the tenant could not be loaded; retry later"));
  auto now = protocol::now_us();
  if (cmd.what == op::create) {
    if (st.current)
      return entity_reply::fail(fail(errc::conflict, "a tenant with this id already exists"));
    const auto* req = dynamic_cast<const v1::CreateTenantRequest*>(cmd.payload.get());
    if (req == nullptr)
      return entity_reply::fail(fail(errc::malformed, "a tenant creation needs a body"));
    auto created = create_tenant(*req, env.rules, st.key.id, now);
    if (!created)
      return entity_reply::fail(std::move(created.error()));
    return commit(self, std::move(created.value()), change_kind::insert, op::create, cmd.meta);
  }
  if (!st.current)
    return entity_reply::fail(fail(errc::not_found, "no tenant with id " + st.key.id));
  const auto& t = *st.current;
  switch (cmd.what) {
    case op::get: return ok_reply(st.current);
    case op::usage: {
      auto report = std::make_shared<v1::TenantUsageReport>();
      report->set_tenant_id(t.id());
      report->set_plan(t.plan());
      *report->mutable_limits() = t.limits();
      *report->mutable_usage() = t.usage();
      entity_reply r;
      r.entity = std::move(report);
      r.version = t.version();
      return r;
    }
    case op::patch: {
      if (auto err = detail::check_if_match(cmd, t.version()))
        return entity_reply::fail(*err);
      auto next = patch_tenant(t, cmd.text, env.rules, now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      return commit(self, std::move(next.value()), change_kind::update, op::patch, cmd.meta);
    }
    case op::activate:
    case op::suspend:
    case op::cancel: {
      if (auto err = detail::check_if_match(cmd, t.version()))
        return entity_reply::fail(*err);
      auto to = cmd.what == op::activate ? tenant_status::active
        : cmd.what == op::suspend        ? tenant_status::suspended
                                         : tenant_status::cancelled;
      auto next = transition_tenant(t, to, cmd.text, now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      return commit(self, std::move(next.value()), change_kind::update, cmd.what, cmd.meta);
    }
    case op::create_user:
    case op::patch_user:
    case op::remove_user: return forward_user_write(self, std::move(cmd));
    case op::billing: {
      const auto* change = dynamic_cast<const v1::BillingChange*>(cmd.payload.get());
      if (change == nullptr)
        return entity_reply::fail(fail(errc::malformed, "a billing change needs a payload"));
      auto next = apply_billing(t, *change, env.rules, now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      if (next.value().version() == t.version())
        return ok_reply(st.current); // nothing to change
      commit_extras extras;
      if (!change->customer_id().empty())
        extras.external_ids.emplace_back("stripe-customer", change->customer_id());
      if (change->kind() == "payment_failed" && t.billing().payment_status() != "past_due")
        extras.timers.push_back(
          timer_row{"grace:" + t.id(), "payment_grace", t.id(), t.id(), now + env.rules.payment_grace_us, 0, {}});
      const auto& n = next.value();
      op cause = n.status() == t.status()        ? op::patch
        : n.status() == tenant_status::active    ? op::activate
        : n.status() == tenant_status::suspended ? op::suspend
                                                 : op::cancel;
      return commit(self, std::move(next.value()), change_kind::update, cause, cmd.meta, std::move(extras));
    }
    case op::track_usage: {
      const auto* act = dynamic_cast<const v1::TrackActivity*>(cmd.payload.get());
      if (act == nullptr)
        return entity_reply::fail(fail(errc::malformed, "tracking usage needs a payload"));
      if (auto err = check_writable(t))
        return entity_reply::fail(*err);
      auto next = track_usage(t, act->api_calls(), act->ai_requests(), act->storage_mb(), now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      return commit(self, std::move(next.value()), change_kind::update, op::patch, cmd.meta);
    }
    case op::enable_plugin: {
      const auto* b = dynamic_cast<const v1::PluginBinding*>(cmd.payload.get());
      if (b == nullptr)
        return entity_reply::fail(fail(errc::malformed, "enabling a plugin needs its binding"));
      if (auto err = detail::check_if_match(cmd, t.version()))
        return entity_reply::fail(*err);
      bool had = find_binding(t, b->name()) != nullptr;
      auto next = enable_plugin(t, *b, now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      commit_extras extras;
      extras.event_type = had ? "plugin.updated" : "plugin.enabled";
      return commit(self, std::move(next.value()), change_kind::update, op::patch, cmd.meta, std::move(extras));
    }
    case op::disable_plugin:
    case op::suspend_plugin: {
      if (auto err = detail::check_if_match(cmd, t.version()))
        return entity_reply::fail(*err);
      bool suspending = cmd.what == op::suspend_plugin;
      std::string reason;
      if (const auto* why = dynamic_cast<const v1::TransitionRequest*>(cmd.payload.get()))
        reason = why->reason();
      if (suspending)
        if (const auto* b = find_binding(t, cmd.text); b != nullptr && b->suspended())
          return ok_reply(st.current); // suspended already
      auto next = suspending ? suspend_plugin(t, cmd.text, reason, now) : disable_plugin(t, cmd.text, now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      commit_extras extras;
      extras.event_type = suspending ? "plugin.suspended" : "plugin.disabled";
      return commit(self, std::move(next.value()), change_kind::update, op::patch, cmd.meta, std::move(extras));
    }
    case op::expire_trial: {
      // Fired by the trial timer; a no-op unless the trial really is over.
      if (t.status() != tenant_status::trial || protocol::timestamp_us(t.trial_ends_at()) > now)
        return ok_reply(st.current);
      auto next = transition_tenant(t, tenant_status::suspended, "trial_expired", now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      return commit(self, std::move(next.value()), change_kind::update, op::suspend, cmd.meta);
    }
    default: return entity_reply::fail(fail(errc::malformed, "operation not supported on a tenant"));
  }
}

caf::behavior tenant_actor(self_ptr self, entity_key key, std::shared_ptr<const entity_env> env,
                           activation_cell* cell) {
  self->state.key = key;
  self->state.cell = cell;
  self->state.env = env;
  detail::install_crash_handler(self);
  // Load first; commands that arrive meanwhile wait in the mailbox.
  // No CAF timeout: the store answers every load, `unavailable` after its
  // load timeout (a CAF request timeout would hold this actor in the clock).
  self->request(env->store, caf::infinite, load_atom::value, key)
    .await([self](loaded& l) { take_loaded(self, l); }, [self](caf::error&) { self->state.load_failed = true; });
  return {
    [self](command& cmd) -> caf::result<entity_reply> {
      detail::count_handled(self->state, cmd);
      auto res = handle(self, cmd);
      drop_if_empty(self);
      return res;
    },
    // From the directory's sweep: nothing was routed here for idle_timeout.
    [self](idle_atom) { detail::offer_passivation(self); },
    // From an operator (the console): the same handshake, answered.
    [self](passivate_atom) { return detail::offer_passivation(self); },
  };
}

} // namespace

caf::actor spawn_tenant_actor(caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env,
                              activation how) {
  return sys.spawn(tenant_actor, std::move(key), std::move(env), how.cell);
}

} // namespace colony::actors
