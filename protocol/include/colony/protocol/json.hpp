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
  std::string field;   // JSON path such as "settings.primaryColor"; empty for the whole body
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
[[nodiscard]] std::optional<field_error> from_json(std::string_view json,
                                                   google::protobuf::Message& msg);

/// Applies an RFC 7396 JSON merge patch to `current` and parses the result into
/// `out`. Only the top-level members listed in `patchable` may appear in the
/// patch; any other member is reported as read-only (or unknown).
[[nodiscard]] std::optional<field_error>
apply_merge_patch(const google::protobuf::Message& current, std::string_view patch,
                  const std::vector<std::string>& patchable, google::protobuf::Message& out);

/// True when `text` is a syntactically valid JSON object (used at the HTTP edge).
[[nodiscard]] std::optional<field_error> check_json_object(std::string_view text);

/// `s` with every byte that is not part of well-formed UTF-8 replaced by
/// U+FFFD: for client text echoed into answers, logs and the audit log.
[[nodiscard]] std::string valid_utf8(std::string_view s);

/// Escapes `s` as the contents of a JSON string (without the quotes).
[[nodiscard]] std::string json_escape(std::string_view s);

} // namespace colony::protocol
