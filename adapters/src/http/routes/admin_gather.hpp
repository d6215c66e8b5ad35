// What the GET /v1/admin/* routes share (routes/admin.cpp, the cluster-wide
// lists; routes/admin_pages.cpp, the tenant and actor pages): gathering an
// answer from every member, and the names of kinds.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/messages.hpp"

namespace colony::adapters::http {

struct api_core;
struct call;

namespace admin {

using njson = nlohmann::json;

inline constexpr auto gather_timeout = std::chrono::milliseconds(2000);

[[nodiscard]] std::optional<actors::entity_kind> kind_named(std::string_view name);
/// j[key] if it is an object, else an empty one (never a temporary: safe to iterate).
[[nodiscard]] const njson& object_at(const njson& j, const char* key);
[[nodiscard]] std::string dump(const njson& j);

struct gathered {
  std::vector<njson> answers;        // this node's first
  njson unanswered = njson::array(); // [{nodeName, reason}]
};
/// This node's `local` answer plus every other live member's answer to
/// `topic`, then `merge` (on any thread).
void gather(api_core& a, std::string topic, std::string payload, njson local, std::function<void(gathered)> merge);
/// answeredBy, partial, unanswered.
[[nodiscard]] njson envelope(const api_core& a, const gathered& g);

// -- the pages (admin_pages.cpp) --------------------------------------------------
/// This node's view of tenant `tenant_id`: its live actors here, the calls
/// of its credentials answered here, and (at its owner) its rate bucket.
[[nodiscard]] njson tenant_here(api_core& a, const std::string& tenant_id);
/// The actor a /v1/admin/actors/{kind}/{actorId}[?tenantId=] route names;
/// nullopt when it has answered 400.
[[nodiscard]] std::optional<actors::entity_key> actor_key_of(api_core& a, const std::shared_ptr<call>& c);
/// The key as the members ask each other about it: "kind\ttenant\tid".
[[nodiscard]] std::string key_payload(const actors::entity_key& key);
[[nodiscard]] std::optional<actors::entity_key> key_of_payload(const std::string& payload);
/// Asks the tenant's owner (another member) `topic`; `then` gets its JSON
/// object, or the call is answered 503 owner-unavailable (Retry-After: 1).
void ask_owner_json(api_core& a, const std::shared_ptr<call>& c, const std::string& tenant_id, std::string topic,
                    std::string payload, std::function<void(njson)> then);
/// "kind\ttenant\tid" → this node's view of that activation.
[[nodiscard]] njson probe_here(const api_core& a, const std::string& payload);
void tenant_page(api_core& a, std::shared_ptr<call> c);
void actor_page(api_core& a, std::shared_ptr<call> c);

} // namespace admin
} // namespace colony::adapters::http
