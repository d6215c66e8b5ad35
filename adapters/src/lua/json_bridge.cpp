#include "json_bridge.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"

namespace colony::adapters::lua::detail {

using njson = nlohmann::json;

namespace {

constexpr int max_depth = 64;

struct encoder {
  lua_State* L;
  std::size_t budget; // bytes left, roughly (strings and keys counted exactly)

  bool charge(std::size_t n) {
    if (n > budget)
      return false;
    budget -= n;
    return true;
  }

  std::optional<njson> value(int idx, int depth) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
      case LUA_TNIL: return charge(4) ? std::optional<njson>(nullptr) : std::nullopt;
      case LUA_TBOOLEAN: return charge(5) ? std::optional<njson>(lua_toboolean(L, idx) != 0) : std::nullopt;
      case LUA_TNUMBER: {
        if (!charge(24))
          return std::nullopt;
        if (lua_isinteger(L, idx))
          return njson(static_cast<std::int64_t>(lua_tointeger(L, idx)));
        auto d = static_cast<double>(lua_tonumber(L, idx));
        return std::isfinite(d) ? std::optional<njson>(d) : std::nullopt;
      }
      case LUA_TSTRING: {
        std::size_t n = 0;
        const char* s = lua_tolstring(L, idx, &n);
        return charge(n + 2) ? std::optional<njson>(std::string(s, n)) : std::nullopt;
      }
      case LUA_TTABLE: return table(idx, depth);
      default: return std::nullopt; // functions, userdata, threads
    }
  }

  std::optional<njson> table(int idx, int depth) {
    if (depth >= max_depth || !lua_checkstack(L, 4) || !charge(2))
      return std::nullopt;
    auto len = static_cast<lua_Integer>(lua_rawlen(L, idx));
    // An array when the keys are exactly 1..len, an object when all are strings.
    lua_Integer count = 0;
    bool strings = true;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      ++count;
      if (lua_type(L, -2) != LUA_TSTRING)
        strings = false;
      lua_pop(L, 1);
    }
    if (count == 0)
      return njson::object();
    if (count == len && !strings) {
      njson arr = njson::array();
      for (lua_Integer i = 1; i <= len; ++i) {
        lua_rawgeti(L, idx, i);
        auto v = value(-1, depth + 1);
        lua_pop(L, 1);
        if (!v || !charge(1))
          return std::nullopt;
        arr.push_back(std::move(*v));
      }
      return arr;
    }
    if (!strings)
      return std::nullopt; // mixed keys have no JSON form
    njson obj = njson::object();
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      std::size_t n = 0;
      const char* k = lua_tolstring(L, -2, &n); // a string key: no conversion, lua_next stays valid
      auto v = charge(n + 4) ? value(-1, depth + 1) : std::nullopt;
      lua_pop(L, 1);
      if (!v) {
        lua_pop(L, 1);
        return std::nullopt;
      }
      obj[std::string(k, n)] = std::move(*v);
    }
    return obj;
  }
};

void push(lua_State* L, const njson& v, int depth) {
  if (depth > max_depth || !lua_checkstack(L, 3))
    luaL_error(L, "a JSON value nested too deep for the sandbox");
  switch (v.type()) {
    case njson::value_t::null: lua_pushnil(L); return;
    case njson::value_t::boolean: lua_pushboolean(L, v.get<bool>() ? 1 : 0); return;
    case njson::value_t::number_integer: lua_pushinteger(L, static_cast<lua_Integer>(v.get<std::int64_t>())); return;
    case njson::value_t::number_unsigned: { // what JSON's non-negative integers parse as: Lua integers when they fit
      auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<lua_Integer>::max()))
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      else
        lua_pushnumber(L, static_cast<lua_Number>(u));
      return;
    }
    case njson::value_t::number_float: lua_pushnumber(L, static_cast<lua_Number>(v.get<double>())); return;
    case njson::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case njson::value_t::array: {
      lua_createtable(L, static_cast<int>(std::min<std::size_t>(v.size(), 1u << 20)), 0);
      lua_Integer i = 0;
      for (auto it = v.cbegin(); it != v.cend(); ++it) {
        push(L, *it, depth + 1);
        lua_rawseti(L, -2, ++i);
      }
      return;
    }
    case njson::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(std::min<std::size_t>(v.size(), 1u << 20)));
      for (auto it = v.cbegin(); it != v.cend(); ++it) {
        const std::string& k = it.key();
        lua_pushlstring(L, k.data(), k.size());
        push(L, it.value(), depth + 1);
        lua_rawset(L, -3);
      }
      return;
    }
    default: lua_pushnil(L); return;
  }
}

} // namespace

std::optional<std::string> encode_values(lua_State* L, int first, int n, std::size_t max_bytes) {
  encoder e{L, max_bytes};
  njson arr = njson::array();
  for (int i = 0; i < n; ++i) {
    auto v = e.value(first + i, 1);
    if (!v)
      return std::nullopt;
    arr.push_back(std::move(*v));
  }
  auto text = arr.dump(-1, ' ', false, njson::error_handler_t::replace);
  if (text.size() > max_bytes)
    return std::nullopt;
  return text;
}

bool parse_json(const std::string& text, njson& out) {
  if (protocol::check_json(text, false))
    return false;
  out = njson::parse(text, nullptr, false);
  return !out.is_discarded();
}

void push_json(lua_State* L, const njson& v) { push(L, v, 1); }

} // namespace colony::adapters::lua::detail
