// The plugin registry: published versions, immutable once written.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_common.hpp"

namespace colony::actors {

/// One published version. `state` is its colony.v1.PluginVersion (with the
/// source); name and version are its key.
struct plugin_row {
  std::string name;
  std::string version;
  std::string state;
  std::int64_t published_us = 0;
};

struct plugin_op {
  enum class kind : std::uint8_t {
    publish,  // row + audit, one transaction; duplicate if (name, version) exists
    list,     // after (a name), limit: every version of the first `limit` names after `after`
    versions, // name: its versions, oldest first
    get,      // name, version
  } what = kind::list;
  plugin_row row;
  std::string name;
  std::string version;
  std::string after;
  int limit = 50;
  std::vector<audit_record> audit;
};

struct plugin_result {
  store_status status = store_status::ok;
  std::vector<plugin_row> rows;
  std::string detail;
};

using plugin_store = caf::typed_actor<caf::replies_to<plugin_atom, plugin_op>::with<plugin_result>>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::plugin_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::plugin_result)
