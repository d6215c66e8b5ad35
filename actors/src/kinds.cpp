#include "colony/actors/kinds.hpp"

#include <stdexcept>

#include "colony/actors/entities.hpp"

namespace colony::actors {

kind_spec tenant_kind(); // tenant/tenant_kind.cpp
kind_spec user_kind();   // user/user_kind.cpp
kind_spec plugin_kind(); // plugin/plugin_kind.cpp

void kind_registry::add(kind_spec spec) {
  auto id = static_cast<std::size_t>(spec.kind);
  if (id == 0 || id >= max_kinds || find(spec.kind) != nullptr)
    throw std::invalid_argument("entity kind id " + std::to_string(id) + " is out of range or taken");
  for (const auto& k : kinds_)
    for (const auto& t : k.timers)
      for (const auto& u : spec.timers)
        if (t.name == u.name)
          throw std::invalid_argument("timer '" + u.name + "' is answered by kind " + k.name + " already");
  kinds_.push_back(std::move(spec));
}

const kind_spec* kind_registry::find(entity_kind k) const {
  for (const auto& s : kinds_)
    if (s.kind == k)
      return &s;
  return nullptr;
}

std::optional<std::pair<entity_key, command>> kind_registry::timer_command(const timer_row& t) const {
  for (const auto& k : kinds_)
    for (const auto& timer : k.timers)
      if (timer.name == t.kind) {
        auto cmd = timer.fire(t);
        if (cmd.meta.request_id.empty())
          cmd.meta.request_id = "timer-" + t.id;
        return std::make_pair(entity_key{k.kind, t.tenant_id, t.target_id}, std::move(cmd));
      }
  return std::nullopt;
}

const kind_registry& builtin_kinds() {
  static const kind_registry kinds = [] {
    kind_registry r;
    r.add(tenant_kind());
    r.add(user_kind());
    r.add(plugin_kind());
    return r;
  }();
  return kinds;
}

} // namespace colony::actors
