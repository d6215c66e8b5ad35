// string.find, match, gmatch and gsub for the sandbox, metered: Lua's
// pattern language with Lua 5.4's semantics, in a matcher that charges its
// steps to the call's instruction budget and checks the wall-clock deadline
// as it goes. The standard library's C matcher runs outside every limit
// (no count hook fires inside a C function): one call with a pattern such
// as ".-.-.-x" on a long subject takes minutes. Used by sandbox.cpp only.
#pragma once

#include <cstdint>

struct lua_State;

namespace colony::adapters::lua::detail {

/// Charges `steps` to the running call (defined by the sandbox): raises the
/// limit's error in `L` (a longjmp) when its instructions or its time are spent.
void charge_steps(lua_State* L, std::uint64_t steps);

/// Sets string.find, string.match, string.gmatch and string.gsub (the
/// string table on the top of the stack) to the metered matcher's.
void install_patterns(lua_State* L);

} // namespace colony::adapters::lua::detail
