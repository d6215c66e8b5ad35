// The tenant's write-path hooks: before_user_create and before_user_update
// run in its plugins' actors, in enablement order, before the write goes to
// the user (docs/plugins.md). Used by the tenant actor only.
#pragma once

#include <caf/fwd.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/entities.hpp"
#include "colony/v1/tenant.pb.h"

namespace colony::actors::detail {

struct user_hooks {
  std::shared_ptr<const v1::Tenant> tenant;
  std::string hook;                   // before_user_create | before_user_update
  std::string user;                   // the user as the write would make it (JSON object)
  std::vector<std::string> more_args; // after the user (before_user_update: the patch)
  request_meta meta;
  /// Why a hook's returned user cannot be taken (a member a plugin may not
  /// set, a body that does not parse); nullopt: it can.
  std::function<std::optional<std::string>(const std::string& user)> check;
  /// The user after the last hook, or the failure to answer (plugin-rejected, plugin-failed).
  std::function<void(outcome<std::string>)> done;
};

/// Runs the hooks one after another (each a request to the plugin's
/// activation, so the tenant keeps serving its mailbox) and calls `done` once.
void run_user_hooks(caf::event_based_actor* self, const entity_env& env, std::shared_ptr<user_hooks> h);

} // namespace colony::actors::detail
