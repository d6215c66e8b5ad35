// Plugin domain rules: semantic versions, names, a tenant's bindings, what
// a before_user_* hook's answer becomes; the config schema subset, held to
// the official JSON Schema test suite (Debian's json-schema-test-suite).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "colony/actors/plugin/config_schema.hpp"
#include "colony/actors/plugin/plugin_model.hpp"

using namespace colony;
using namespace colony::actors;

TEST_CASE("semantic versions parse and order by semver.org's precedence") {
  // semver.org, 11.4: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0
  std::vector<std::string> ordered{"0.9.9",      "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                   "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                                   "1.0.0",      "1.0.1",        "1.2.0",         "1.10.0",
                                   "2.0.0"};
  for (std::size_t i = 0; i + 1 < ordered.size(); ++i) {
    auto a = parse_semver(ordered[i]), b = parse_semver(ordered[i + 1]);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(compare(*a, *b) < 0);
    CHECK(compare(*b, *a) > 0);
  }
  CHECK(compare(*parse_semver("1.0.0+build.5"), *parse_semver("1.0.0")) == 0);
  for (const char* bad :
       {"1", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "v1.0.0", "1.0.0.0", "-1.0.0", "1.0.0-a..b"})
    CHECK_FALSE(parse_semver(bad));
}

TEST_CASE("plugin names") {
  CHECK(valid_plugin_name("email-domains"));
  CHECK(valid_plugin_name("a1"));
  for (const char* bad : {"", "a", "1abc", "Abc", "a_b", "a--b", "ab-", std::string(64, 'a').c_str()})
    CHECK_FALSE(valid_plugin_name(bad));
}

TEST_CASE("a tenant's bindings: enable in order, upgrade in place, the plan's limit, disable, suspend") {
  v1::Tenant t;
  t.set_id("t1");
  t.set_plan("starter");
  t.set_version(3);
  t.mutable_limits()->set_max_plugins(2);
  auto binding = [](const std::string& name, const std::string& version) {
    v1::PluginBinding b;
    b.set_name(name);
    b.set_version(version);
    b.add_hooks("before_user_create");
    return b;
  };
  auto one = enable_plugin(t, binding("a", "1.0.0"), 1000);
  REQUIRE(one);
  auto two = enable_plugin(one.value(), binding("b", "1.0.0"), 2000);
  REQUIRE(two);
  CHECK(two.value().version() == 5);
  CHECK(two.value().usage().plugins() == 2);
  auto three = enable_plugin(two.value(), binding("c", "1.0.0"), 3000);
  REQUIRE_FALSE(three);
  CHECK(three.error().code == errc::limit_exceeded);
  auto up = enable_plugin(two.value(), binding("a", "2.0.0"), 4000); // an upgrade is not one more plugin
  REQUIRE(up);
  REQUIRE(up.value().plugins_size() == 2);
  CHECK(up.value().plugins(0).name() == "a"); // kept its place
  CHECK(up.value().plugins(0).version() == "2.0.0");
  CHECK(up.value().plugins(0).enabled_at().seconds() == one.value().plugins(0).enabled_at().seconds());
  CHECK(any_hook(up.value(), "before_user_create"));
  CHECK_FALSE(any_hook(up.value(), "on_event"));
  auto sus = suspend_plugin(up.value(), "a", "too many faults", 5000);
  REQUIRE(sus);
  CHECK(sus.value().plugins(0).suspended());
  auto back = enable_plugin(sus.value(), binding("a", "2.0.0"), 6000);
  REQUIRE(back);
  CHECK_FALSE(back.value().plugins(0).suspended());
  auto off = disable_plugin(back.value(), "a", 7000);
  REQUIRE(off);
  CHECK(off.value().plugins_size() == 1);
  CHECK(off.value().usage().plugins() == 1);
  CHECK(disable_plugin(off.value(), "a", 8000).error().code == errc::not_found);
}

