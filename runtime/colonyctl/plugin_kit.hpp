// colonyctl plugin new|test|publish: the plugin kit (docs/plugins.md,
// "Writing, testing and publishing a plugin").
#pragma once

#include <string>
#include <vector>

#include "client.hpp"

namespace colony::ctl {

/// Makes `parent`/`name`/ with plugin.json, plugin.lua and tests/ that pass
/// `plugin test` as they are. Exit code (0, or 2: a bad name, or it exists).
int plugin_new(const std::string& name, const std::string& parent);

/// Runs `colonyd plugin-test` on the directories (the node's own sandbox and
/// limits): `colonyd` is its path (empty: $COLONYD, then next to this
/// program, then $PATH); `settings` are node options as key=value. Its exit code.
int plugin_test(const std::vector<std::string>& dirs, const std::string& colonyd,
                const std::vector<std::string>& settings, const std::string& config);

/// POST /v1/plugins with the directory's manifest and source. Exit code.
int plugin_publish(const client& cl, const std::string& dir, bool json);

} // namespace colony::ctl
