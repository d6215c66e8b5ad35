#include "colony/adapters/billing.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <vector>

#include "colony/adapters/secrets.hpp"
#include "colony/protocol/json.hpp"

namespace colony::adapters::billing {

std::string stripe_v1(std::string_view secret, std::int64_t t, std::string_view body) {
  return timestamped_signature(secret, t, body);
}

std::optional<std::string> verify_stripe_signature(std::string_view header, std::string_view body,
                                                   std::string_view secret, std::int64_t now_s,
                                                   std::int64_t tolerance_s) {
  if (header.empty())
    return "no Stripe-Signature header";
  std::optional<std::int64_t> t;
  std::vector<std::string_view> v1s;
  std::size_t i = 0;
  while (i <= header.size()) {
    auto j = header.find(',', i);
    if (j == std::string_view::npos)
      j = header.size();
    auto part = header.substr(i, j - i);
    while (!part.empty() && part.front() == ' ')
      part.remove_prefix(1);
    auto eq = part.find('=');
    if (eq != std::string_view::npos) {
      auto key = part.substr(0, eq);
      auto value = part.substr(eq + 1);
      if (key == "t") {
        std::int64_t n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc{} || p != value.data() + value.size())
          return "the timestamp t is not a number";
        t = n;
      } else if (key == "v1") {
        v1s.push_back(value);
      }
    }
    i = j + 1;
  }
  if (!t)
    return "no timestamp t in Stripe-Signature";
  if (v1s.empty())
    return "no v1 signature in Stripe-Signature";
  if (*t < now_s - tolerance_s || *t > now_s + tolerance_s)
    return "the signature timestamp is outside the tolerance of " + std::to_string(tolerance_s) + " s";
  auto expected = stripe_v1(secret, *t, body);
  bool match = false;
  for (auto v : v1s) // every candidate is compared, each in constant time
    if (v.size() == expected.size() && CRYPTO_memcmp(v.data(), expected.data(), expected.size()) == 0)
      match = true;
  if (!match)
    return "no v1 signature matches";
  return std::nullopt;
}

namespace {

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

/// The plan a subscription is for: metadata.plan, else the first item's
/// price lookup_key.
std::string plan_of(const nlohmann::json& sub) {
  if (auto md = sub.find("metadata"); md != sub.end() && md->is_object())
    if (auto p = str(*md, "plan"); !p.empty())
      return p;
  if (auto items = sub.find("items"); items != sub.end() && items->is_object())
    if (auto data = items->find("data"); data != items->end() && data->is_array() && !data->empty()) {
      const auto& first = (*data)[0];
      if (auto price = first.find("price"); price != first.end() && price->is_object())
        return str(*price, "lookup_key");
    }
  return {};
}

} // namespace

std::optional<stripe_event> parse_stripe_event(std::string_view body, std::string& error) {
  // The gate of every JSON document (limits, duplicate keys) comes first.
  if (auto err = protocol::check_json(body, true)) {
    error = err->field.empty() ? err->message : err->field + ": " + err->message;
    return std::nullopt;
  }
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "the body is not a JSON object";
    return std::nullopt;
  }
  stripe_event ev;
  ev.id = str(doc, "id");
  ev.type = str(doc, "type");
  auto data = doc.find("data");
  if (ev.id.empty() || ev.type.empty() || data == doc.end() || !data->is_object() || !data->contains("object") ||
      !(*data)["object"].is_object()) {
    error = "not a Stripe event (id, type and data.object are required)";
    return std::nullopt;
  }
  const auto& obj = (*data)["object"];
  if (auto md = obj.find("metadata"); md != obj.end() && md->is_object())
    ev.tenant_id = str(*md, "tenant_id");
  ev.customer_id = str(obj, "customer");
  v1::BillingChange change;
  change.set_customer_id(ev.customer_id);
  const auto& type = ev.type;
  if (type == "customer.subscription.created" || type == "customer.subscription.updated") {
    auto status = str(obj, "status");
    if (status != "active" && status != "trialing") {
      ev.ignored_because = "subscription status '" + status + "' is handled through invoice events";
      return ev;
    }
    change.set_kind("subscription_active");
    change.set_plan(plan_of(obj));
    change.set_subscription_id(str(obj, "id"));
  } else if (type == "customer.subscription.deleted") {
    change.set_kind("subscription_deleted");
    change.set_subscription_id(str(obj, "id"));
  } else if (type == "invoice.payment_failed") {
    change.set_kind("payment_failed");
    change.set_subscription_id(str(obj, "subscription"));
  } else if (type == "invoice.paid") {
    change.set_kind("paid");
    change.set_subscription_id(str(obj, "subscription"));
  } else {
    ev.ignored_because = "event type not used by Colony";
    return ev;
  }
  ev.change = std::move(change);
  return ev;
}

} // namespace colony::adapters::billing
