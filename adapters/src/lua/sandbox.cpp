// The Lua 5.4 sandbox (colony/adapters/lua_sandbox.hpp). Lua's headers stay
// in this adapter: nothing else sees lua_State.
#include "colony/adapters/lua_sandbox.hpp"

#include <lua.hpp>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "json_bridge.hpp"
#include "patterns.hpp"

namespace colony::adapters::lua {

std::string_view to_string(fault f) {
  switch (f) {
    case fault::none: return "none";
    case fault::syntax: return "syntax";
    case fault::load: return "load";
    case fault::no_such_hook: return "no-such-hook";
    case fault::error: return "error";
    case fault::instructions: return "instruction-limit";
    case fault::time: return "time-limit";
    case fault::memory: return "memory-limit";
    case fault::output: return "output-limit";
    case fault::host_calls: return "host-call-limit";
  }
  return "unknown";
}

namespace {

// The count hook fires every `period` VM instructions; once a limit is hit
// it fires at every instruction, so that a pcall catching the error runs
// into it again at once (Redis' SCRIPT KILL was swallowed this way once).
constexpr int period = 1000;

using clock = std::chrono::steady_clock;

} // namespace

struct sandbox::impl {
  std::string name, source;
  limits lim;
  std::vector<host_function> host;
  lua_State* L = nullptr;
  lua_State* co = nullptr; // the running call's coroutine (a registry reference keeps it)
  int co_ref = LUA_NOREF;
  int hooks_ref = LUA_NOREF;
  std::vector<std::string> hook_names;
  // The allocator's count of what the state holds, and whether it refused.
  std::size_t used = 0;
  bool memory_hit = false;
  // The running call.
  std::uint64_t spent = 0;
  clock::time_point deadline{};
  fault tripped = fault::none;
  int host_calls = 0;
  std::string pending;         // the request of a yielded asynchronous host call
  bool reply_is_error = false; // resume() answered it with an error: raised where the call yielded
  std::string trip_message;
  std::string scratch;                  // a host call's text, kept here while Lua calls may raise
  nlohmann::json doc;                   // a document being pushed (outside any frame a Lua error unwinds)
  std::chrono::nanoseconds time_left{}; // of the wall-clock budget, while a host call is pending
  bool running = false;
  bool loading = false; // open() runs the chunk: its table stays on the coroutine

  ~impl() { close(); }

  void close() {
    if (L != nullptr)
      lua_close(L);
    L = co = nullptr;
    co_ref = hooks_ref = LUA_NOREF;
    used = 0;
  }

  static impl* of(lua_State* s) { return *static_cast<impl**>(lua_getextraspace(s)); }

  static void* alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
    auto* s = static_cast<impl*>(ud);
    std::size_t old = ptr != nullptr ? osize : 0;
    if (nsize == 0) {
      std::free(ptr);
      s->used -= old;
      return nullptr;
    }
    if (nsize > old && s->used + (nsize - old) > s->lim.memory) {
      s->memory_hit = true;
      return nullptr; // Lua raises "not enough memory" where it asked
    }
    void* p = std::realloc(ptr, nsize);
    if (p != nullptr)
      s->used = s->used - old + nsize;
    return p;
  }

  static void count_hook(lua_State* s, lua_Debug* /*ar*/) { charge(s, period); }

  /// What the metered matcher spent (patterns.cpp): the same budget and
  /// deadline as the count hook's.
  static void charge(lua_State* s, std::uint64_t steps) {
    auto* self = of(s);
    self->spent += steps;
    if (self->tripped == fault::none && self->running) {
      if (self->spent > self->lim.instructions)
        self->tripped = fault::instructions;
      else if (clock::now() > self->deadline)
        self->tripped = fault::time;
    }
    if (self->tripped != fault::none) {
      lua_sethook(s, count_hook, LUA_MASKCOUNT, 1);
      if (self->trip_message.empty())
        self->trip_message = self->limit_message(self->tripped);
      raise(s, self->trip_message);
    }
  }