TEST_CASE("on_event cursors follow the bindings: opened, paused, removed") {
  v1::Tenant t;
  t.set_id("t1");
  t.mutable_limits()->set_max_plugins(5);
  auto binding = [](const std::string& name, const std::string& version, bool events) {
    v1::PluginBinding b;
    b.set_name(name);
    b.set_version(version);
    b.add_hooks("http");
    if (events)
      b.add_hooks("on_event");
    return b;
  };
  using changes = std::vector<std::pair<std::string, event_feed>>;
  auto a = enable_plugin(t, binding("a", "1.0.0", true), 1000).value();
  CHECK(feed_changes(&t, a) == changes{{"a", event_feed::running}});
  CHECK(feed_changes(nullptr, a) == changes{{"a", event_feed::running}});
  auto ab = enable_plugin(a, binding("b", "1.0.0", false), 2000).value(); // no on_event: no cursor
  CHECK(feed_changes(&a, ab).empty());
  auto cfg = enable_plugin(ab, binding("a", "1.0.0", true), 2500).value(); // a new config: the cursor stays
  CHECK(feed_changes(&ab, cfg).empty());
  auto sus = suspend_plugin(cfg, "a", "faults", 3000).value();
  CHECK(feed_changes(&cfg, sus) == changes{{"a", event_feed::paused}});
  CHECK(feed_of(&sus, "a") == event_feed::paused);
  auto back = enable_plugin(sus, binding("a", "1.0.0", true), 4000).value();
  CHECK(feed_changes(&sus, back) == changes{{"a", event_feed::running}});
  auto v2 = enable_plugin(back, binding("a", "2.0.0", false), 5000).value(); // its new version has no on_event
  CHECK(feed_changes(&back, v2) == changes{{"a", event_feed::none}});
  auto b2 = enable_plugin(back, binding("b", "2.0.0", true), 6000).value(); // b gains on_event
  CHECK(feed_changes(&back, b2) == changes{{"b", event_feed::running}});
  auto off = disable_plugin(b2, "a", 7000).value();
  CHECK(feed_changes(&b2, off) == changes{{"a", event_feed::none}});
  CHECK(feed_of(&off, "zzz") == event_feed::none);
  CHECK(feed_of(nullptr, "a") == event_feed::none);
}

TEST_CASE("on_event retries back off from 1 s, doubling to 5 minutes, with up to a fifth of jitter") {
  CHECK(event_retry_us(1, 0.0) == 1'000'000);
  CHECK(event_retry_us(2, 0.0) == 2'000'000);
  CHECK(event_retry_us(4, 0.0) == 8'000'000);
  CHECK(event_retry_us(9, 0.0) == 256'000'000);
  CHECK(event_retry_us(10, 0.0) == 300'000'000);
  CHECK(event_retry_us(1000, 0.0) == 300'000'000);
  CHECK(event_retry_us(1, 0.5) == 1'100'000);
  CHECK(event_retry_us(1, 7.0) == 1'200'000); // jitter is clamped
  CHECK(event_retry_us(0, 0.0) == 1'000'000);
}

TEST_CASE("what a before_user hook's answer means") {
  CHECK(user_hook_verdict(R"([{"email":"a@b.c"}])").what == user_verdict::kind::accept);
  auto no = user_hook_verdict(R"([null,"not here"])");
  CHECK(no.what == user_verdict::kind::reject);
  CHECK(no.reason == "not here");
  CHECK(user_hook_verdict("[]").what == user_verdict::kind::reject);
  CHECK(user_hook_verdict("[42]").what == user_verdict::kind::invalid);
  CHECK(user_hook_verdict(R"(["yes"])").what == user_verdict::kind::invalid);

  // A creation: only the members a plugin may set.
  CHECK(creation_from_hook(R"({"email":"a@b.c","name":"A","attributes":{"x":1}})").value() ==
        R"({"attributes":{"x":1},"email":"a@b.c","name":"A"})");
  CHECK_FALSE(creation_from_hook(R"({"email":"a@b.c","id":"x"})"));
  // Lua's one empty table: roles {} is no roles, and empty members take the creation's defaults.
  CHECK(creation_from_hook(R"({"email":"a@b.c","roles":{},"status":""})").value() == R"({"email":"a@b.c"})");

  // An update: the patch from the current user to what the hook returned.
  std::string cur = R"({"id":"u1","email":"a@b.c","name":"A","roles":["member"],"status":"active",
                        "attributes":{"keep":1,"drop":2},"version":4})";
  auto proposed = proposed_user(cur, R"({"name":"B","attributes":{"drop":null}})");
  REQUIRE(proposed);
  auto prop = nlohmann::json::parse(proposed.value());
  CHECK(prop["name"] == "B");
  CHECK(prop["attributes"] == nlohmann::json{{"keep", 1}});
  prop["name"] = "C";
  prop["attributes"]["new"] = true;
  auto patch = patch_from_hook(cur, prop.dump());
  REQUIRE(patch);
  CHECK(nlohmann::json::parse(patch.value()) ==
        nlohmann::json::parse(R"({"name":"C","attributes":{"drop":null,"new":true}})"));
  prop["version"] = 9; // not a plugin's to set
  CHECK_FALSE(patch_from_hook(cur, prop.dump()));
  CHECK(patch_from_hook(cur, cur).value() == "{}");
}

TEST_CASE("config schemas: what Colony checks, and what it refuses at publication") {
  CHECK_FALSE(check_config_schema(R"({"type":"object","properties":{"a":{"type":"integer","minimum":1}}})"));
  auto bad = check_config_schema(R"({"properties":{"a":{"$ref":"#/x"}}})");
  REQUIRE(bad);
  CHECK(bad->field == "configSchema.properties.a.$ref");
  CHECK(check_config_schema(R"({"type":"thing"})"));
  CHECK(check_config_schema(R"({"minLength":-1})"));
  auto errs = validate_config(R"({"type":"object","required":["d"],"additionalProperties":false,
                                   "properties":{"d":{"type":"array","items":{"type":"string","maxLength":3}}}})",
                              R"({"d":["abc","abcd",7],"e":1})");
  REQUIRE(errs.size() == 3);
  CHECK(errs[0].field == "config.d[1]");
  CHECK(errs[1].field == "config.d[2]");
  CHECK(errs[2].field == "config.e");
}

