// Commands that arrive from another node: bytes of colony.v1.EntityCommand,
// run through this node's directory, answered with the bytes of the
// colony.v1.EntityReply a local caller would get (actors/wire.hpp). The
// cluster's gateway (adapters/cluster) wraps this in its envelope, with its
// shard, epoch and deadline checks.
//
// Only builtin CAF types (atoms, integers, std::string) cross the
// middleman: CAF 0.17 writes type names as strings and drops a message
// whose type the other side lacks, and a CAF-serialized struct has no
// schema evolution (docs/architecture.md, "Messages that cross nodes").
// Entity handles never leave their node.
#pragma once

#include <caf/fwd.hpp>
#include <functional>
#include <string>

#include "colony/actors/entities.hpp"

namespace colony::runtime {

/// Decodes `bytes` and sends the command to its entity from `self`; `done`
/// gets the reply's bytes, at once (a malformed command, a key `refuse`
/// names a reason for, a node shutting down) or when the entity answers.
/// No CAF time-out: the entity always answers or ends (then CAF answers
/// with an error), and the sender keeps the deadline.
void serve_wire_command(caf::event_based_actor* self, actors::entity_router& router, const std::string& bytes,
                        const std::function<std::string(const actors::entity_key&)>& refuse,
                        std::function<void(std::string)> done);

/// The wire bytes of a command and the reply they come back as (for callers
/// on the other side of a gateway).
[[nodiscard]] std::string encode_command(const actors::entity_key& key, const actors::command& cmd);
[[nodiscard]] std::string encode_reply(const actors::entity_reply& r);
[[nodiscard]] actors::entity_reply decode_reply(const std::string& bytes);

} // namespace colony::runtime
