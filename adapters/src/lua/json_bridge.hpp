// JSON text <-> Lua values for the sandbox: raw table access only (no
// metamethod of plugin code ever runs while values are converted), depth at
// most 64, sizes bounded.
#pragma once

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace colony::adapters::lua::detail {

/// The `n` values from stack index `first` as a JSON array, or nullopt if
/// one is not JSON (a function, userdata, NaN, a cycle or depth over 64) or
/// the text would be longer than `max_bytes`.
std::optional<std::string> encode_values(lua_State* L, int first, int n, std::size_t max_bytes);
/// `text` through the JSON gate (depth 64, 100,000 values) into `out`; no
/// Lua call: the document lives outside any frame a Lua error unwinds.
bool parse_json(const std::string& text, nlohmann::json& out);
/// Pushes `v` (may raise a Lua memory error: call it where that is caught,
/// and hold `v` outside the frames it would unwind).
void push_json(lua_State* L, const nlohmann::json& v);

} // namespace colony::adapters::lua::detail
