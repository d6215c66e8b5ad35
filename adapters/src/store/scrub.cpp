// Event payload helpers shared by both stores (erasure: actors/user/personal_data.hpp).
#include "backend.hpp"
#include "colony/protocol/json.hpp"
#include "colony/v1/event.pb.h"

namespace colony::adapters::store {

std::string event_json(const std::string& payload) {
  v1::Event ev;
  return ev.ParseFromString(payload) ? protocol::to_json(ev) : std::string{"{}"};
}

} // namespace colony::adapters::store