  /// lua_error with a message kept outside the frame: a Lua error is a
  /// longjmp, and no C++ object with a destructor may be live across one.
  static int raise(lua_State* s, const std::string& message) {
    lua_pushlstring(s, message.data(), message.size());
    return lua_error(s);
  }

  /// Runs `f(L)` under lua_pcall on the main thread: a memory error (or any
  /// Lua error) raised while it builds values lands here, never in the panic
  /// handler. `f` must hold no C++ object with a destructor across a Lua call.
  template <class F>
  int protect(F& f) {
    lua_pushcfunction(L, [](lua_State* s) -> int {
      (*static_cast<F*>(lua_touserdata(s, 1)))(s);
      return 0;
    });
    lua_pushlightuserdata(L, &f);
    int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK)
      lua_pop(L, 1);
    return status;
  }

  [[nodiscard]] std::string limit_message(fault f) const {
    switch (f) {
      case fault::instructions:
        return "plugin stopped: instruction limit (" + std::to_string(lim.instructions) + ") exceeded";
      case fault::time: return "plugin stopped: time limit (" + std::to_string(lim.wall.count()) + " ms) exceeded";
      case fault::memory: return "plugin stopped: memory limit (" + std::to_string(lim.memory) + " bytes) exceeded";
      default: return "plugin stopped";
    }
  }

  bool open(outcome* error);
  void install_library();
  void install_host();
  outcome finish(int status, int nresults);
  outcome run(int nargs);
};

namespace {

// -- the environment: what plugin code can reach -------------------------------

/// setmetatable without __gc and __close. Lua runs finalizers with hooks
/// off (lgc.c), and a coroutine that a limit stopped keeps its hooks off, so
/// closing it would run __close methods out of every limit's reach.
int safe_setmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc (finalizers) is not available to plugins");
    lua_pushliteral(L, "__close");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __close (to-be-closed values) is not available to plugins");
    lua_pop(L, 2);
  }
  lua_pushvalue(L, lua_upvalueindex(1)); // the library's setmetatable
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/// load in text mode only, into the sandbox's own environment.
int safe_load(lua_State* L) {
  std::size_t n = 0;
  const char* chunk = luaL_checklstring(L, 1, &n);
  const char* name = luaL_optstring(L, 2, "=(load)");
  if (luaL_loadbufferx(L, chunk, n, name, "t") != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1; // its _ENV upvalue is the globals table: the sandbox's own
}

/// collectgarbage("count") only: no control of the collector.
int safe_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "count");
  if (std::strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage: only \"count\" is available to plugins");
  lua_pushnumber(L,
                 static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNT, 0)) +
                   static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNTB, 0)) / 1024.0);
  return 1;
}

void keep_only(lua_State* L, const char* table, std::initializer_list<const char*> names) {
  lua_getglobal(L, table);
  lua_newtable(L);
  for (const char* n : names) {
    lua_getfield(L, -2, n);
    lua_setfield(L, -2, n);
  }
  lua_setglobal(L, table);
  lua_pop(L, 1);
}

void drop(lua_State* L, const char* table, std::initializer_list<const char*> names) {
  lua_getglobal(L, table);
  for (const char* n : names) {
    lua_pushnil(L);
    lua_setfield(L, -2, n);
  }
  lua_pop(L, 1);
}

} // namespace

