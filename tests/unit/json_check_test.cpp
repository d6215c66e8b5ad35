// protocol::check_json, the gate in front of every JSON parser: limits on
// depth and values, duplicate keys, syntax, and time linear in the size
// whatever the shape of the document.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "colony/protocol/json.hpp"
#include "colony/v1/user.pb.h"

using namespace colony;
using protocol::json_error;

namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

std::string nested_objects(std::size_t depth) {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i)
    s += "{\"a\":";
  s += "1";
  s += std::string(depth, '}');
  return s;
}

} // namespace

TEST_CASE("check_json: well-formed documents within the limits pass") {
  CHECK_FALSE(protocol::check_json(R"({"email":"a@b.c","roles":["x","y"],"attributes":{"k":[1,2.5,true,null]}})"));
  CHECK_FALSE(protocol::check_json("[1,2,3]", false));
  CHECK_FALSE(protocol::check_json("\"text\"", false));
  CHECK_FALSE(protocol::check_json(nested(64), false));
  CHECK_FALSE(protocol::check_json(nested_objects(64)));
  // The same key in different objects is not a duplicate.
  CHECK_FALSE(protocol::check_json(R"({"a":{"a":1},"b":{"a":2},"c":[{"a":1},{"a":2}]})"));
}

TEST_CASE("check_json: nesting beyond the limit is refused, naming the limit") {
  auto err = protocol::check_json(nested(65), false);
  REQUIRE(err);
  CHECK(err->kind == json_error::too_deep);
  CHECK(err->message.find("64") != std::string::npos);
  auto obj = protocol::check_json(nested_objects(65));
  REQUIRE(obj);
  CHECK(obj->kind == json_error::too_deep);
  CHECK(obj->field.rfind("a.a.a", 0) == 0);
  auto in_attrs = protocol::check_json("{\"attributes\":{\"x\":" + nested(100'000) + "}}");
  REQUIRE(in_attrs);
  CHECK(in_attrs->kind == json_error::too_deep);
  CHECK(in_attrs->field.rfind("attributes.x[0][0]", 0) == 0);
  protocol::json_limits tight{3, 100};
  CHECK(protocol::check_json("[[[1]]]", false, tight) == std::nullopt);
  CHECK(protocol::check_json("[[[[1]]]]", false, tight)->kind == json_error::too_deep);
}

TEST_CASE("check_json: more values than the limit are refused") {
  std::string many = "[";
  for (int i = 0; i < 100'000; ++i)
    many += "0,";
  many += "0]";
  auto err = protocol::check_json(many, false);
  REQUIRE(err);
  CHECK(err->kind == json_error::too_many_values);
  CHECK(err->message.find("100000") != std::string::npos);
  protocol::json_limits few{64, 4};
  CHECK_FALSE(protocol::check_json(R"({"a":1,"b":2,"c":3})", true, few));
  CHECK(protocol::check_json(R"({"a":1,"b":2,"c":3,"d":4})", true, few)->kind == json_error::too_many_values);
}

TEST_CASE("check_json: a key twice in one object is refused, with its path") {
  auto err = protocol::check_json(R"({"email":"a@b.c","roles":["admin"],"roles":["owner"]})");
  REQUIRE(err);
  CHECK(err->kind == json_error::duplicate_key);
  CHECK(err->field == "roles");
  auto inner = protocol::check_json(R"({"attributes":{"list":[{"k":1,"k":2}]}})");
  REQUIRE(inner);
  CHECK(inner->kind == json_error::duplicate_key);
  CHECK(inner->field == "attributes.list[0].k");
  // Keys compare after unescaping: "\u0061" is "a".
  CHECK(protocol::check_json(R"({"a":1,"\u0061":2})")->kind == json_error::duplicate_key);
}

TEST_CASE("check_json: syntax errors, non-objects and bad UTF-8 never quote the body") {
  for (std::string bad :
       std::vector<std::string>{"", "{", "{\"a\":}", "{\"a\":1,}", "[1 2]", "{\"a\":1} x", "{'a':1}", "{\"a\":NaN}",
                                "{\"secret-value\": tru}", std::string{"{\"a\":\"\xff\xfe\"}"}, "{\"a\":\"\x01\"}"}) {
    auto err = protocol::check_json(bad);
    INFO(bad);
    REQUIRE(err);
    CHECK(err->kind == json_error::syntax);
    CHECK(err->message.find("secret") == std::string::npos);
    CHECK(err->message.find("tru") == std::string::npos);
  }
  CHECK(protocol::check_json("[1]")->kind == json_error::not_object);
  CHECK(protocol::check_json("null")->kind == json_error::not_object);
}

TEST_CASE("check_json: time is linear in the size whatever the shape") {
  // A megabyte of the shapes that are costly elsewhere: deep nesting (refused
  // at level 65, so the rest is never read), and wide flat data that passes.
  auto t0 = std::chrono::steady_clock::now();
  CHECK(protocol::check_json(nested(500'000), false)->kind == json_error::too_deep);
  std::string wide = "{";
  for (int i = 0; i < 20'000; ++i)
    wide += "\"k" + std::to_string(i) + "\":\"" + std::string(30, 'x') + "\",";
  wide += "\"end\":0}";
  CHECK_FALSE(protocol::check_json(wide));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  // Generous (sanitizers, a busy machine): the point is the order of magnitude;
  // protobuf's parser takes minutes on the deep body.
  CHECK(ms < 2000);
}

TEST_CASE("from_json and merge patches go through the gate") {
  v1::User u;
  auto dup = protocol::from_json(R"({"email":"a@b.c","roles":["admin"],"roles":["owner"]})", u);
  REQUIRE(dup);
  CHECK(dup->field == "roles");
  CHECK(dup->message == "duplicate key");
  auto deep = protocol::from_json("{\"attributes\":{\"x\":" + nested(100'000) + "}}", u);
  REQUIRE(deep);
  CHECK(deep->message.find("deeper than 64") != std::string::npos);
  v1::User cur;
  cur.set_email("a@b.c");
  v1::User next;
  auto patch = protocol::apply_merge_patch(cur, "{\"attributes\":{\"x\":" + nested(70) + "}}", {"attributes"}, next);
  REQUIRE(patch);
  CHECK(patch->message.find("deeper than 64") != std::string::npos);
  auto patch_dup = protocol::apply_merge_patch(cur, R"({"name":"a","name":"b"})", {"name"}, next);
  REQUIRE(patch_dup);
  CHECK(patch_dup->message == "duplicate key");
}
