// The sandbox's metered string.find/match/gmatch/gsub (the lua adapter's patterns.cpp):
// the same answers as Lua 5.4's own library, checked against it case by case
// and on random patterns, and the limits hold inside one matcher call.
#include <catch2/catch.hpp>

#include <lua.hpp>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "colony/adapters/lua_sandbox.hpp"

using namespace colony::adapters::lua;
using njson = nlohmann::json;

namespace {

/// `expr`'s values (or its error) as one line of text, the same in both states.
std::string wrap(const std::string& expr) {
  return R"~(
    local function show(ok, ...)
      local r, out = table.pack(...), {ok and "ok" or "error"}
      for i = 1, r.n do out[#out + 1] = type(r[i]) .. ":" .. tostring(r[i]) end
      return table.concat(out, "|")
    end
    local function list(it) local t = {} for a, b in it do t[#t + 1] = tostring(a) .. "," .. tostring(b) end return table.concat(t, ";") end
    return show(pcall(function() return )~" +
    expr + " end))";
}

/// Lua's own library, unsandboxed: the reference.
std::string reference(const std::string& expr) {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  std::string out;
  const std::string code = wrap(expr);
  if (luaL_loadbuffer(L, code.data(), code.size(), "=test") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    out = std::string("reference failed: ") + lua_tostring(L, -1);
  else
    out = lua_tostring(L, -1);
  lua_close(L);
  return out;
}

std::string sandboxed(const std::string& expr, limits lim = {}) {
  lim.wall = std::chrono::seconds(10);
  outcome e;
  auto s = sandbox::create("test", "return { run = function() " + wrap(expr) + " end }", lim, {}, &e);
  if (!s)
    return "create failed: " + e.message;
  auto o = s->call("run", "[]");
  if (o.st != outcome::state::done)
    return "call failed: " + o.message;
  return njson::parse(o.results)[0].get<std::string>();
}

/// A Lua string literal of `s`, every byte escaped.
std::string quote(const std::string& s) {
  std::string q = "\"";
  for (unsigned char c : s)
    q += "\\" + std::to_string(c);
  return q + "\"";
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST_CASE("lua patterns: the answers of Lua 5.4's own library") {
  for (const char* expr : {
         R"~(string.find("hello world", "o w"))~",
         R"~(string.find("hello world", "o", 6))~",
         R"~(string.find("hello world", "l+"))~",
         R"~(string.find("a.b", ".", 1, true))~",
         R"~(string.find("abc", "", 10))~",
         R"~(string.find("abc", "", 4))~",
         R"~(string.find("abc", "b", -1))~",
         R"~(string.find("abc", "b", -10))~",
         R"~(string.find("user@example.com", "@(.+)$"))~",
         R"~(string.match("user@Example.com", "^[%w._%-]+@([%w.-]+)$"))~",
         R"~(string.match("key = value", "(%w+)%s*=%s*(%w+)"))~",
         R"~(string.match("  trim me  ", "^%s*(.-)%s*$"))~",
         R"~(string.match("2026-12-06", "(%d+)-(%d+)-(%d+)"))~",
         R"~(string.match("hello", "()ll()"))~",
         R"~(string.match("f(a(b)c)d", "%b()"))~",
         R"~(string.match("THE (quick) fox", "%f[%a]%a+"))~",
         R"~(string.match("abcabc", "(abc)%1"))~",
         R"~(string.match("[x]", "[]]"))~",
         R"~(string.match("a-b", "[a%-]+"))~",
         R"~(string.match("x^y", "x^y"))~",
         R"~(string.match("a$b", "a$b"))~",
         R"~(string.match("aaa", "a-b"))~",
         R"~(string.match("aaab", "a-b"))~",
         R"~(string.match("ab", "a?b?c?"))~",
         R"~(string.match("\0a\0", "a%z()"))~",
         R"~(string.match("héllo", "[\128-\255]+"))~",
         R"~(list(string.gmatch("one two  three", "%a+")))~",
         R"~(list(string.gmatch("a=1, b=2", "(%w+)=(%w+)")))~",
         R"~(list(string.gmatch("abc", "")))~",
         R"~(list(string.gmatch("abc", "b*")))~",
         R"~(list(string.gmatch("hello world", "o", 6)))~",
         R"~(string.gsub("hello world", "o", "0"))~",
         R"~(string.gsub("hello world", "(o)", "[%1%1]", 1))~",
         R"~(string.gsub("abc", "", "-"))~",
         R"~(string.gsub("abc", "b*", "-"))~",
         R"~(string.gsub("hello", "l", {l = "L"}))~",
         R"~(string.gsub("$name is $age", "%$(%w+)", {name = "Ann", age = 7}))~",
         R"~(string.gsub("abc", "%w", function(c) return c:upper() .. "." end))~",
         R"~(string.gsub("abc", "%w", function(c) if c == "b" then return false end return "x" end))~",
         R"~(string.gsub("abc", "^a", "A"))~",
         R"~(string.gsub("a.b", "%.", "%%"))~",
         R"~(string.gsub("hello", "()l", "%1"))~",
         R"~(string.gsub("abc", "b", "%0%0"))~",
         R"~(("x"):rep(3):gsub("x", "y"))~",
         // errors, with the library's messages
         R"~(string.find("a", "%"))~",
         R"~(string.find("a", "[a"))~",
         R"~(string.find("a", "(a"))~",
         R"~(string.find("a", "a)"))~",
         R"~(string.find("a", "%1"))~",
         R"~(string.find("a", "%b"))~",
         R"~(string.find("a", "%fa"))~",
         R"~(string.gsub("a", "a", "%2"))~",
         R"~(string.gsub("a", "a", "%x"))~",
         R"~(string.gsub("a", "a", {a = {}}))~",
         R"~(string.gsub("a", "a", true))~",
         R"~(string.find("a", string.rep("(", 40) .. "a" .. string.rep(")", 40)))~",
         R"~(string.match(string.rep("a", 300), string.rep("a?", 300) .. string.rep("a", 300)))~",
       }) {
    INFO(expr);
    CHECK(sandboxed(expr) == reference(expr));
  }
}

TEST_CASE("lua patterns: random patterns answer as Lua's library does") {
  std::mt19937 rng(20261206);
  const std::string atoms[] = {"a",  "b", ".", "%a", "%d", "%s", "%w", "[ab]", "[^a]", "[a-c]",  "%.",    "(", ")",
                               "()", "*", "+", "-",  "?",  "^",  "$",  "%1",   "%b()", "%f[%w]", "[%d_]", "%", "["};
  const std::string letters = "aab1 ()._";
  std::uniform_int_distribution<std::size_t> atom(0, std::size(atoms) - 1), letter(0, letters.size() - 1), len(0, 8),
    slen(0, 14);
  int compared = 0;
  for (int i = 0; i < 400; ++i) {
    std::string p, s;
    for (std::size_t n = len(rng); n > 0; --n)
      p += atoms[atom(rng)];
    for (std::size_t n = slen(rng); n > 0; --n)
      s += letters[letter(rng)];
    for (const std::string fn : {"string.find", "string.match"}) {
      std::string expr = fn + "(" + quote(s) + ", " + quote(p) + ")";
      INFO(expr);
      CHECK(sandboxed(expr) == reference(expr));
      ++compared;
    }
    std::string g = "string.gsub(" + quote(s) + ", " + quote(p) + ", \"<%0>\")";
    INFO(g);
    CHECK(sandboxed(g) == reference(g));
    std::string m = "list(string.gmatch(" + quote(s) + ", " + quote(p) + "))";
    INFO(m);
    CHECK(sandboxed(m) == reference(m));
    compared += 2;
  }
  CHECK(compared == 1600);
}

TEST_CASE("lua patterns: the limits hold inside one matcher call") {
  limits lim;
  lim.instructions = 2'000'000;
  lim.wall = std::chrono::seconds(10);
  for (const char* body : {
         // backtracking that the library's C matcher runs for minutes
         "return string.find(string.rep('a', 1e5), '.-.-.-.-x')",
         "return string.match(string.rep('a', 1e5), string.rep('a*', 10) .. 'b')",
         "return string.gsub(string.rep('a', 1e5), '.-.-b', '')",
         "for w in string.gmatch(string.rep('a', 1e5), '.-.-b') do end",
         // a plain find over a long subject, many times
         "local s = string.rep('a', 1e6) for i = 1, 1e3 do string.find(s, string.rep('a', 100) .. 'b', 1, true) end",
         "return string.find(string.rep('(', 1e5), string.rep('%b()', 20))",
         // the limit is not swallowed by pcall
         "while true do pcall(string.find, string.rep('a', 1e4), '.-.-.-x') end",
       }) {
    auto s = sandbox::create("test", std::string("return { run = function() ") + body + " end }", lim, {}, nullptr);
    REQUIRE(s);
    auto t0 = std::chrono::steady_clock::now();
    auto o = s->call("run", "[]");
    INFO(body << ": " << o.message);
    CHECK(o.f == fault::instructions);
    CHECK_THAT(o.message, Catch::Contains("instruction limit (2000000)"));
    CHECK(ms_since(t0) < 3000);
  }
  // The wall clock holds inside a matcher call too.
  limits timed;
  timed.instructions = 1'000'000'000'000;
  timed.wall = std::chrono::milliseconds(50);
  auto s =
    sandbox::create("test", "return { run = function() return string.find(string.rep('a', 1e5), '.-.-.-.-x') end }",
                    timed, {}, nullptr);
  REQUIRE(s);
  auto t0 = std::chrono::steady_clock::now();
  auto o = s->call("run", "[]");
  CHECK(o.f == fault::time);
  CHECK(ms_since(t0) < 1000);
  // gsub's output is held to the memory cap.
  limits small;
  small.memory = 2u << 20;
  small.wall = std::chrono::seconds(10);
  s = sandbox::create(
    "test", "return { run = function() return #string.gsub(string.rep('a', 1e5), 'a', string.rep('b', 100)) end }",
    small, {}, nullptr);
  REQUIRE(s);
  CHECK(s->call("run", "[]").f == fault::memory);
}
