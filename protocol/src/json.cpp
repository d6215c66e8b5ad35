#include "colony/protocol/json.hpp"

#include <algorithm>
#include <google/protobuf/message.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

namespace colony::protocol {
namespace {

namespace pbu = google::protobuf::util;

// A JSON path as protobuf reports it (proto names: settings.primary_color)
// in the names clients send (settings.primaryColor), cut to a sane length.
std::string json_path(std::string_view proto_path) {
  std::string out;
  bool upper = false;
  for (char ch : proto_path.substr(0, 200)) {
    if (ch == '_') {
      upper = true;
      continue;
    }
    out += upper && ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
    upper = false;
  }
  return valid_utf8(out);
}

// What a value of the type protobuf names should have been, in words of
// JSON: the detail never quotes the value the client sent.
std::string expected(std::string_view type) {
  if (type == "TYPE_STRING" || type == "TYPE_BYTES")
    return "expected a string";
  if (type == "TYPE_BOOL")
    return "expected true or false";
  if (type.find("INT") != std::string_view::npos)
    return "expected an integer";
  if (type == "TYPE_DOUBLE" || type == "TYPE_FLOAT")
    return "expected a number";
  if (type.ends_with("google.protobuf.Timestamp"))
    return "expected an RFC 3339 time such as 2026-11-01T00:00:00Z";
  if (type.ends_with("google.protobuf.Value") || type.ends_with("google.protobuf.ListValue"))
    return "invalid value";
  if (type.starts_with("type.googleapis.com/") || type == "Map")
    return "expected an object";
  if (type == "TYPE_ENUM" || type.find("colony.v1.") != std::string_view::npos)
    return "not one of the allowed values";
  return "invalid value";
}

// protobuf 3.21's parser reports "(settings.primary_color): invalid value 5 for
// type TYPE_STRING", "foo: Cannot find field.", "email: Proto field is not
// repeating, cannot start list.", ": invalid value Starting an object on a
// scalar field for type slug", "Cannot bind a list to map for field 'custom'."
// and more. Pull out the field path, and say what was wrong in our own words:
// never protobuf's internals, never the value sent.
field_error to_field_error(std::string_view status_message) {
  std::string msg{status_message};
  field_error err;
  if (auto p = msg.find(": Cannot find field."); p != std::string::npos)
    return field_error{json_path(msg.substr(0, p)), "unknown field"};
  if (auto p = msg.find("Cannot find field: "); p != std::string::npos)
    return field_error{json_path(msg.substr(p + 19)), "unknown field"};
  std::string path, rest = msg;
  if (!msg.empty() && msg.front() == '(') {
    if (auto close = msg.find("):"); close != std::string::npos) {
      path = msg.substr(1, close - 1);
      rest = msg.substr(close + 2);
    }
  } else if (auto colon = msg.find(": "); colon != std::string::npos && msg.find(' ') >= colon) {
    path = msg.substr(0, colon); // "email: Proto field is not repeating, ..." (the path has no spaces)
    rest = msg.substr(colon + 2);
  }
  rest.erase(0, rest.find_first_not_of(' '));
  auto join = [&path](std::string_view leaf) {
    return path.empty() ? std::string{leaf} : path + "." + std::string{leaf};
  };
  if (rest.find("is not repeating") != std::string::npos)
    return field_error{json_path(path), "expected a single value, not an array"};
  if (auto p = rest.find("Starting an object on a scalar field for type "); p != std::string::npos)
    return field_error{json_path(join(rest.substr(p + 46))), "expected a single value, not an object"};
  if (auto p = rest.find("Cannot bind a list to map for field '"); p != std::string::npos) {
    auto name = rest.substr(p + 37);
    name = name.substr(0, name.find('\''));
    return field_error{json_path(join(name)), "expected an object, not an array"};
  }
  if (auto p = rest.rfind(" for type "); rest.starts_with("invalid value") && p != std::string::npos)
    return field_error{json_path(path), expected(std::string_view{rest}.substr(p + 10))};
  return field_error{json_path(path), "invalid value"};
}

// -- the printer -------------------------------------------------------------
//
// The protobuf JSON mapping printed straight from a message by reflection.
// protobuf's own printer (util::MessageToJsonString, BinaryToJsonString)
// goes through its "converter": it re-encodes the message, resolves the type
// of every field by name and builds a tree of default values before writing,
// which took ~16% of the node's CPU under a GET load. This printer writes the
// same bytes (checked against protobuf's printer for every message type,
// every code point and many values in tests/unit/json_test.cpp), and falls
// back to protobuf's printer for what it does not know (bytes, Any,
// Duration, wrappers, FieldMask, non-finite numbers).

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

/// Code points protobuf's printer writes as \uXXXX besides the ASCII ones:
/// C1 controls and Unicode format characters (util/internal/json_escaping).
bool escaped_code_point(std::uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
    return true;
  static constexpr std::pair<std::uint32_t, std::uint32_t> ranges[] = {
    {0xad, 0xad},     {0x600, 0x603},     {0x6dd, 0x6dd},     {0x70f, 0x70f},     {0x17b4, 0x17b5},
    {0x200b, 0x200f}, {0x2028, 0x202e},   {0x2060, 0x2064},   {0x206a, 0x206f},   {0xfeff, 0xfeff},
    {0xfff9, 0xfffb}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f},
  };
  for (auto [lo, hi] : ranges)
    if (cp >= lo && cp <= hi)
      return true;
  return false;
}

void append_u_escape(std::string& out, std::uint32_t unit) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4)
    out += hex[(unit >> shift) & 0xf];
}

