// The plugin kit's test runner (`colonyctl plugin test`, `colonyd
// plugin-test`; docs/plugins.md, "Testing a plugin"): a plugin's hooks run
// against fixture JSON in the node's own sandbox, with its limits. The
// manifest is checked as POST /v1/plugins checks it, a fixture's config as
// enabling checks it, host calls are answered by the node's host API code
// (plugin_host.hpp) over the fixture's kv, users and http answers, and a
// hook's answer is read as the node reads it (user_hook_verdict,
// http_answer). Nothing reaches the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/plugin/plugin_engine.hpp"
#include "colony/protocol/problem.hpp"
#include "colony/v1/plugin.pb.h"

namespace colony::actors {

/// What publishing checks, for POST /v1/plugins and the kit alike: the
/// manifest (validate_publication), its config schema, that the source
/// compiles and runs in the sandbox (a syntax error names the line), and
/// that every hook it declares is a function of the source's table.
[[nodiscard]] std::optional<protocol::failure> check_publication(const plugin_engine& engine,
                                                                 const v1::PublishPluginRequest& req);

struct kit_limits {
  std::int64_t kv_quota = 1 << 20;              // plugins.kv-quota
  std::chrono::milliseconds http_timeout{5000}; // plugins.http-timeout
};

/// A plugin directory's contents: plugin.json (the POST /v1/plugins body
/// without `source`) and plugin.lua.
struct kit_plugin {
  std::string manifest_json;
  std::string source;
};

/// Why the plugin cannot be published (the manifest, its config schema, or
/// the source: a syntax error names the line); nullopt when it can.
[[nodiscard]] std::optional<std::string> kit_check(const plugin_engine& engine, const kit_plugin& p);

/// The request body of POST /v1/plugins for `p` (the manifest with its source).
[[nodiscard]] std::string kit_publication(const kit_plugin& p);

struct kit_case {
  std::string name;
  bool passed = false;
  std::vector<std::string> failures; // what differs from the expectation, one sentence each
  std::string outcome;               // what the hook came to, for the report ("ok", "rejected: ...", a fault)
};

/// Runs the cases of one fixture file (`fixture_json`: one case, or an
/// array of them), each in a fresh sandbox of the plugin. A fixture that
/// cannot be read is one failed case saying why.
[[nodiscard]] std::vector<kit_case> kit_run(const plugin_engine& engine, const kit_plugin& p,
                                            const std::string& fixture_json, const kit_limits& lim);

} // namespace colony::actors
