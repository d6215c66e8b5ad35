// The Prometheus implementation of runtime::metrics (prometheus-cpp, text
// exposition). Served by the HTTP adapter at /metrics: no second port.
#pragma once

#include <memory>

#include "colony/runtime/metrics.hpp"
#include "colony/runtime/module.hpp"

namespace colony::adapters {

[[nodiscard]] std::shared_ptr<runtime::metrics> make_prometheus_metrics();

/// The metrics module: the node's Prometheus registry (served at /metrics).
[[nodiscard]] std::unique_ptr<runtime::module> metrics_module();

} // namespace colony::adapters
