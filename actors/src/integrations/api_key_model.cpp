#include "colony/actors/integrations/api_key_model.hpp"

#include <algorithm>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include "colony/actors/access/access_model.hpp"
#include "colony/protocol/time.hpp"

namespace colony::actors {

outcome<api_key_spec> api_key_spec_from_json(std::string_view body, std::int64_t now) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(errc::malformed, "the body must be a JSON object");
  std::string name;
  std::vector<std::string> roles;
  std::int64_t expires_us = 0;
  std::vector<protocol::field_error> errors;
  for (auto& [key, value] : doc.items()) {
    if (key == "name") {
      if (value.is_string() && value.get<std::string>().size() <= 100)
        name = value.get<std::string>();
      else
        errors.push_back({"name", "must be a string of at most 100 characters"});
    } else if (key == "roles") {
      bool ok = value.is_array() && !value.empty() && value.size() <= 4;
      for (const auto& r : ok ? value : nlohmann::json::array()) {
        if (!r.is_string() || !access::is_tenant_role(r.get<std::string>()) ||
            std::find(roles.begin(), roles.end(), r.get<std::string>()) != roles.end()) {
          ok = false;
          break;
        }
        roles.push_back(r.get<std::string>());
      }
      if (!ok)
        errors.push_back({"roles", "must be a non-empty list of distinct roles: owner, admin, member, viewer"});
    } else if (key == "expiresAt") {
      google::protobuf::Timestamp ts;
      if (!value.is_string() || !google::protobuf::util::TimeUtil::FromString(value.get<std::string>(), &ts))
        errors.push_back({"expiresAt", "must be an RFC 3339 time such as 2027-01-01T00:00:00Z"});
      else if ((expires_us = protocol::timestamp_us(ts)) <= now)
        errors.push_back({"expiresAt", "must be in the future"});
    } else {
      errors.push_back({key, "unknown field"});
    }
  }
  if (roles.empty() && errors.empty())
    errors.push_back({"roles", "is required"});
  if (!errors.empty()) {
    failure f = fail(errc::invalid, errors.front().field + ": " + errors.front().message);
    f.errors = std::move(errors);
    return f;
  }
  return api_key_spec{std::move(name), std::move(roles), expires_us};
}

} // namespace colony::actors