void sandbox::impl::install_library() {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
                                  {LUA_OSLIBNAME, luaopen_os}};
  for (const auto& l : libs) {
    luaL_requiref(L, l.name, l.func, 1);
    lua_pop(L, 1);
  }
  // base: what reaches the host or the collector goes.
  for (const char* n : {"dofile", "loadfile", "print", "rawset", "require", "package"}) {
    lua_pushnil(L);
    lua_setglobal(L, n);
  }
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, safe_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_register(L, "load", safe_load);
  lua_register(L, "collectgarbage", safe_collectgarbage);
  keep_only(L, LUA_OSLIBNAME, {"time", "clock", "date", "difftime"});
  // xpcall's message handler runs where the error was raised: for an error
  // a limit raised, inside the count hook, where Lua calls no hook, so a
  // looping handler could never be stopped. This xpcall calls the handler
  // after the error has unwound (hooks on); without the debug library there
  // is no traceback it could have taken anyway.
  static constexpr char xpcall_source[] = R"lua(
    local pcall, pack, unpack = pcall, table.pack, table.unpack
    return function(f, msgh, ...)
      local r = pack(pcall(f, ...))
      if r[1] then return unpack(r, 1, r.n) end
      local _, v = pcall(msgh, r[2])
      return false, v
    end)lua";
  if (luaL_loadbufferx(L, xpcall_source, sizeof xpcall_source - 1, "=xpcall", "t") == LUA_OK) {
    lua_call(L, 0, 1);
    lua_setglobal(L, "xpcall");
  } else {
    lua_error(L);
  }
  // string.dump makes binary chunks. find, match, gmatch and gsub are the
  // metered matcher's (patterns.cpp): the library's C matcher runs where no
  // hook fires, and one call with ".-.-.-x" on a long subject takes minutes.
  drop(L, LUA_STRLIBNAME, {"dump"});
  lua_getglobal(L, LUA_STRLIBNAME);
  detail::install_patterns(L);
  lua_pop(L, 1);
  // The string metatable is the one shared type's: plugin code cannot get
  // or change it (getmetatable answers false).
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
}

namespace {

/// Where an asynchronous host call goes on when resume() answers it: its
/// value is the call's result, its error is raised in the plugin (as a
/// synchronous host function's is).
int host_reply_k(lua_State* L, int, lua_KContext) {
  auto* s = sandbox::impl::of(L);
  if (std::exchange(s->reply_is_error, false))
    return lua_error(L); // the message resume() pushed
  return 1;
}

/// colony.<table>.<name>(...): the arguments as a JSON array to the host
/// function; a synchronous one answers at once, an asynchronous one yields
/// the hook's coroutine until resume().
int host_call(lua_State* L) {
  auto* s = sandbox::impl::of(L);
  auto idx = static_cast<std::size_t>(lua_tointeger(L, lua_upvalueindex(1)));
  if (++s->host_calls > s->lim.host_calls && s->tripped == fault::none) {
    s->tripped = fault::host_calls;
    s->trip_message = "plugin stopped: more than " + std::to_string(s->lim.host_calls) + " host calls";
  }
  if (s->tripped != fault::none)
    return sandbox::impl::raise(L, s->trip_message);
  bool ok = true;
  {
    const auto& h = s->host[idx];
    const std::string fn = h.table.empty() ? h.name : h.table + "." + h.name;
    auto args = detail::encode_values(L, 1, lua_gettop(L), s->lim.output);
    if (!args) {
      s->scratch = "colony." + fn + ": the arguments must be JSON values (no functions, cycles or NaN), at most " +
        std::to_string(s->lim.output) + " bytes";
      ok = false;
    } else if (h.asynchronous) {
      if (L != s->co) {
        s->scratch = "colony." + fn + ": call it from the hook itself, not from a coroutine of the plugin";
        ok = false;
      } else {
        s->pending = nlohmann::json{{"fn", fn}, {"args", nlohmann::json::parse(*args)}}.dump();
      }
    } else {
      host_reply r;
      try {
        r = h.fn(*args);
      } catch (const std::exception& e) {
        r.error = std::string("colony.") + fn + ": " + e.what();
      }
      ok = !r.error;
      s->scratch = ok ? std::move(r.json) : std::move(*r.error);
      if (ok && !detail::parse_json(s->scratch, s->doc)) {
        s->scratch = "colony." + fn + ": the host answered something that is not JSON";
        ok = false;
      }
    }
  }
  if (!ok)
    return sandbox::impl::raise(L, s->scratch);
  if (!s->pending.empty())
    return lua_yieldk(L, 0, 0, host_reply_k); // resume() pushes the reply: the call's results
  detail::push_json(L, s->doc);
  return 1;
}

int json_encode(lua_State* L) {
  auto* s = sandbox::impl::of(L);
  luaL_checkany(L, 1);
  {
    auto text = detail::encode_values(L, 1, 1, s->lim.output);
    s->scratch = text ? text->substr(1, text->size() - 2) : std::string();
  }
  if (s->scratch.empty())
    return luaL_error(L, "colony.json.encode: not a JSON value (functions, cycles, NaN, mixed keys) or too large");
  lua_pushlstring(L, s->scratch.data(), s->scratch.size());
  return 1;
}

int json_decode(lua_State* L) {
  std::size_t n = 0;
  const char* text = luaL_checklstring(L, 1, &n);
  auto* s = sandbox::impl::of(L);
  s->scratch.assign(text, n);
  if (!detail::parse_json(s->scratch, s->doc)) {
    lua_pushnil(L);
    lua_pushliteral(L, "not JSON (or deeper than 64, or more than 100000 values)");
    return 2;
  }
  detail::push_json(L, s->doc);
  return 1;
}

int now_ms(lua_State* L) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  lua_pushinteger(L, static_cast<lua_Integer>(ms.count()));
  return 1;
}

} // namespace

