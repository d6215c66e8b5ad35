#include "../entity_common.hpp"
#include "colony/actors/user/user_model.hpp"
#include "colony/protocol/json.hpp"

#include <thread>

namespace colony::actors {
namespace {

struct user_state {
  entity_key key;
  std::shared_ptr<const entity_env> env;
  // The user as colony.v1.User bytes without the ids the key holds, parsed
  // when needed: a parsed message costs ~480 bytes in ~9 allocations, these
  // bytes ~70 in one, and memory per idle entity is what bounds how many a
  // node keeps live (docs/performance.md).
  std::string stored; // empty: the user does not exist
  std::uint32_t version = 0;
  std::uint64_t handled = 0;
  activation_cell* cell = nullptr; // where `handled` is mirrored (activation)
  bool load_failed = false;
  bool committing = false;
  static inline const char* name = "colony.user";
};

using self_ptr = caf::stateful_actor<user_state>*;

bool exists(const user_state& st) { return !st.stored.empty(); }

entity_reply missing(const user_state& st) {
  return entity_reply::fail(fail(errc::not_found, "no user with id " + st.key.id + " in this tenant"));
}

std::shared_ptr<const v1::User> parsed(const user_state& st) {
  auto u = std::make_shared<v1::User>();
  if (!u->ParseFromString(st.stored))
    throw std::runtime_error("stored user state does not parse"); // checked at load: a bug
  u->set_id(st.key.id);
  u->set_tenant_id(st.key.tenant_id);
  return u;
}

/// The complete encoding of the user: the ids, then the rest. Protobuf's
/// wire format lets encodings be concatenated; ids are fields 1 and 2, so
/// the field order is the same as a fresh serialization. Written by hand
/// (tag, length, bytes): no message is built, and no CodedOutputStream,
/// whose set-up cost as much as the copy (a read costs two allocations).
std::shared_ptr<const std::string> full_bytes(const user_state& st) {
  auto out = std::make_shared<std::string>();
  out->reserve(st.key.id.size() + st.key.tenant_id.size() + st.stored.size() + 16);
  auto varint = [&out](std::uint64_t v) {
    for (; v >= 0x80; v >>= 7)
      out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    out->push_back(static_cast<char>(v));
  };
  auto field = [&](std::uint32_t number, const std::string& bytes) {
    constexpr std::uint32_t length_delimited = 2;
    varint((number << 3) | length_delimited);
    varint(bytes.size());
    out->append(bytes);
  };
  field(v1::User::kIdFieldNumber, st.key.id);
  field(v1::User::kTenantIdFieldNumber, st.key.tenant_id);
  out->append(st.stored);
  return out;
}

/// What `stored` keeps of a user: all but the ids (never empty: a version is set).
/// Deterministic: map entries (attributes) in key order, so reads render the
/// same JSON as the message the write answered with.
std::string compact(v1::User u) {
  u.clear_id();
  u.clear_tenant_id();
  return protocol::deterministic_bytes(u);
}

entity_row row_of(const v1::User& u) {
  entity_row r;
  r.tenant_id = u.tenant_id();
  r.id = u.id();
  r.unique_key = normalize_email(u.email());
  r.name = u.name();
  r.status = u.status();
  r.roles = ",";
  for (const auto& role : u.roles())
    r.roles += role + ",";
  r.created_us = protocol::timestamp_us(u.created_at());
  r.updated_us = protocol::timestamp_us(u.updated_at());
  r.version = u.version();
  r.state = u.SerializeAsString();
  return r;
}

void drop_if_empty(self_ptr self) {
  auto& st = self->state;
  if ((!exists(st) || st.load_failed) && !st.committing)
    detail::offer_passivation(self);
}

caf::result<entity_reply> commit(self_ptr self, std::shared_ptr<const v1::User> next, change_kind what,
                                 const request_meta& meta) {
  auto& st = self->state;
  auto now = protocol::now_us();
  change ch;
  ch.kind = entity_kind::user;
  ch.what = what;
  ch.expected_version = st.version;
  ch.message_key = meta.message_key;
  ch.idempotency_scope = meta.idempotency_scope;
  if (what == change_kind::remove) {
    ch.row.tenant_id = st.key.tenant_id;
    ch.row.id = st.key.id;
    ch.user_count_delta = -1;
    auto ev = detail::event_header("user.deleted", st.key, st.version + 1, meta, now);
    ev.mutable_user_deleted()->set_user_id(st.key.id);
    ch.events.push_back(detail::seal(ev));
  } else {
    ch.row = row_of(*next);
    if (what == change_kind::insert)
      ch.user_count_delta = 1;
    auto ev = detail::event_header(what == change_kind::insert ? "user.created" : "user.updated", st.key,
                                   next->version(), meta, now);
    *ev.mutable_user_changed()->mutable_state() = *next;
    ch.events.push_back(detail::seal(ev));
  }
  detail::audit_change(ch, meta, st.key, ch.events.back().type, now);
  auto rp = self->make_response_promise<entity_reply>();
  st.committing = true;
  std::string next_bytes = what == change_kind::remove ? std::string{} : compact(*next);
  self->request(st.env->store, st.env->store_timeout, commit_atom::value, std::move(ch))
    .await(
      [self, rp, next, what, next_bytes = std::move(next_bytes)](commit_outcome& o) mutable {
        auto& s = self->state;
        s.committing = false;
        if (o.status == store_status::ok) {
          entity_reply r;
          if (what == change_kind::remove) {
            r.version = s.version + 1;
            s.stored.clear();
            s.version = 0;
          } else {
            s.stored = std::move(next_bytes);
            s.version = next->version();
            r.entity = next;
            r.version = next->version();
            r.created = what == change_kind::insert;
          }
          rp.deliver(std::move(r));
          drop_if_empty(self);
          return;
        }
        if (o.status == store_status::duplicate && o.field == "message_key") {
          if (!exists(s)) { // an earlier attempt applied it, to another (new) user id
            rp.deliver(entity_reply::fail(
              fail(errc::conflict, "an earlier attempt of this request was applied; list the users to find it")));
            drop_if_empty(self);
            return;
          }
          entity_reply r; // applied before: nothing changed
          r.entity = parsed(s);
          r.version = s.version;
          r.duplicate = true;
          rp.deliver(std::move(r));
          drop_if_empty(self);
          return;
        }
        if (o.status == store_status::stale || o.status == store_status::moved) {
          s.stored.clear();
          s.version = 0;
          s.load_failed = true;
        }
        rp.deliver(entity_reply::fail(detail::failure_from(o, "a user")));
        drop_if_empty(self);
      },
      [self, rp](caf::error&) mutable {
        self->state.committing = false;
        drop_if_empty(self);
        rp.deliver(entity_reply::fail(fail(errc::unavailable, "the store did not answer; retry later")));
      });
  return rp;
}

caf::result<entity_reply> handle(self_ptr self, command& cmd) {
  auto& st = self->state;
  if (cmd.inject_crash && st.env->fault_injection)
    throw std::runtime_error("fault injection: crash requested for " + st.key.str());
  if (cmd.inject_stall_ms > 0 && st.env->fault_injection) // an entity that does not answer in time
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(cmd.inject_stall_ms, 10'000)));
  if (st.load_failed)
    return entity_reply::fail(fail(errc::unavailable, "the user could not be loaded; retry later"));
  if (cmd.what == op::get) {
    if (!exists(st))
      return missing(st);
    entity_reply r;
    r.bytes = full_bytes(st);
    r.type = "colony.v1.User";
    r.version = st.version;
    return r;
  }
  auto now = protocol::now_us(); // reads, the common case, need no clock
  if (cmd.what == op::create) {
    if (exists(st))
      return entity_reply::fail(fail(errc::conflict, "a user with this id already exists"));
    const auto* req = dynamic_cast<const v1::CreateUserRequest*>(cmd.payload.get());
    if (req == nullptr)
      return entity_reply::fail(fail(errc::malformed, "a user creation needs a body"));
    auto created = create_user(*req, st.key.tenant_id, st.key.id, now);
    if (!created)
      return entity_reply::fail(std::move(created.error()));
    return commit(self, std::make_shared<const v1::User>(std::move(created.value())), change_kind::insert, cmd.meta);
  }
  if (!exists(st))
    return missing(st);
  auto current = parsed(st);
  const auto& u = *current;
  switch (cmd.what) {
    case op::patch: {
      if (auto err = detail::check_if_match(cmd, u.version()))
        return entity_reply::fail(*err);
      auto next = patch_user(u, cmd.text, now);
      if (!next)
        return entity_reply::fail(std::move(next.error()));
      if (auto err = owner_guard(u, &next.value(), cmd.meta.owner_powers))
        return entity_reply::fail(*err);
      return commit(self, std::make_shared<const v1::User>(std::move(next.value())), change_kind::update, cmd.meta);
    }
    case op::remove:
      if (auto err = detail::check_if_match(cmd, u.version()))
        return entity_reply::fail(*err);
      if (auto err = owner_guard(u, nullptr, cmd.meta.owner_powers))
        return entity_reply::fail(*err);
      return commit(self, nullptr, change_kind::remove, cmd.meta);
    default: return entity_reply::fail(fail(errc::malformed, "operation not supported on a user"));
  }
}

caf::behavior user_actor(self_ptr self, entity_key key, std::shared_ptr<const entity_env> env, bool known_new,
                         activation_cell* cell) {
  self->state.key = key;
  self->state.cell = cell;
  self->state.env = env;
  detail::install_crash_handler(self);
  if (!known_new)
    // No CAF timeout: the store answers every load, `unavailable` after its
    // load timeout (a CAF request timeout would hold this actor in the
    // clock for its whole duration: ~200 B per activation).
    self->request(env->store, caf::infinite, load_atom::value, key)
      .await(
        [self](loaded& l) {
          auto& st = self->state;
          if (l.status == store_status::ok) {
            v1::User u;
            if (l.state.empty() || !u.ParseFromString(l.state)) {
              st.load_failed = true;
            } else {
              st.version = u.version();
              st.stored = compact(std::move(u));
            }
          } else if (l.status != store_status::not_found) {
            st.load_failed = true;
          }
        },
        [self](caf::error&) { self->state.load_failed = true; });
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

caf::actor spawn_user_actor(caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env,
                            activation how) {
  return sys.spawn(user_actor, std::move(key), std::move(env), how.known_new, how.cell);
}

} // namespace colony::actors
