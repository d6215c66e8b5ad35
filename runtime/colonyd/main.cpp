// colonyd: one Colony node. The modules (modules.cpp) do the work; the node's
// life (configuration, start, SIGTERM/SIGINT, one shutdown sequence) is
// runtime::run_node (colony/runtime/module.hpp). `colonyd plugin-test`
// runs a plugin's fixtures in the same sandbox instead (plugin_test.cpp).
#ifdef COLONY_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#include <string>
#include <string_view>

#include "modules.hpp"
#include "plugin_test.hpp"

#ifndef COLONY_VERSION
#define COLONY_VERSION "0.0.0"
#endif

namespace {

/// The malloc this binary runs on (jemalloc unless built with sanitizers).
std::string allocator() {
#ifdef COLONY_JEMALLOC
  const char* version = nullptr;
  std::size_t len = sizeof(version);
  if (mallctl("version", static_cast<void*>(&version), &len, nullptr, 0) == 0 && version != nullptr)
    return std::string{"jemalloc "} + version;
  return "jemalloc";
#else
  return "libc malloc";
#endif
}

} // namespace

int main(int argc, char** argv, char** envp) {
  if (argc > 1 && std::string_view{argv[1]} == "plugin-test")
    return colony::colonyd::plugin_test(argc - 1, argv + 1, envp);
  return colony::runtime::run_node(argc, argv, envp, colony::colonyd::modules(), {COLONY_VERSION, allocator()});
}
