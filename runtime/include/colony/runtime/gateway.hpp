// A node's entity gateway: the one actor another node talks to. It takes
// (gateway_atom, bytes of colony.v1.EntityCommand), routes the command to its
// entity through this node's directory and answers with the bytes of the
// colony.v1.EntityReply; the reply is the one a local caller gets, in wire
// form (actors/wire.hpp).
//
// Only builtin CAF types (an atom and a std::string) cross the middleman:
// CAF 0.17 writes type names as strings and drops a message whose type the
// other side lacks, and a CAF-serialized struct has no schema evolution
// (docs/architecture.md, "Messages that cross nodes"). Entity handles never
// leave their node.
#pragma once

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "colony/actors/entities.hpp"

namespace colony::runtime {

using gateway_atom = caf::atom_constant<caf::atom("gateway")>;

/// `timeout`: how long an entity may take before the answer is "unavailable".
[[nodiscard]] caf::actor spawn_gateway(caf::actor_system& sys, std::shared_ptr<actors::entity_router> router,
                                       std::chrono::milliseconds timeout);

/// The wire bytes of a command and the reply they come back as (for callers
/// on the other side of a gateway).
[[nodiscard]] std::string encode_command(const actors::entity_key& key, const actors::command& cmd);
[[nodiscard]] actors::entity_reply decode_reply(const std::string& bytes);

} // namespace colony::runtime