/// A JSON string as protobuf prints it: \b \t \n \f \r \" \\ spelled so,
/// '<' and '>' and the code points above as \uXXXX (a surrogate pair past
/// U+FFFF), bytes that are not well-formed UTF-8 left out.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    // A run of ASCII that needs no escape is appended at once.
    std::size_t j = i;
    while (j < s.size()) {
      auto b = static_cast<unsigned char>(s[j]);
      if (b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '<' || b == '>')
        break;
      ++j;
    }
    out.append(s.data() + i, j - i);
    i = j;
    if (i == s.size())
      break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        case '<':
        case '>': append_u_escape(out, c); break;
        default:
          if (escaped_code_point(c))
            append_u_escape(out, c);
          else
            out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    std::uint32_t cp = c & (0xff >> (n + 1));
    for (std::size_t k = 1; ok && k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc >> 6) == 0x2;
      cp = (cp << 6) | (cc & 0x3f);
    }
    ok = ok && cp >= (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    if (!ok) {
      ++i; // not UTF-8: dropped, as protobuf's printer does
      continue;
    }
    if (!escaped_code_point(cp)) {
      out.append(s.substr(i, n));
    } else if (cp < 0x10000) {
      append_u_escape(out, cp);
    } else {
      append_u_escape(out, 0xd800 + ((cp - 0x10000) >> 10));
      append_u_escape(out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
    }
    i += n;
  }
  out += '"';
}

/// A double as protobuf prints it (SimpleDtoa: %.15g, or %.17g when that
/// does not read back the same); false for NaN and infinities.
bool append_double(std::string& out, double v) {
  if (!std::isfinite(v))
    return false;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v)
    std::snprintf(buf, sizeof buf, "%.17g", v);
  out += buf;
  return true;
}

bool append_float(std::string& out, float v) {
  if (!std::isfinite(v))
    return false;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(v));
  if (std::strtof(buf, nullptr) != v)
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  out += buf;
  return true;
}

/// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits.
/// `width` decimal digits of `v`, zero-padded.
void append_digits(std::string& out, std::int64_t v, int width) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i, v /= 10)
    buf[i] = static_cast<char>('0' + v % 10);
  out.append(buf, static_cast<std::size_t>(width));
}

/// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits. The date comes from
/// the days since the epoch (the civil-from-days algorithm of H. Hinnant's
/// "chrono-compatible low-level date algorithms"): no gmtime_r, no printf.
bool append_timestamp(std::string& out, const pb::Timestamp& t) {
  auto seconds = t.seconds();
  auto nanos = t.nanos();
  // 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z
  if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 || nanos > 999999999)
    return false;
  auto days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  auto secs = seconds - days * 86400;
  auto z = days + 719468;
  auto era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = z - era * 146097;                                      // [0, 146096]
  auto yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; // [0, 399]
  auto doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               // [0, 365]
  auto mp = (5 * doy + 2) / 153;                                    // [0, 11]
  auto day = doy - (153 * mp + 2) / 5 + 1;                          // [1, 31]
  auto month = mp < 10 ? mp + 3 : mp - 9;                           // [1, 12]
  auto year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  out += '"';
  append_digits(out, year, 4);
  out += '-';
  append_digits(out, month, 2);
  out += '-';
  append_digits(out, day, 2);
  out += 'T';
  append_digits(out, secs / 3600, 2);
  out += ':';
  append_digits(out, secs / 60 % 60, 2);
  out += ':';
  append_digits(out, secs % 60, 2);
  if (nanos != 0) {
    out += '.';
    if (nanos % 1000000 == 0)
      append_digits(out, nanos / 1000000, 3);
    else if (nanos % 1000 == 0)
      append_digits(out, nanos / 1000, 6);
    else
      append_digits(out, nanos, 9);
  }
  out += "Z\"";
  return true;
}

bool append_message(std::string& out, const pb::Message& m);

bool append_struct(std::string& out, const pb::Struct& m);

/// google.protobuf.Value: whichever kind is set (an unset Value is an error
/// for protobuf's printer too).
bool append_value(std::string& out, const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kNullValue: out += "null"; return true;
    case pb::Value::kNumberValue: return append_double(out, v.number_value());
    case pb::Value::kStringValue: append_string(out, v.string_value()); return true;
    case pb::Value::kBoolValue: out += v.bool_value() ? "true" : "false"; return true;
    case pb::Value::kStructValue: return append_struct(out, v.struct_value());
    case pb::Value::kListValue: {
      out += '[';
      bool first = true;
      for (const auto& e : v.list_value().values()) {
        if (!first)
          out += ',';
        first = false;
        if (!append_value(out, e))
          return false;
      }
      out += ']';
      return true;
    }
    case pb::Value::KIND_NOT_SET: return false;
  }
  return false;
}

/// Members sorted by key (the order of a deterministic encoding).
bool append_struct(std::string& out, const pb::Struct& m) {
  std::vector<const pb::Map<std::string, pb::Value>::value_type*> sorted;
  sorted.reserve(m.fields().size());
  for (const auto& kv : m.fields())
    sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  out += '{';
  bool first = true;
  for (const auto* kv : sorted) {
    if (!first)
      out += ',';
    first = false;
    append_string(out, kv->first);
    out += ':';
    if (!append_value(out, kv->second))
      return false;
  }
  out += '}';
  return true;
}

/// Map entries sorted by key (the order a deterministic encoding has).
template <class F>
bool append_map(std::string& out, const pb::Message& m, const FD* f, F&& value) {
  const auto* r = m.GetReflection();
  std::vector<std::pair<std::string, const pb::Message*>> sorted;
  int n = r->FieldSize(m, f);
  sorted.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto& e = r->GetRepeatedMessage(m, f, i);
    const auto* ed = e.GetDescriptor();
    const auto* key = ed->map_key();
    const auto* er = e.GetReflection();
    std::string k;
    switch (key->cpp_type()) {
      case FD::CPPTYPE_STRING: k = er->GetString(e, key); break;
      case FD::CPPTYPE_INT32: k = std::to_string(er->GetInt32(e, key)); break;
      case FD::CPPTYPE_INT64: k = std::to_string(er->GetInt64(e, key)); break;
      case FD::CPPTYPE_UINT32: k = std::to_string(er->GetUInt32(e, key)); break;
      case FD::CPPTYPE_UINT64: k = std::to_string(er->GetUInt64(e, key)); break;
      case FD::CPPTYPE_BOOL: k = er->GetBool(e, key) ? "true" : "false"; break;
      default: return false;
    }
    sorted.emplace_back(std::move(k), &e);
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out += '{';
  bool first = true;
  for (auto& [k, e] : sorted) {
    if (!first)
      out += ',';
    first = false;
    append_string(out, k);
    out += ':';
    if (!value(*e, e->GetDescriptor()->map_value()))
      return false;
  }
  out += '}';
  return true;
}

