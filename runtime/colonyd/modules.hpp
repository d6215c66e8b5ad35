// colonyd's modules, in start order (they stop in reverse): the one list
// that names the adapters. The unit tests read the same option registry
// through it.
#pragma once

#include "colony/runtime/module.hpp"

namespace colony::colonyd {

[[nodiscard]] runtime::module_list modules();

} // namespace colony::colonyd