void sandbox::impl::install_host() {
  lua_newtable(L); // colony
  lua_newtable(L);
  lua_pushcfunction(L, json_encode);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, json_decode);
  lua_setfield(L, -2, "decode");
  lua_setfield(L, -2, "json");
  lua_pushcfunction(L, now_ms);
  lua_setfield(L, -2, "now");
  for (std::size_t i = 0; i < host.size(); ++i) {
    const auto& h = host[i];
    if (!h.table.empty()) {
      if (lua_getfield(L, -1, h.table.c_str()) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, h.table.c_str());
      }
    } else {
      lua_pushvalue(L, -1);
    }
    lua_pushinteger(L, static_cast<lua_Integer>(i));
    lua_pushcclosure(L, host_call, 1);
    lua_setfield(L, -2, h.name.c_str());
    lua_pop(L, 1);
  }
  lua_setglobal(L, "colony");
}

bool sandbox::impl::open(outcome* error) {
  used = 0;
  memory_hit = false;
  L = lua_newstate(alloc, this);
  if (L == nullptr) {
    error->st = outcome::state::failed;
    error->f = fault::memory;
    error->message = "the plugin's state cannot be made within its memory limit";
    return false;
  }
  *static_cast<impl**>(lua_getextraspace(L)) = this;
  tripped = fault::none;
  trip_message.clear();
  spent = 0;
  host_calls = 0;
  deadline = clock::now() + lim.wall;
  // The libraries, the host functions and the chunk, on a fresh coroutine.
  int load_status = LUA_OK;
  const std::string chunk_name = "=" + name;
  auto setup = [this, &load_status, &chunk_name](lua_State* s) {
    lua_sethook(s, count_hook, LUA_MASKCOUNT, period);
    install_library();
    install_host();
    co = lua_newthread(s);
    co_ref = luaL_ref(s, LUA_REGISTRYINDEX);
    lua_sethook(co, count_hook, LUA_MASKCOUNT, period);
    load_status = luaL_loadbufferx(co, source.data(), source.size(), chunk_name.c_str(), "t");
  };
  auto fail = [&](fault f, std::string message) {
    error->st = outcome::state::failed;
    error->f = f;
    error->message = std::move(message);
    close();
    return false;
  };
  if (protect(setup) != LUA_OK)
    return fail(fault::memory, "the plugin's state cannot be made within its memory limit");
  if (load_status != LUA_OK)
    return fail(load_status == LUA_ERRMEM ? fault::memory : fault::syntax,
                lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : "the source does not compile");
  running = loading = true;
  auto out = run(0);
  running = loading = false;
  if (out.st == outcome::state::failed) {
    *error = out;
    if (error->f == fault::error)
      error->f = fault::load;
    close();
    return false;
  }
  if (out.st == outcome::state::pending)
    return fail(fault::load, "the source called an asynchronous host function while loading");
  // While loading, finish() keeps the chunk's first result on the coroutine.
  if (lua_gettop(co) < 1 || lua_type(co, 1) != LUA_TTABLE)
    return fail(
      fault::load,
      "the source must return a table of hook functions, as in: return { http = function(ctx, req) ... end }");
  auto keep = [this](lua_State* s) {
    lua_xmove(co, s, 1);
    hooks_ref = luaL_ref(s, LUA_REGISTRYINDEX);
  };
  hook_names.clear();
  lua_pushnil(co);
  while (lua_next(co, 1) != 0) {
    if (lua_type(co, -2) == LUA_TSTRING && lua_type(co, -1) == LUA_TFUNCTION)
      hook_names.emplace_back(lua_tostring(co, -2));
    lua_pop(co, 1);
  }
  lua_settop(co, 1);
  if (protect(keep) != LUA_OK)
    return fail(fault::memory, "the plugin's state cannot be made within its memory limit");
  lua_settop(co, 0);
  return true;
}

