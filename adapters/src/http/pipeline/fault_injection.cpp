#include "fault_injection.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace colony::adapters::http {

void inject_faults(const api_request& req, responder& done) {
  if (req.fault.starts_with("block=")) {
    // Holds the io thread that read the request, as a parser that never
    // returns would (the shutdown watchdog's test).
    std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(std::atoi(req.fault.c_str() + 6), 0, 600'000)));
  }
  if (req.fault.starts_with("delay=")) {
    // The answer leaves N ms late, to hold requests in flight.
    int ms = std::atoi(req.fault.c_str() + 6);
    auto inner = std::move(done);
    done = [inner, ms](api_response r) {
      std::thread{[inner, ms, r = std::move(r)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(ms, 0, 10'000)));
        inner(std::move(r));
      }}.detach();
    };
  }
}

} // namespace colony::adapters::http
