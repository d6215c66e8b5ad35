// `colonyctl top`: a full-screen live view in the terminal (ncurses), like
// observer_cli: nodes, actors by kind with rates, the top tenants, the last
// crashes; refreshed every interval from the same endpoints as the one-shot
// commands. Keys: q quits, p pauses, r refreshes now.
#pragma once

#include <chrono>

#include "client.hpp"

namespace colony::ctl {

/// Runs until q; returns the exit code (1 if the terminal cannot be used).
int run_top(const client& cl, std::chrono::milliseconds interval);

} // namespace colony::ctl
