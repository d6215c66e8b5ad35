// Fault injection for the tests (debug.fault-injection, off by default):
// the X-Colony-Fault header. block=N and delay=N act here; crash and stall=N
// travel with the entity command (bridge.cpp: call_entity).
#pragma once

#include "../api.hpp"

namespace colony::adapters::http {

/// debug.fault-injection (tests only): X-Colony-Fault block=N holds the io
/// thread N ms, delay=N lets the answer leave N ms late.
void inject_faults(const api_request& req, responder& done);

} // namespace colony::adapters::http
