// `colonyd plugin-test DIR... [options]`: a plugin directory's fixtures run
// in the node's own sandbox, with the limits the same options give a node
// (docs/plugins.md, "Testing a plugin"; `colonyctl plugin test` runs it).
#pragma once

namespace colony::colonyd {

/// argv[0] is "plugin-test". Exit 0: every case passed; 1: a case failed
/// or the plugin would not publish; 2: usage.
int plugin_test(int argc, char** argv, char** envp);

} // namespace colony::colonyd