/// One value of field `f` (element `index` if repeated, -1 otherwise).
bool append_field_value(std::string& out, const pb::Message& m, const FD* f, int index) {
  const auto* r = m.GetReflection();
  bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      out += std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      return true;
    case FD::CPPTYPE_UINT32:
      out += std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      return true;
    case FD::CPPTYPE_INT64:
      out += '"' + std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f)) + '"';
      return true;
    case FD::CPPTYPE_UINT64:
      out += '"' + std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f)) + '"';
      return true;
    case FD::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      return true;
    case FD::CPPTYPE_DOUBLE: return append_double(out, rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
    case FD::CPPTYPE_FLOAT: return append_float(out, rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
    case FD::CPPTYPE_ENUM: {
      const auto* v = rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
      append_string(out, v->name());
      return true;
    }
    case FD::CPPTYPE_STRING: {
      if (f->type() == FD::TYPE_BYTES)
        return false; // base64: left to protobuf's printer
      std::string scratch;
      const auto& s =
        rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      append_string(out, s);
      return true;
    }
    case FD::CPPTYPE_MESSAGE: {
      const auto& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
      if (const auto* t = dynamic_cast<const pb::Timestamp*>(&sub))
        return append_timestamp(out, *t);
      if (const auto* st = dynamic_cast<const pb::Struct*>(&sub))
        return append_struct(out, *st);
      if (const auto* v = dynamic_cast<const pb::Value*>(&sub))
        return append_value(out, *v);
      const auto& name = sub.GetDescriptor()->full_name();
      if (name.rfind("google.protobuf.", 0) == 0)
        return false; // Any, Duration, wrappers, FieldMask, Empty: protobuf's printer
      return append_message(out, sub);
    }
  }
  return false;
}

bool append_field(std::string& out, const pb::Message& m, const FD* f) {
  const auto* r = m.GetReflection();
  append_string(out, f->json_name());
  out += ':';
  if (f->is_map())
    return append_map(out, m, f,
                      [&out](const pb::Message& e, const FD* v) { return append_field_value(out, e, v, -1); });
  if (!f->is_repeated())
    return append_field_value(out, m, f, -1);
  out += '[';
  for (int k = 0, n = r->FieldSize(m, f); k < n; ++k) {
    if (k > 0)
      out += ',';
    if (!append_field_value(out, m, f, k))
      return false;
  }
  out += ']';
  return true;
}

/// Fields in declaration order; scalars and repeated fields always (as with
/// always_print_primitive_fields), message fields and fields with presence
/// (proto3 optional, oneof members) only when set. One quirk of protobuf's
/// printer is kept: a set Timestamp field whose JSON name differs from its
/// proto name (createdAt) comes after all other fields (its default-value
/// pass matches fields by proto name and appends the ones it did not match).
bool append_message(std::string& out, const pb::Message& m) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  out += '{';
  bool first = true;
  std::vector<const FD*> last;
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (!f->is_repeated() && (f->cpp_type() == FD::CPPTYPE_MESSAGE || f->has_presence()) && !r->HasField(m, f))
      continue;
    if (f->cpp_type() == FD::CPPTYPE_MESSAGE && f->json_name() != f->name() &&
        f->message_type()->full_name().rfind("google.protobuf.", 0) == 0) {
      if (f->is_repeated() || f->message_type()->full_name() != "google.protobuf.Timestamp")
        return false; // not seen in our messages: protobuf's printer decides
      last.push_back(f);
      continue;
    }
    if (!first)
      out += ',';
    first = false;
    if (!append_field(out, m, f))
      return false;
  }
  std::sort(last.begin(), last.end(), [](const FD* a, const FD* b) { return a->number() < b->number(); });
  for (const auto* f : last) {
    if (!first)
      out += ',';
    first = false;
    if (!append_field(out, m, f))
      return false;
  }
  out += '}';
  return true;
}