/// Runs (or resumes) the call's coroutine with `nargs` on its stack.
outcome sandbox::impl::run(int nargs) {
  int nres = 0;
  int status = lua_resume(co, L, nargs, &nres);
  return finish(status, nres);
}

outcome sandbox::impl::finish(int status, int nresults) {
  outcome out;
  out.instructions = spent;
  if (status == LUA_YIELD && !pending.empty()) {
    out.st = outcome::state::pending;
    out.request = std::exchange(pending, {});
    lua_pop(co, nresults);
    // Waiting for the host is not the plugin's time: the rest of the
    // budget is kept for when the reply comes.
    time_left = std::max(std::chrono::nanoseconds(0), std::chrono::nanoseconds(deadline - clock::now()));
    return out;
  }
  if (status == LUA_OK && loading) {
    lua_settop(co, nresults > 0 ? 1 : 0); // the chunk's table, for open()
    return out;
  }
  if (status == LUA_OK) {
    auto encoded = detail::encode_values(co, lua_gettop(co) - nresults + 1, nresults, lim.output);
    lua_settop(co, 0);
    if (encoded) {
      out.results = std::move(*encoded);
      return out;
    }
    out.st = outcome::state::failed;
    out.f = fault::output;
    out.message = "the hook's results are larger than " + std::to_string(lim.output) +
      " bytes of JSON, or are not JSON (functions, userdata, cycles, depth over 64)";
    return out;
  }
  out.st = outcome::state::failed;
  if (tripped != fault::none) {
    out.f = tripped;
    out.message = trip_message.empty() ? limit_message(tripped) : trip_message;
  } else if (status == LUA_ERRMEM || memory_hit) {
    out.f = fault::memory;
    out.message = limit_message(fault::memory);
  } else if (status == LUA_YIELD) {
    out.f = fault::error;
    out.message = "the hook yielded outside a host call (coroutine.yield at the top of a hook)";
  } else {
    out.f = fault::error;
    // Never run plugin code to describe its error: a table's __tostring
    // would run outside any budget.
    int t = lua_type(co, -1);
    out.message = t == LUA_TSTRING || t == LUA_TNUMBER
      ? std::string(lua_tostring(co, -1))
      : std::string("(error object is a ") + lua_typename(co, t) + " value)";
    if (out.message.size() > 1024)
      out.message.resize(1024);
  }
  // A limit can stop the plugin anywhere, between any two of its steps: its
  // state may be half-changed. A plain error is the plugin's own to handle.
  out.needs_reset = out.f != fault::error;
  return out;
}

void detail::charge_steps(lua_State* L, std::uint64_t steps) { sandbox::impl::charge(L, steps); }

sandbox::sandbox(std::unique_ptr<impl> p) : p_(std::move(p)) {}
sandbox::~sandbox() = default;

std::unique_ptr<sandbox> sandbox::create(const std::string& chunk_name, const std::string& source, const limits& lim,
                                         std::vector<host_function> host, outcome* error) {
  auto p = std::make_unique<impl>();
  p->name = chunk_name;
  p->source = source;
  p->lim = lim;
  p->host = std::move(host);
  outcome ignored;
  if (!p->open(error != nullptr ? error : &ignored))
    return nullptr;
  return std::unique_ptr<sandbox>(new sandbox(std::move(p)));
}

