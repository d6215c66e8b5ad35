// The plugin sandbox: random Lua source and random hook arguments.
// Input: the source, then optionally "\n--args--\n" and the arguments (a
// JSON array, or any bytes, which go in as one string). The source is
// compiled under small limits; each hook it returns is called with the
// arguments, asynchronous host calls are answered, and a state that needs a
// reset is reset and called again.
// Properties: nothing crashes or escapes (ASan/UBSan); every call ends in
// time (a limit that does not hold is a finding: 5 s against a 100 ms
// budget); a done call's results are a JSON array; a failed one names its
// fault; the state never holds more than its memory cap.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "colony/adapters/lua_sandbox.hpp"
#include "colony/runtime/log.hpp"

using namespace colony;
namespace lua = colony::adapters::lua;

namespace {

lua::limits small() {
  lua::limits lim;
  lim.instructions = 200'000;
  lim.wall = std::chrono::milliseconds(100);
  lim.memory = 4u << 20;
  lim.output = 64u << 10;
  lim.host_calls = 20;
  return lim;
}

void check(const lua::sandbox& s, const lua::outcome& o, std::chrono::steady_clock::time_point started) {
  if (std::chrono::steady_clock::now() - started > std::chrono::seconds(5))
    std::abort(); // a limit did not hold
  if (s.memory() > small().memory)
    std::abort();
  if (o.st == lua::outcome::state::done && !nlohmann::json::parse(o.results, nullptr, false).is_array())
    std::abort();
  if (o.st == lua::outcome::state::failed && o.f == lua::fault::none)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static bool quiet = [] {
    log::init(log::format::text, log::level::error);
    return true;
  }();
  (void)quiet;
  std::string in(reinterpret_cast<const char*>(data), size);
  std::string source = in, args = "[]";
  if (auto at = in.find("\n--args--\n"); at != std::string::npos) {
    source = in.substr(0, at);
    args = in.substr(at + 10);
    if (!nlohmann::json::parse(args, nullptr, false).is_array())
      args = nlohmann::json::array({args}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::vector<lua::host_function> host;
  host.push_back({"", "log", [](const std::string&) { return lua::host_reply{}; }, false});
  host.push_back({"kv", "get", nullptr, true});
  lua::outcome err;
  auto started = std::chrono::steady_clock::now();
  auto s = lua::sandbox::create("fuzz", source, small(), std::move(host), &err);
  if (std::chrono::steady_clock::now() - started > std::chrono::seconds(5))
    std::abort();
  if (!s) {
    if (err.f != lua::fault::syntax && err.f != lua::fault::load && err.f != lua::fault::instructions &&
        err.f != lua::fault::time && err.f != lua::fault::memory)
      std::abort();
    return 0;
  }
  auto hooks = s->hooks();
  for (int round = 0; round < 2; ++round)
    for (const auto& h : hooks) {
      started = std::chrono::steady_clock::now();
      auto o = s->call(h, args);
      for (int i = 0; o.st == lua::outcome::state::pending && i < 30; ++i) {
        check(*s, o, started);
        o = s->resume(i % 2 == 0 ? lua::host_reply{"{\"v\": [1, \"x\"]}", std::nullopt}
                                 : lua::host_reply{"null", std::string{"no such key"}});
      }
      check(*s, o, started);
      if (o.needs_reset) {
        lua::outcome e2;
        if (!s->reset(&e2))
          return 0; // the source's own top level may break a limit the second time
      }
    }
  return 0;
}
