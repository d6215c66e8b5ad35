#include "colony/actors/wire.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace colony::actors {

namespace pb = google::protobuf;

namespace {

/// A fresh message of the generated type `full_name`; null if unknown.
std::unique_ptr<pb::Message> new_message(const std::string& full_name) {
  const auto* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(full_name);
  if (d == nullptr)
    return nullptr;
  const auto* proto = pb::MessageFactory::generated_factory()->GetPrototype(d);
  return proto == nullptr ? nullptr : std::unique_ptr<pb::Message>(proto->New());
}

constexpr std::uint32_t op_last = static_cast<std::uint32_t>(op::plugin_events);

} // namespace

v1::EntityCommand to_wire(const entity_key& key, const command& cmd) {
  v1::EntityCommand w;
  auto* k = w.mutable_key();
  k->set_kind(static_cast<std::uint32_t>(key.kind));
  k->set_tenant_id(key.tenant_id);
  k->set_id(key.id);
  w.set_op(static_cast<std::uint32_t>(cmd.what));
  if (cmd.payload) {
    w.set_payload_type(cmd.payload->GetTypeName());
    cmd.payload->SerializeToString(w.mutable_payload());
  }
  w.set_text(cmd.text);
  for (auto v : cmd.if_match)
    w.add_if_match(v);
  w.set_user_id(cmd.user_id);
  w.set_new_id(cmd.new_id);
  w.set_inspect(cmd.inspect);
  auto* m = w.mutable_meta();
  m->set_request_id(cmd.meta.request_id);
  m->set_traceparent(cmd.meta.traceparent);
  m->set_message_key(cmd.meta.message_key);
  m->set_actor(cmd.meta.actor);
  m->set_client(cmd.meta.client);
  m->set_owner_powers(cmd.meta.owner_powers);
  m->set_idempotency_scope(cmd.meta.idempotency_scope);
  return w;
}

std::optional<addressed_command> from_wire(const v1::EntityCommand& w, std::string& error) {
  if (w.key().kind() == 0 || w.key().kind() > 255) {
    error = "no entity kind";
    return std::nullopt;
  }
  if (w.op() == 0 || w.op() > op_last) {
    error = "unknown operation " + std::to_string(w.op());
    return std::nullopt;
  }
  addressed_command out;
  out.key.kind = static_cast<entity_kind>(w.key().kind());
  out.key.tenant_id = w.key().tenant_id();
  out.key.id = w.key().id();
  auto& cmd = out.cmd;
  cmd.what = static_cast<op>(w.op());
  if (!w.payload_type().empty()) {
    auto msg = new_message(w.payload_type());
    if (!msg) {
      error = "unknown payload type " + w.payload_type();
      return std::nullopt;
    }
    if (!msg->ParseFromString(w.payload())) {
      error = "the payload does not parse as " + w.payload_type();
      return std::nullopt;
    }
    cmd.payload = std::shared_ptr<const pb::Message>(std::move(msg));
  }
  cmd.text = w.text();
  cmd.if_match.assign(w.if_match().begin(), w.if_match().end());
  cmd.user_id = w.user_id();
  cmd.new_id = w.new_id();
  cmd.inspect = w.inspect();
  const auto& m = w.meta();
  cmd.meta.request_id = m.request_id();
  cmd.meta.traceparent = m.traceparent();
  cmd.meta.message_key = m.message_key();
  cmd.meta.actor = m.actor();
  cmd.meta.client = m.client();
  cmd.meta.owner_powers = m.owner_powers();
  cmd.meta.idempotency_scope = m.idempotency_scope();
  return out;
}

v1::Failure to_wire(const failure& f) {
  v1::Failure w;
  w.set_code(static_cast<std::uint32_t>(f.code));
  w.set_detail(f.detail);
  for (const auto& e : f.errors) {
    auto* x = w.add_errors();
    x->set_field(e.field);
    x->set_message(e.message);
  }
  for (const auto& [k, v] : f.strings) {
    auto* x = w.add_strings();
    x->set_name(k);
    x->set_value(v);
  }
  for (const auto& [k, v] : f.numbers) {
    auto* x = w.add_numbers();
    x->set_name(k);
    x->set_value(v);
  }
  return w;
}

failure from_wire(const v1::Failure& w) {
  failure f;
  f.code = w.code() >= 1 && w.code() <= protocol::errc_last ? static_cast<errc>(w.code()) : errc::internal;
  f.detail = w.detail();
  for (const auto& e : w.errors())
    f.errors.push_back(protocol::field_error{e.field(), e.message()});
  for (const auto& s : w.strings())
    f.strings.emplace_back(s.name(), s.value());
  for (const auto& n : w.numbers())
    f.numbers.emplace_back(n.name(), n.value());
  return f;
}

v1::EntityReply to_wire(const entity_reply& r) {
  v1::EntityReply w;
  if (r.entity) {
    w.set_type(r.entity->GetTypeName());
    r.entity->SerializeToString(w.mutable_entity());
    w.set_has_entity(true);
  } else if (r.bytes) {
    w.set_type(r.type);
    w.set_entity(*r.bytes);
    w.set_as_bytes(true);
  }
  w.set_version(r.version);
  w.set_created(r.created);
  w.set_duplicate(r.duplicate);
  if (r.error)
    *w.mutable_error() = to_wire(*r.error);
  return w;
}

entity_reply from_wire(const v1::EntityReply& w) {
  entity_reply r;
  if (w.has_error()) {
    r.error = from_wire(w.error());
  } else if (w.as_bytes()) {
    r.bytes = std::make_shared<const std::string>(w.entity());
    r.type = w.type();
  } else if (w.has_entity()) {
    auto msg = new_message(w.type());
    if (!msg || !msg->ParseFromString(w.entity()))
      return entity_reply::fail(fail(errc::internal, "the reply's entity (" + w.type() + ") is not readable here"));
    r.entity = std::shared_ptr<const pb::Message>(std::move(msg));
  }
  r.version = w.version();
  r.created = w.created();
  r.duplicate = w.duplicate();
  return r;
}

} // namespace colony::actors
