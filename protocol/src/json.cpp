#include "colony/protocol/json.hpp"

#include <algorithm>
#include <google/protobuf/message.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <memory>
#include <nlohmann/json.hpp>

namespace colony::protocol {
namespace {

namespace pbu = google::protobuf::util;

// The protobuf parser reports e.g. "(settings.primaryColor): invalid value 5 for
// type TYPE_STRING" or "Cannot find field: foo". Pull out the field path so the
// problem answer can say which field is wrong.
field_error to_field_error(std::string_view status_message) {
  std::string msg{status_message};
  field_error err;
  // protobuf 3.21: "foo: Cannot find field."
  if (auto p = msg.find(": Cannot find field."); p != std::string::npos) {
    err.field = msg.substr(0, p);
    err.message = "unknown field";
    return err;
  }
  if (auto p = msg.find("Cannot find field: "); p != std::string::npos) {
    err.field = msg.substr(p + 19);
    err.message = "unknown field";
    return err;
  }
  if (!msg.empty() && msg.front() == '(') {
    if (auto close = msg.find("):"); close != std::string::npos) {
      err.field = msg.substr(1, close - 1);
      auto rest = msg.substr(close + 2);
      rest.erase(0, rest.find_first_not_of(' '));
      err.message = rest;
      return err;
    }
  }
  err.message = msg;
  return err;
}

} // namespace

std::string to_json(const google::protobuf::Message& msg) {
  // What MessageToJsonString does (encode, then convert the bytes), but with
  // a deterministic encoding: map keys (attributes, settings) come out sorted,
  // the same for a message as for stored bytes.
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream sink{&bytes};
    google::protobuf::io::CodedOutputStream cos{&sink};
    cos.SetSerializationDeterministic(true);
    msg.SerializeToCodedStream(&cos);
  }
  return bytes_to_json(msg.GetDescriptor()->full_name(), bytes);
}

std::string bytes_to_json(std::string_view full_name, const std::string& bytes) {
  static const std::unique_ptr<pbu::TypeResolver> resolver{pbu::NewTypeResolverForDescriptorPool(
    "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool())};
  pbu::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  auto st = pbu::BinaryToJsonString(resolver.get(), "type.googleapis.com/" + std::string{full_name}, bytes, &out, opts);
  if (!st.ok())
    return "{}"; // cannot happen for bytes we encoded; never leak internals
  return out;
}

std::optional<field_error> from_json(std::string_view json, google::protobuf::Message& msg) {
  msg.Clear();
  // Reject non-objects with a clearer message than the protobuf parser gives.
  if (auto err = check_json_object(json))
    return err;
  pbu::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = pbu::JsonStringToMessage(std::string{json}, &msg, opts);
  if (!st.ok())
    return to_field_error(std::string{st.message()});
  return std::nullopt;
}

std::optional<field_error> check_json_object(std::string_view text) {
  auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded())
    return field_error{"", "the body is not valid JSON"};
  if (!doc.is_object())
    return field_error{"", "the body must be a JSON object"};
  return std::nullopt;
}

std::optional<field_error> apply_merge_patch(const google::protobuf::Message& current,
                                             std::string_view patch,
                                             const std::vector<std::string>& patchable,
                                             google::protobuf::Message& out) {
  auto doc = nlohmann::json::parse(patch.begin(), patch.end(), nullptr, false);
  if (doc.is_discarded())
    return field_error{"", "the body is not valid JSON"};
  if (!doc.is_object())
    return field_error{"", "a merge patch must be a JSON object"};
  for (const auto& [key, value] : doc.items()) {
    if (std::find(patchable.begin(), patchable.end(), key) == patchable.end()) {
      // Is it a known field at all? Serialize the current state and look.
      auto cur = nlohmann::json::parse(to_json(current));
      return field_error{key, cur.contains(key) ? "read-only field" : "unknown field"};
    }
  }
  auto target = nlohmann::json::parse(to_json(current));
  target.merge_patch(doc);
  return from_json(target.dump(), out);
}

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (ok && n > 1) { // no overlong forms, surrogates or code points past U+10FFFF
      std::uint32_t cp = c & (0xff >> (n + 1));
      for (std::size_t k = 1; k < n; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
      ok = cp >= (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

} // namespace colony::protocol
