#include "colony/actors/integrations/webhook_model.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace colony::actors {

bool valid_event_pattern(std::string_view p) {
  return !p.empty() && p.size() <= 100 &&
    p.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.*") == std::string_view::npos;
}

outcome<webhook_spec> webhook_spec_from_json(std::string_view body,
                                             const std::function<bool(const std::string&)>& url_ok) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(errc::malformed, "the body must be a JSON object");
  webhook_spec e;
  std::vector<protocol::field_error> errors;
  for (auto& [key, value] : doc.items()) {
    if (key == "url" && value.is_string())
      e.url = value.get<std::string>();
    else if (key == "description" && value.is_string() && value.get<std::string>().size() <= 500)
      e.description = value.get<std::string>();
    else if (key == "eventTypes" && value.is_array() && value.size() <= max_event_types) {
      for (const auto& t : value) {
        if (!t.is_string() || !valid_event_pattern(t.get<std::string>())) {
          errors.push_back({"eventTypes", "each must be an event type such as user.created, tenant.* or *"});
          break;
        }
        e.event_types.push_back(t.get<std::string>());
      }
    } else if (key == "url" || key == "description" || key == "eventTypes")
      errors.push_back({key,
                        key == "eventTypes" ? "must be an array of at most 50 event types"
                                            : "must be a string" +
                            std::string{key == "description" ? " of at most 500 characters" : ""}});
    else
      errors.push_back({key, "unknown field"});
  }
  if (e.url.empty() && errors.empty())
    errors.push_back({"url", "is required"});
  else if (!e.url.empty() && !url_ok(e.url))
    errors.push_back({"url", "must be an http:// or https:// URL with a host"});
  if (!errors.empty()) {
    failure f = fail(errc::invalid, errors.front().field + ": " + errors.front().message);
    f.errors = std::move(errors);
    return f;
  }
  return e;
}

bool webhook_matches(const std::vector<std::string>& patterns, std::string_view type) {
  if (patterns.empty())
    return true;
  for (const auto& t : patterns) {
    if (t == "*" || t == type)
      return true;
    if (t.ends_with(".*") && type.starts_with(std::string_view{t}.substr(0, t.size() - 1)))
      return true;
  }
  return false;
}

delivery_next after_attempt(bool ok, int attempts, int max_attempts, std::chrono::milliseconds base, double jitter,
                            std::int64_t now_us) {
  if (ok)
    return {delivery_next::state::delivered, 0};
  if (attempts >= max_attempts)
    return {delivery_next::state::dead, 0};
  auto wait = static_cast<double>(base.count()) * 1000.0 * std::pow(2.0, attempts - 1);
  wait = std::min(wait, 3600e6);
  return {delivery_next::state::retry, now_us + static_cast<std::int64_t>(wait * (0.5 + 0.5 * jitter))};
}

} // namespace colony::actors
