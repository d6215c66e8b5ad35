// The entity protocol's wire form: an entity key, a command and a reply as
// the colony.v1 EntityCommand / EntityReply protobuf messages
// (protocol/proto/colony/v1/entity.proto), one conversion each way.
//
// In-process, commands and replies stay the zero-copy C++ values of
// messages.hpp (a parsed payload and a shared entity snapshot, never
// serialized); only what crosses a node boundary, through a node's gateway
// (runtime/gateway.hpp, adapters/cluster), is converted. Fault injection does not travel.
#pragma once

#include <optional>
#include <string>

#include "colony/actors/messages.hpp"
#include "colony/v1/entity.pb.h"

namespace colony::actors {

[[nodiscard]] v1::EntityCommand to_wire(const entity_key& key, const command& cmd);
[[nodiscard]] v1::EntityReply to_wire(const entity_reply& reply);
[[nodiscard]] v1::Failure to_wire(const failure& f);

struct addressed_command {
  entity_key key;
  command cmd;
};
/// The command of `w`; nullopt with `error` set for an unknown op or
/// payload type, or a payload that does not parse.
[[nodiscard]] std::optional<addressed_command> from_wire(const v1::EntityCommand& w, std::string& error);
/// The reply of `w`. An entity whose type this node does not know, or whose
/// bytes do not parse, becomes an internal failure.
[[nodiscard]] entity_reply from_wire(const v1::EntityReply& w);
[[nodiscard]] failure from_wire(const v1::Failure& w);

} // namespace colony::actors