const std::vector<std::string>& sandbox::hooks() const { return p_->hook_names; }

bool sandbox::has(std::string_view hook) const {
  for (const auto& h : p_->hook_names)
    if (h == hook)
      return true;
  return false;
}

std::size_t sandbox::memory() const { return p_->used; }

bool sandbox::reset(outcome* error) {
  p_->close();
  outcome ignored;
  return p_->open(error != nullptr ? error : &ignored);
}

outcome sandbox::call(std::string_view hook, const std::string& args_json) {
  auto& s = *p_;
  outcome out;
  out.st = outcome::state::failed;
  if (s.L == nullptr) {
    out.f = fault::load;
    out.message = "the plugin's state is gone; reset it";
    return out;
  }
  if (!has(hook)) {
    out.f = fault::no_such_hook;
    out.message = "the plugin has no hook '" + std::string(hook) + "'";
    return out;
  }
  s.tripped = fault::none;
  s.trip_message.clear();
  s.memory_hit = false;
  s.spent = 0;
  s.host_calls = 0;
  s.pending.clear();
  // A fresh coroutine per call (a call that failed left its own behind),
  // with the hook and its arguments, built under protection.
  if (!detail::parse_json(args_json, s.doc) || !s.doc.is_array()) {
    out.f = fault::output;
    out.message = "the hook's arguments are not a JSON array";
    return out;
  }
  int nargs = static_cast<int>(s.doc.size());
  const std::string name(hook);
  auto prepare = [&s, &name](lua_State* m) {
    lua_State* co = lua_newthread(m);
    luaL_unref(m, LUA_REGISTRYINDEX, s.co_ref);
    s.co_ref = luaL_ref(m, LUA_REGISTRYINDEX);
    s.co = co;
    lua_sethook(co, impl::count_hook, LUA_MASKCOUNT, period);
    lua_rawgeti(co, LUA_REGISTRYINDEX, s.hooks_ref);
    lua_pushlstring(co, name.data(), name.size());
    lua_rawget(co, -2);
    lua_remove(co, 1);
    for (auto it = s.doc.cbegin(); it != s.doc.cend(); ++it)
      detail::push_json(co, *it);
  };
  if (s.protect(prepare) != LUA_OK) {
    out.f = s.memory_hit ? fault::memory : fault::output;
    out.message = s.memory_hit ? s.limit_message(fault::memory) : "the hook's arguments cannot be made into Lua values";
    out.needs_reset = s.memory_hit;
    return out;
  }
  s.deadline = clock::now() + s.lim.wall;
  s.running = true;
  out = s.run(nargs);
  s.running = out.st == outcome::state::pending;
  return out;
}

outcome sandbox::resume(const host_reply& reply) {
  auto& s = *p_;
  outcome out;
  out.st = outcome::state::failed;
  if (!s.running || s.co == nullptr) {
    out.f = fault::host_calls;
    out.message = "no host call is pending";
    return out;
  }
  int n = 1;
  s.reply_is_error = reply.error.has_value();
  bool parsed = !reply.error && detail::parse_json(reply.json, s.doc);
  auto answer = [&s, &reply, parsed](lua_State*) {
    if (reply.error) {
      lua_pushlstring(s.co, reply.error->data(), reply.error->size());
    } else if (parsed) {
      detail::push_json(s.co, s.doc);
    } else {
      lua_pushnil(s.co);
    }
  };
  if (s.protect(answer) != LUA_OK) {
    s.running = false;
    out.f = fault::memory;
    out.message = s.limit_message(fault::memory);
    out.needs_reset = true;
    return out;
  }
  s.deadline = clock::now() + std::chrono::duration_cast<clock::duration>(s.time_left);
  out = s.run(n);
  s.running = out.st == outcome::state::pending;
  return out;
}

} // namespace colony::adapters::lua