TEST_CASE("config schemas pass the official JSON Schema test suite (draft 7) for every keyword they support") {
  const std::filesystem::path dir = "/usr/share/json-schema-test-suite/tests/draft7";
  REQUIRE(std::filesystem::is_directory(dir)); // installed by make (json-schema-test-suite)
  int groups = 0, skipped = 0, cases = 0;
  for (const char* file : {"type",
                           "enum",
                           "const",
                           "properties",
                           "required",
                           "additionalProperties",
                           "minProperties",
                           "maxProperties",
                           "items",
                           "minItems",
                           "maxItems",
                           "uniqueItems",
                           "minimum",
                           "maximum",
                           "exclusiveMinimum",
                           "exclusiveMaximum",
                           "multipleOf",
                           "minLength",
                           "maxLength",
                           "allOf",
                           "anyOf",
                           "oneOf",
                           "not",
                           "boolean_schema"}) {
    std::ifstream in(dir / (std::string{file} + ".json"));
    REQUIRE(in.good());
    auto suite = nlohmann::json::parse(in);
    for (const auto& group : suite) {
      auto schema = group["schema"].dump();
      if (check_config_schema(schema)) { // uses a keyword outside the subset: refused at publication
        ++skipped;
        continue;
      }
      ++groups;
      for (const auto& t : group["tests"]) {
        INFO(file << ": " << group["description"].get<std::string>() << " / " << t["description"].get<std::string>());
        CHECK(validate_config(schema, t["data"].dump()).empty() == t["valid"].get<bool>());
        ++cases;
      }
    }
  }
  CHECK(groups >= 64); // what Debian 12's 2.0.0 suite holds for these keywords, less those refused
  CHECK(cases >= 242);
  CHECK(skipped < groups / 4);
}

TEST_CASE("an http hook's answer: status, headers a plugin may set, a text or JSON body") {
  auto ok =
    http_answer(R"([{"status":201,"headers":{"X-Count":"3","Content-Type":"application/x-ndjson"},"body":"a\nb"}])");
  REQUIRE(ok);
  CHECK(ok.value().status == 201);
  CHECK(ok.value().content_type == "application/x-ndjson");
  REQUIRE(ok.value().headers.size() == 1);
  CHECK(ok.value().headers[0] == std::pair<std::string, std::string>{"X-Count", "3"});
  CHECK(ok.value().body == "a\nb");
  auto table = http_answer(R"([{"body":{"n":1},"headers":[]}])"); // Lua's empty table encodes as []
  REQUIRE(table);
  CHECK(table.value().status == 200);
  CHECK(table.value().content_type == "application/json");
  CHECK(table.value().body == R"({"n":1})");
  auto empty = http_answer(R"([{}])");
  REQUIRE(empty);
  CHECK(empty.value().content_type == "text/plain; charset=utf-8");
  CHECK(empty.value().body.empty());
  for (const char* bad :
       {R"([])", R"([null,"no"])", R"(["text"])", R"([{"status":99}])", R"([{"status":600}])", R"([{"status":"200"}])",
        R"([{"status":200.5}])", R"([{"extra":1}])", R"([{"headers":{"Content-Length":"1"}}])",
        R"([{"headers":{"Set-Cookie":"a=b"}}])", R"([{"headers":{"Access-Control-Allow-Origin":"*"}}])",
        R"([{"headers":{"X-A":"1\r\nX-B: 2"}}])", R"([{"headers":{"X A":"1"}}])", R"([{"headers":{"X-A":1}}])",
        R"([{"headers":"x"}])", R"([{"body":42}])", R"([{"body":true}])"}) {
    INFO(bad);
    CHECK_FALSE(http_answer(bad));
  }
}

TEST_CASE("an http hook's request carries no credentials") {
  plugin_http_request r;
  r.method = "POST";
  r.path = "/a/b";
  r.query_json = R"({"q":"1"})";
  r.content_type = "application/json";
  r.body = "{\"x\":1}";
  r.credential = "api_key:k1";
  r.roles = {"viewer"};
  auto doc = nlohmann::json::parse(http_request_json(r));
  CHECK(doc["method"] == "POST");
  CHECK(doc["path"] == "/a/b");
  CHECK(doc["query"]["q"] == "1");
  CHECK(doc["headers"] == nlohmann::json{{"content-type", "application/json"}});
  CHECK(doc["body"] == "{\"x\":1}");
  CHECK(doc["caller"]["roles"] == nlohmann::json::array({"viewer"}));
  CHECK(doc["caller"]["userId"] == "");
}
