// The plugins module: the Lua sandbox engine (colony::lua) that the plugin
// entities run their hooks in, with the limits of one call from the
// plugins.* options (docs/plugins.md). It provides an actors::plugin_engine
// in the node context; the entities module hands it to every entity.
#pragma once

#include <memory>

#include "colony/actors/plugin/plugin_engine.hpp"
#include "colony/adapters/lua_sandbox.hpp"
#include "colony/runtime/config.hpp"
#include "colony/runtime/module.hpp"

namespace colony::adapters {

/// The engine with these limits: colony.log, colony.now and colony.json in every sandbox.
[[nodiscard]] std::shared_ptr<const actors::plugin_engine> make_lua_engine(const lua::limits& lim);

/// The limits of one hook call from the plugins.* options.
[[nodiscard]] lua::limits plugin_limits(const runtime::node_config& cfg);

[[nodiscard]] std::unique_ptr<runtime::module> plugins_module();

} // namespace colony::adapters
