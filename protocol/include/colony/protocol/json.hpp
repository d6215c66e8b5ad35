// JSON mapping of colony.v1 messages (the protobuf JSON mapping, lowerCamelCase).
//
// Pure functions, callable from any thread. Errors are values that name the
// offending field where the parser tells us which one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class Message;
}

namespace colony::protocol {

/// A problem with one field of a JSON document.
struct field_error {
  std::string field; // JSON path such as "settings.primaryColor"; empty for the whole body
  std::string message;
};

/// Serializes `msg` as JSON (all scalar fields printed, lowerCamelCase names).
[[nodiscard]] std::string to_json(const google::protobuf::Message& msg);
/// The same JSON from the binary encoding of a message of `full_name`
/// (e.g. "colony.v1.User").
[[nodiscard]] std::string bytes_to_json(std::string_view full_name, const std::string& bytes);
/// The deterministic binary encoding of `msg` (map keys sorted): what the
/// store keeps, so that reads and writes render identical JSON.
[[nodiscard]] std::string deterministic_bytes(const google::protobuf::Message& msg);
/// The same JSON written by protobuf's own printer (util::BinaryToJsonString
/// of the deterministic encoding): the reference the tests hold to_json to.
[[nodiscard]] std::string protobuf_json(const google::protobuf::Message& msg);

/// Parses `json` into `msg` (cleared first). Unknown fields and wrong types are
/// errors. Returns the error, or nothing on success.
[[nodiscard]] std::optional<field_error> from_json(std::string_view json, google::protobuf::Message& msg);

/// Applies an RFC 7396 JSON merge patch to `current` and parses the result into
/// `out`. Only the top-level members listed in `patchable` may appear in the
/// patch; any other member is reported as read-only (or unknown).
[[nodiscard]] std::optional<field_error> apply_merge_patch(const google::protobuf::Message& current,
                                                           std::string_view patch,
                                                           const std::vector<std::string>& patchable,
                                                           google::protobuf::Message& out);

/// The limits every JSON document is held to (docs/api.md, "Request bodies").
struct json_limits {
  std::size_t max_depth = 64;       // nested objects and arrays, the top level counting as 1
  std::size_t max_values = 100'000; // values of any kind (members, elements, the top level)
};

/// Why a document failed check_json; `field` is the JSON path where it did.
struct json_error : field_error {
  enum kind_t { syntax, not_object, too_deep, too_many_values, duplicate_key } kind = syntax;
  json_error() = default;
  json_error(kind_t k, std::string f, std::string m) : field_error{std::move(f), std::move(m)}, kind(k) {}
};

/// The gate every JSON document passes before any other parser sees it: in
/// time linear in its size and without recursion, checks that `text` is one
/// well-formed JSON value (UTF-8, RFC 8259), an object if `require_object`,
/// no deeper than limits.max_depth, with at most limits.max_values values and
/// no object with a key twice. Error texts never quote the document.
[[nodiscard]] std::optional<json_error> check_json(std::string_view text, bool require_object = true,
                                                   const json_limits& limits = {});

/// check_json for a body that must be an object, as a field_error.
[[nodiscard]] std::optional<field_error> check_json_object(std::string_view text);

/// `s` with every byte that is not part of well-formed UTF-8 replaced by
/// U+FFFD: for client text echoed into answers, logs and the audit log.
[[nodiscard]] std::string valid_utf8(std::string_view s);

/// Escapes `s` as the contents of a JSON string (without the quotes).
[[nodiscard]] std::string json_escape(std::string_view s);

} // namespace colony::protocol
