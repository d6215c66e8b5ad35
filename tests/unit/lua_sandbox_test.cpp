// The Lua sandbox's limits and its environment (colony/adapters/lua_sandbox.hpp):
// every escape and exhaustion attempt ends within its limit, named, and the
// sandbox answers the next call (after a reset when the state may be broken).
#include <catch2/catch.hpp>

#include <chrono>
#include <nlohmann/json.hpp>

#include "colony/adapters/lua_sandbox.hpp"

using namespace colony::adapters::lua;
using njson = nlohmann::json;

namespace {

/// The defaults with a generous clock: a loaded machine (or a sanitizer
/// build) must not turn another limit's test into a time-limit one.
limits relaxed() {
  limits l;
  l.wall = std::chrono::seconds(10);
  return l;
}

std::unique_ptr<sandbox> make(const std::string& source, limits lim = relaxed(), std::vector<host_function> host = {},
                              outcome* err = nullptr) {
  outcome e;
  auto s = sandbox::create("test", source, lim, std::move(host), &e);
  if (err != nullptr)
    *err = e;
  else if (!s)
    FAIL("create failed: " << e.message);
  return s;
}

/// Runs `body` as hook `run` and returns the outcome.
outcome run(const std::string& body, limits lim = relaxed(), const std::string& args = "[]") {
  auto s = make("return { run = function(...) " + body + " end }", lim);
  return s->call("run", args);
}

njson results(const outcome& o) {
  REQUIRE(o.st == outcome::state::done);
  return njson::parse(o.results);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST_CASE("lua sandbox: hooks, arguments and results as JSON") {
  auto s = make(R"~(return {
    before_user_create = function(ctx, user)
      if user.email:sub(-12) ~= "@example.com" then return nil, "only example.com addresses" end
      user.name = user.name .. " (" .. ctx.tenantId .. ")"
      return user
    end,
    helper = 42,
  })~");
  CHECK(s->hooks() == std::vector<std::string>{"before_user_create"});
  CHECK(s->has("before_user_create"));
  CHECK_FALSE(s->has("helper"));
  auto ok = s->call("before_user_create",
                    R"~([{"tenantId": "t1"}, {"email": "a@example.com", "name": "Ann", "roles": ["member"]}])~");
  CHECK(results(ok) == njson::parse(R"~([{"email": "a@example.com", "name": "Ann (t1)", "roles": ["member"]}])~"));
  auto no = s->call("before_user_create", R"~([{"tenantId": "t1"}, {"email": "b@other.org", "name": "B"}])~");
  CHECK(results(no) == njson::parse(R"~([null, "only example.com addresses"])~"));
  // JSON integers are Lua integers (500, not 500.0, in a message); fractions stay floats.
  auto n = make("return { run = function(a, b, c) return math.type(a), math.type(b), math.type(c), tostring(a) end }");
  CHECK(results(n->call("run", "[500, -3, 1.5]")) == njson::parse(R"~(["integer", "integer", "float", "500"])~"));
  auto missing = s->call("on_event", "[]");
  CHECK(missing.f == fault::no_such_hook);
  CHECK(s->call("before_user_create", "not json").f == fault::output);
}

TEST_CASE("lua sandbox: the source must compile in text mode and return a table of functions") {
  outcome e;
  CHECK_FALSE(make("return {\n  x = function( end\n}", relaxed(), {}, &e));
  CHECK(e.f == fault::syntax);
  CHECK_THAT(e.message, Catch::Contains("test:2:"));
  CHECK_FALSE(make("return 42", relaxed(), {}, &e));
  CHECK(e.f == fault::load);
  CHECK_FALSE(make("error('boom at load')", relaxed(), {}, &e));
  CHECK(e.f == fault::load);
  CHECK_THAT(e.message, Catch::Contains("boom at load"));
  CHECK_FALSE(make(std::string("\x1bLua\x54\x00", 6) + "garbage", relaxed(), {}, &e)); // a binary chunk
  CHECK(e.f == fault::syntax);
  CHECK_FALSE(make("while true do end", relaxed(), {}, &e)); // the chunk itself is held to the limits
  CHECK((e.f == fault::instructions || e.f == fault::time));
}

TEST_CASE("lua sandbox: nothing of the host is reachable") {
  auto r = results(run(R"~(
    return io == nil, os.execute == nil, os.exit == nil, os.getenv == nil, os.remove == nil,
           require == nil, package == nil, debug == nil, dofile == nil, loadfile == nil,
           string.dump == nil, rawset == nil, print == nil,
           string.dump == nil, type(string.find) == "function", type(string.gsub) == "function",
           getmetatable("") == false,
           (pcall(collectgarbage, "collect")) == false, type(collectgarbage("count")) == "number",
           type(os.time()) == "number", type(os.date("!%Y")) == "string"
  )~"));
  for (const auto& v : r)
    CHECK(v == true);
  // load: text only, into the sandbox's own globals.
  auto l = results(run(R"~(
    local f = load("return os.execute")
    local bin, msg = load(string.char(27) .. "Lua")
    return f() == nil, bin == nil, msg
  )~"));
  CHECK(l[0] == true);
  CHECK(l[1] == true);
  CHECK_THAT(l[2].get<std::string>(), Catch::Contains("binary"));
  // The string metatable cannot be changed, and finalizers are refused.
  CHECK(run("setmetatable('', {})").f == fault::error);
  auto gc = run("setmetatable({}, {__gc = function() while true do end end})");
  CHECK(gc.f == fault::error);
  CHECK_THAT(gc.message, Catch::Contains("__gc"));
  auto close = run("local x <close> = setmetatable({}, {__close = function() while true do end end})");
  CHECK(close.f == fault::error);
  CHECK_THAT(close.message, Catch::Contains("__close"));
  // xpcall still works as plugins expect: the handler sees the error.
  CHECK(results(run("return xpcall(function(a) error({code = a}) end, function(e) return e.code + 1 end, 41)")) ==
        njson::parse("[false, 42]"));
  CHECK(results(run("return xpcall(function(a, b) return a + b end, print, 1, 2)")) == njson::parse("[true, 3]"));
}

TEST_CASE("lua sandbox: instruction budget, also through pcall, coroutines and error handlers") {
  limits lim;
  lim.instructions = 1'000'000;
  lim.wall = std::chrono::seconds(10);
  for (const char* body : {
         "while true do end", "while true do pcall(function() while true do end end) end",
         "local co = coroutine.wrap(function() while true do end end) co()",
         "while true do xpcall(function() while true do end end, function(e) while true do end end) end",
         "local function f() return f() end return f()", // a tail call loops forever too
       }) {
    auto t0 = std::chrono::steady_clock::now();
    auto o = run(body, lim);
    INFO(body << ": " << o.message);
    CHECK(o.st == outcome::state::failed);
    CHECK(o.f == fault::instructions);
    CHECK_THAT(o.message, Catch::Contains("instruction limit (1000000)"));
    CHECK(o.needs_reset);
    CHECK(ms_since(t0) < 5000);
  }
}

TEST_CASE("lua sandbox: the wall-clock budget") {
  limits lim;
  lim.instructions = 1'000'000'000'000;
  lim.wall = std::chrono::milliseconds(50);
  auto t0 = std::chrono::steady_clock::now();
  auto o = run("local x = 0 while true do x = x + 1 end", lim);
  CHECK(o.f == fault::time);
  CHECK_THAT(o.message, Catch::Contains("time limit (50 ms)"));
  CHECK(ms_since(t0) < 1000);
}

TEST_CASE("lua sandbox: the memory cap holds, also inside one library call") {
  auto lim = relaxed();
  lim.memory = 4u << 20;
  for (const char* body : {
         "local t = {} for i = 1, 1e8 do t[i] = i end",
         "return string.rep('x', 1e9)",
         "local s = 'x' while true do s = s .. s end",
         "local t = {} for i = 1, 1e6 do t[i] = 'abcdefgh' .. i end return table.concat(t)",
         "return ('x'):rep(3e6):upper():rep(2)",
       }) {
    auto o = run(body, lim);
    INFO(body << ": " << o.message);
    CHECK(o.f == fault::memory);
  }
  // The state is made anew, and it works.
  auto s = make(
    "return { run = function() local t = {} for i = 1, 1e8 do t[i] = i end end, ok = function() return 1 end }", lim);
  auto o = s->call("run", "[]");
  CHECK(o.f == fault::memory);
  REQUIRE(o.needs_reset);
  REQUIRE(s->reset(nullptr));
  CHECK(results(s->call("ok", "[]")) == njson::parse("[1]"));
  CHECK(s->memory() < lim.memory);
}

TEST_CASE("lua sandbox: errors are named, and plugin code never runs to describe them") {
  auto o = run("error('nope')");
  CHECK(o.f == fault::error);
  CHECK_THAT(o.message, Catch::Contains("test:1:") && Catch::Contains("nope"));
  auto t0 = std::chrono::steady_clock::now();
  auto m = run("error(setmetatable({}, {__tostring = function() while true do end end}))");
  CHECK(m.f == fault::error);
  CHECK(m.message == "(error object is a table value)");
  CHECK(ms_since(t0) < 1000);
  auto deep = run("local function f(n) return 1 + f(n + 1) end return f(1)");
  CHECK(deep.st == outcome::state::failed); // a stack overflow, caught
}

TEST_CASE("lua sandbox: results are bounded and must be JSON") {
  auto lim = relaxed();
  lim.output = 1000;
  CHECK(run("return string.rep('x', 2000)", lim).f == fault::output);
  CHECK(run("return function() end").f == fault::output);
  CHECK(run("local t = {} t.t = t return t").f == fault::output);
  CHECK(run("return 0/0").f == fault::output);
  CHECK(run("return {1, 2, x = 3}").f == fault::output);
  CHECK(results(run("return {}, {1, 2}, {a = {b = true}}, 1.5")) ==
        njson::parse(R"~([{}, [1, 2], {"a": {"b": true}}, 1.5])~"));
}

TEST_CASE("lua sandbox: host functions, synchronous and asynchronous, and their call limit") {
  std::vector<std::string> seen;
  std::vector<host_function> host{
    {"kv", "get",
     [&](const std::string& args) {
       seen.push_back(args);
       return host_reply{R"~({"n": 7})~", std::nullopt};
     }},
    {"kv", "fail",
     [](const std::string&) {
       return host_reply{"null", std::string("kv is full")};
     }},
    {"http", "request", nullptr, true},
  };
  auto s = make(R"~(return {
    sync = function() return colony.kv.get("counter", 1).n + 1 end,
    failing = function() return pcall(colony.kv.fail, "x") end,
    async = function(ctx)
      -- an asynchronous host call's error is raised where it waited, as a synchronous one's is
      local ok, res = pcall(colony.http.request, {method = "GET", url = "https://hooks.example.com/x"})
      if not ok then return "failed: " .. res end
      return res.status, colony.json.encode({ok = true}), colony.json.decode('{"a": [1]}').a[1]
    end,
    nested = function()
      return coroutine.wrap(function() return colony.http.request({url = "https://x"}) end)()
    end,
    many = function() for i = 1, 1000 do colony.kv.get("k") end end,
  })~",
                relaxed(), host);
  CHECK(results(s->call("sync", "[]")) == njson::parse("[8]"));
  CHECK(seen.back() == R"~(["counter",1])~");
  auto f = results(s->call("failing", "[]"));
  CHECK(f[0] == false);
  CHECK_THAT(f[1].get<std::string>(), Catch::Contains("kv is full"));

  auto p = s->call("async", "[{}]");
  REQUIRE(p.st == outcome::state::pending);
  CHECK(njson::parse(p.request) ==
        njson::parse(R"~({"fn": "http.request", "args": [{"method": "GET", "url": "https://hooks.example.com/x"}]})~"));
  CHECK(results(s->resume(host_reply{R"~({"status": 204})~", std::nullopt})) ==
        njson::parse(R"~([204, "{\"ok\":true}", 1])~"));
  p = s->call("async", "[{}]");
  REQUIRE(p.st == outcome::state::pending);
  CHECK(results(s->resume(host_reply{"null", std::string("timed out")})) == njson::parse(R"~(["failed: timed out"])~"));
  CHECK(s->resume(host_reply{}).f == fault::host_calls); // nothing pending

  auto n = s->call("nested", "[]");
  CHECK(n.f == fault::error);
  CHECK_THAT(n.message, Catch::Contains("not from a coroutine"));
  auto m = s->call("many", "[]");
  CHECK(m.f == fault::host_calls);
  CHECK_THAT(m.message, Catch::Contains("more than 100 host calls"));
}

TEST_CASE("lua sandbox: a pending call's wait is not the plugin's time") {
  limits lim;
  lim.wall = std::chrono::milliseconds(50);
  std::vector<host_function> host{{"http", "request", nullptr, true}};
  auto s = make("return { run = function() local r = colony.http.request({}) return r end }", lim, host);
  auto p = s->call("run", "[]");
  REQUIRE(p.st == outcome::state::pending);
  auto t0 = std::chrono::steady_clock::now();
  while (ms_since(t0) < 120) {
  }
  CHECK(results(s->resume(host_reply{"1", std::nullopt})) == njson::parse("[1]"));
}
