#include "api.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "colony/protocol/base64url.hpp"

namespace colony::adapters::http {

using namespace actors;
using protocol::base64url_decode;
using protocol::base64url_encode;

namespace {
constexpr auto replace_invalid = nlohmann::json::error_handler_t::replace;
} // namespace

std::optional<std::string> decode_list_cursor(std::string_view cursor, list_query& q) {
  auto raw = base64url_decode(cursor);
  auto doc = raw ? nlohmann::json::parse(*raw, nullptr, false) : nlohmann::json(nlohmann::json::value_t::discarded);
  bool numeric = q.sort_field == "createdAt";
  bool ok = raw && !doc.is_discarded() && doc.is_object() && doc.contains("s") && doc.contains("d") &&
    doc.contains("v") && doc.contains("i") && doc["s"].is_string() && doc["d"].is_boolean() && doc["i"].is_string() &&
    (numeric ? doc["v"].is_number_integer() : doc["v"].is_string());
  if (!ok)
    return "is not a cursor returned by this list";
  if (doc["s"].get<std::string>() != q.sort_field || doc["d"].get<bool>() != q.descending)
    return "was issued for another sort order; send the same sort with it";
  q.has_after = true;
  q.after_id = doc["i"].get<std::string>();
  if (numeric)
    q.after_number = doc["v"].get<std::int64_t>();
  else
    q.after_text = doc["v"].get<std::string>();
  return std::nullopt;
}

std::string encode_list_cursor(const list_query& q, const list_row& last) {
  nlohmann::json cur{{"s", q.sort_field}, {"d", q.descending}, {"i", last.id}};
  if (q.sort_field == "createdAt")
    cur["v"] = last.sort_number;
  else
    cur["v"] = last.sort_text;
  return base64url_encode(cur.dump(-1, ' ', false, replace_invalid));
}

std::optional<std::int64_t> decode_audit_cursor(std::string_view cursor) {
  auto raw = base64url_decode(cursor);
  if (!raw || !raw->starts_with("a:"))
    return std::nullopt;
  std::int64_t pos = 0;
  auto [p, ec] = std::from_chars(raw->data() + 2, raw->data() + raw->size(), pos);
  if (ec != std::errc{} || p != raw->data() + raw->size() || pos <= 0)
    return std::nullopt;
  return pos;
}

std::string encode_audit_cursor(std::int64_t position) { return base64url_encode("a:" + std::to_string(position)); }

} // namespace colony::adapters::http
