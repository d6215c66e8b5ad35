// The wire form of the entity protocol (actors/wire.hpp): every field of a
// key, a command, a reply and a failure survives a binary round trip.
#include <catch2/catch.hpp>

#include "colony/actors/wire.hpp"
#include "colony/protocol/json.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"

using namespace colony;
using namespace colony::actors;

namespace {
template <class Msg>
Msg through_bytes(const Msg& m) {
  Msg out;
  REQUIRE(out.ParseFromString(m.SerializeAsString()));
  return out;
}
} // namespace

TEST_CASE("a command and its key survive the wire", "[wire]") {
  auto req = std::make_shared<v1::CreateUserRequest>();
  req->set_email("ann@example.com");
  req->add_roles("admin");
  command cmd;
  cmd.what = op::create_user;
  cmd.payload = req;
  cmd.text = R"({"name":"x"})";
  cmd.if_match = {3, 4};
  cmd.user_id = "0190a0a0-0000-7000-8000-000000000001";
  cmd.new_id = true;
  cmd.inspect = true;
  cmd.meta = request_meta{"rid", "00-aa-bb-01", "idem:x", "key:1", "10.0.0.1", false, "scope"};
  entity_key key{entity_kind::tenant, "t1", "t1"};

  std::string error;
  auto back = from_wire(through_bytes(to_wire(key, cmd)), error);
  REQUIRE(back);
  CHECK(error.empty());
  CHECK(back->key.kind == key.kind);
  CHECK(back->key.tenant_id == "t1");
  CHECK(back->key.id == "t1");
  CHECK(back->cmd.what == op::create_user);
  REQUIRE(back->cmd.payload != nullptr);
  CHECK(back->cmd.payload->GetTypeName() == "colony.v1.CreateUserRequest");
  CHECK(protocol::to_json(*back->cmd.payload) == protocol::to_json(*req));
  CHECK(back->cmd.text == cmd.text);
  CHECK(back->cmd.if_match == std::vector<std::uint32_t>{3, 4});
  CHECK(back->cmd.user_id == cmd.user_id);
  CHECK(back->cmd.new_id);
  CHECK(back->cmd.inspect);
  CHECK(back->cmd.meta.request_id == "rid");
  CHECK(back->cmd.meta.traceparent == "00-aa-bb-01");
  CHECK(back->cmd.meta.message_key == "idem:x");
  CHECK(back->cmd.meta.actor == "key:1");
  CHECK(back->cmd.meta.client == "10.0.0.1");
  CHECK_FALSE(back->cmd.meta.owner_powers);
  CHECK(back->cmd.meta.idempotency_scope == "scope");
}

TEST_CASE("a command the node cannot read is refused with a reason", "[wire]") {
  v1::EntityCommand w;
  std::string error;
  CHECK_FALSE(from_wire(w, error));
  CHECK(error == "no entity kind");
  w.mutable_key()->set_kind(1);
  w.set_op(200);
  CHECK_FALSE(from_wire(w, error));
  CHECK(error.find("unknown operation") != std::string::npos);
  w.set_op(static_cast<std::uint32_t>(op::create));
  w.set_payload_type("colony.v1.NoSuchMessage");
  CHECK_FALSE(from_wire(w, error));
  CHECK(error.find("unknown payload type") != std::string::npos);
  w.set_payload_type("colony.v1.CreateTenantRequest");
  w.set_payload(std::string{"\xff\xff\xff", 3});
  CHECK_FALSE(from_wire(w, error));
  CHECK(error.find("does not parse") != std::string::npos);
}

TEST_CASE("replies survive the wire in the form they had", "[wire]") {
  SECTION("an entity message") {
    auto t = std::make_shared<v1::Tenant>();
    t->set_id("t1");
    t->set_slug("acme");
    entity_reply r;
    r.entity = t;
    r.version = 7;
    r.created = true;
    auto back = from_wire(through_bytes(to_wire(r)));
    REQUIRE(back.entity != nullptr);
    CHECK(back.bytes == nullptr);
    CHECK(protocol::to_json(*back.entity) == protocol::to_json(*t));
    CHECK(back.version == 7);
    CHECK(back.created);
    CHECK_FALSE(back.duplicate);
    CHECK_FALSE(back.error);
  }
  SECTION("a read's bytes stay bytes") {
    v1::User u;
    u.set_id("u1");
    entity_reply r;
    r.bytes = std::make_shared<const std::string>(u.SerializeAsString());
    r.type = "colony.v1.User";
    r.version = 2;
    r.duplicate = true;
    auto back = from_wire(through_bytes(to_wire(r)));
    CHECK(back.entity == nullptr);
    REQUIRE(back.bytes != nullptr);
    CHECK(*back.bytes == *r.bytes);
    CHECK(back.type == "colony.v1.User");
    CHECK(back.duplicate);
  }
  SECTION("a failure with its errors and extension members, in order") {
    failure f = fail(errc::limit_exceeded, "seats used up");
    f.errors.push_back({"roles", "too many"});
    f.strings = {{"b", "2"}, {"a", "1"}};
    f.numbers = {{"limit", 5}, {"used", 5}};
    auto back = from_wire(through_bytes(to_wire(entity_reply::fail(f))));
    REQUIRE(back.error);
    CHECK(back.error->code == errc::limit_exceeded);
    CHECK(back.error->detail == "seats used up");
    REQUIRE(back.error->errors.size() == 1);
    CHECK(back.error->errors[0].field == "roles");
    CHECK(back.error->strings == f.strings);
    CHECK(back.error->numbers == f.numbers);
  }
  SECTION("an unknown error code is internal, never a crash") {
    v1::EntityReply w;
    w.mutable_error()->set_code(250);
    auto back = from_wire(w);
    REQUIRE(back.error);
    CHECK(back.error->code == errc::internal);
  }
  SECTION("an entity of an unknown type is an internal failure") {
    v1::EntityReply w;
    w.set_type("colony.v1.Nothing");
    w.set_has_entity(true);
    auto back = from_wire(w);
    REQUIRE(back.error);
    CHECK(back.error->code == errc::internal);
  }
}
