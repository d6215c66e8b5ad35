// The Prometheus implementation of runtime::metrics (prometheus-cpp, text
// exposition). Served by the HTTP adapter at /metrics: no second port.
#pragma once

#include <memory>

#include "colony/runtime/metrics.hpp"

namespace colony::adapters {

[[nodiscard]] std::shared_ptr<runtime::metrics> make_prometheus_metrics();

} // namespace colony::adapters