/// protobuf's own printer: the reference, and the fallback for what
/// append_message does not print.
std::string converter_json(std::string_view full_name, const std::string& bytes) {
  static const std::unique_ptr<pbu::TypeResolver> resolver{
    pbu::NewTypeResolverForDescriptorPool("type.googleapis.com", google::protobuf::DescriptorPool::generated_pool())};
  pbu::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  auto st = pbu::BinaryToJsonString(resolver.get(), "type.googleapis.com/" + std::string{full_name}, bytes, &out, opts);
  if (!st.ok())
    return "{}"; // cannot happen for bytes we encoded; never leak internals
  return out;
}

} // namespace

std::string to_json(const google::protobuf::Message& msg) {
  std::string out;
  out.reserve(256);
  // A well-known type has its own JSON form at the top level too (a Struct
  // is the object itself, not {"fields": ...}).
  bool ok = false;
  if (const auto* st = dynamic_cast<const pb::Struct*>(&msg))
    ok = append_struct(out, *st);
  else if (const auto* v = dynamic_cast<const pb::Value*>(&msg))
    ok = append_value(out, *v);
  else if (const auto* t = dynamic_cast<const pb::Timestamp*>(&msg))
    ok = append_timestamp(out, *t);
  else if (msg.GetDescriptor()->full_name().rfind("google.protobuf.", 0) != 0)
    ok = append_message(out, msg);
  if (ok)
    return out;
  return converter_json(msg.GetDescriptor()->full_name(), deterministic_bytes(msg));
}

std::string bytes_to_json(std::string_view full_name, const std::string& bytes) {
  // One message per type and thread, parsed into again and again: its
  // strings keep their capacity, so a read allocates little besides the answer.
  thread_local std::vector<std::pair<std::string, std::unique_ptr<pb::Message>>> scratch;
  pb::Message* msg = nullptr;
  for (auto& [name, m] : scratch)
    if (name == full_name)
      msg = m.get();
  if (msg == nullptr) {
    const auto* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(std::string{full_name});
    if (d == nullptr)
      return "{}";
    scratch.emplace_back(std::string{full_name}, pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
    msg = scratch.back().second.get();
  }
  if (!msg->ParseFromString(bytes)) // clears first
    return converter_json(full_name, bytes);
  return to_json(*msg);
}

std::string deterministic_bytes(const google::protobuf::Message& msg) {
  std::string bytes;
  google::protobuf::io::StringOutputStream sink{&bytes};
  google::protobuf::io::CodedOutputStream cos{&sink};
  cos.SetSerializationDeterministic(true);
  msg.SerializeToCodedStream(&cos);
  return bytes;
}

std::string protobuf_json(const google::protobuf::Message& msg) {
  return converter_json(msg.GetDescriptor()->full_name(), deterministic_bytes(msg));
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
  if (auto err = check_json(text, true))
    return field_error{std::move(err->field), std::move(err->message)};
  return std::nullopt;
}

std::optional<field_error> apply_merge_patch(const google::protobuf::Message& current, std::string_view patch,
                                             const std::vector<std::string>& patchable,
                                             google::protobuf::Message& out) {
  if (auto err = check_json(patch, true))
    return field_error{std::move(err->field),
                       err->kind == json_error::not_object ? "a merge patch must be a JSON object"
                                                           : std::move(err->message)};
  auto doc = nlohmann::json::parse(patch.begin(), patch.end(), nullptr, false);
  if (doc.is_discarded()) // cannot happen after check_json
    return field_error{"", "the body is not valid JSON"};
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
