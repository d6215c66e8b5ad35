#include "colony/actors/plugin/config_schema.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

namespace colony::actors {
namespace {

using json = nlohmann::json;

const std::set<std::string, std::less<>>& annotations() {
  static const std::set<std::string, std::less<>> s{"title",      "description", "default",   "examples",
                                                    "deprecated", "readOnly",    "writeOnly", "$schema",
                                                    "$id",        "$comment",    "format"};
  return s;
}

const std::set<std::string, std::less<>>& assertions() {
  static const std::set<std::string, std::less<>> s{"type",
                                                    "enum",
                                                    "const",
                                                    "properties",
                                                    "required",
                                                    "additionalProperties",
                                                    "minProperties",
                                                    "maxProperties",
                                                    "items",
                                                    "minItems",
                                                    "maxItems",
                                                    "uniqueItems",
                                                    "minimum",
                                                    "maximum",
                                                    "exclusiveMinimum",
                                                    "exclusiveMaximum",
                                                    "multipleOf",
                                                    "minLength",
                                                    "maxLength",
                                                    "allOf",
                                                    "anyOf",
                                                    "oneOf",
                                                    "not"};
  return s;
}

bool known_type(const json& t) {
  static const std::set<std::string, std::less<>> names{"object",  "array",   "string", "number",
                                                        "integer", "boolean", "null"};
  return t.is_string() && names.count(t.get<std::string>()) == 1;
}

bool non_negative_integer(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
}

std::optional<protocol::field_error> check(const json& s, const std::string& path, int depth) {
  auto bad = [&](const std::string& where, const std::string& why) {
    return std::optional<protocol::field_error>{protocol::field_error{where, why}};
  };
  if (depth > 32)
    return bad(path, "the schema is nested more than 32 levels deep");
  if (s.is_boolean())
    return std::nullopt;
  if (!s.is_object())
    return bad(path, "a schema is an object or a boolean");
  for (const auto& [k, v] : s.items()) {
    auto at = path + "." + k;
    if (annotations().count(k) == 1)
      continue;
    if (assertions().count(k) == 0)
      return bad(at, "the keyword '" + k + "' is not supported (docs/plugins.md lists the supported ones)");
    if (k == "type") {
      if (v.is_array()) {
        if (v.empty())
          return bad(at, "a list of types is not empty");
        for (const auto& t : v)
          if (!known_type(t))
            return bad(at, "types are object, array, string, number, integer, boolean or null");
      } else if (!known_type(v)) {
        return bad(at, "types are object, array, string, number, integer, boolean or null");
      }
    } else if (k == "enum") {
      if (!v.is_array())
        return bad(at, "enum is an array");
    } else if (k == "properties") {
      if (!v.is_object())
        return bad(at, "properties is an object of schemas");
      for (const auto& [name, sub] : v.items())
        if (auto e = check(sub, at + "." + name, depth + 1))
          return e;
    } else if (k == "required") {
      if (!v.is_array())
        return bad(at, "required is an array of property names");
      for (const auto& n : v)
        if (!n.is_string())
          return bad(at, "required is an array of property names");
    } else if (k == "additionalProperties" || k == "items" || k == "not") {
      if (auto e = check(v, at, depth + 1))
        return e;
    } else if (k == "allOf" || k == "anyOf" || k == "oneOf") {
      if (!v.is_array() || v.empty())
        return bad(at, k + " is a non-empty array of schemas");
      for (std::size_t i = 0; i < v.size(); ++i)
        if (auto e = check(v[i], at + "[" + std::to_string(i) + "]", depth + 1))
          return e;
    } else if (k == "uniqueItems") {
      if (!v.is_boolean())
        return bad(at, "uniqueItems is a boolean");
    } else if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum") {
      if (!v.is_number())
        return bad(at, k + " is a number");
    } else if (k == "multipleOf") {
      if (!v.is_number() || v.get<double>() <= 0)
        return bad(at, "multipleOf is a number above 0");
    } else if (!non_negative_integer(v)) { // min/max Length, Items, Properties
      return bad(at, k + " is a non-negative integer");
    }
  }
  return std::nullopt;
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80)
      ++n;
  return n;
}

bool is_integer(const json& v) {
  if (v.is_number_integer())
    return true;
  if (!v.is_number_float())
    return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(const json& v, const std::string& t) {
  if (t == "object")
    return v.is_object();
  if (t == "array")
    return v.is_array();
  if (t == "string")
    return v.is_string();
  if (t == "number")
    return v.is_number();
  if (t == "integer")
    return is_integer(v);
  if (t == "boolean")
    return v.is_boolean();
  return v.is_null();
}

/// JSON Schema equality: numbers by value (1 == 1.0), the rest structurally.
bool same(const json& a, const json& b) {
  if (a.is_number() && b.is_number())
    return a.get<double>() == b.get<double>();
  if (a.type() != b.type())
    return false;
  if (a.is_array()) {
    if (a.size() != b.size())
      return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same(a[i], b[i]))
        return false;
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size())
      return false;
    for (const auto& [k, v] : a.items()) {
      auto it = b.find(k);
      if (it == b.end() || !same(v, *it))
        return false;
    }
    return true;
  }
  return a == b;
}

std::string type_list(const json& t) {
  if (t.is_string())
    return t.get<std::string>();
  std::string out;
  for (const auto& x : t)
    out += (out.empty() ? "" : " or ") + x.get<std::string>();
  return out;
}

class validator {
public:
  std::vector<protocol::field_error> errors;

  /// Whether `v` is valid; failures are recorded only when `record`.
  bool run(const json& s, const json& v, const std::string& path, bool record) {
    if (s.is_boolean()) {
      if (!s.get<bool>())
        return note(record, path, "no value is allowed here");
      return true;
    }
    bool ok = true;
    auto fails = [&](const std::string& where, const std::string& why) { ok = note(record, where, why) && ok; };
    if (auto t = s.find("type"); t != s.end()) {
      bool any = false;
      if (t->is_string())
        any = has_type(v, t->get<std::string>());
      else
        for (const auto& x : *t)
          any = any || has_type(v, x.get<std::string>());
      if (!any) {
        fails(path, "must be of type " + type_list(*t));
        return false; // the other keywords would only repeat it
      }
    }
    if (auto e = s.find("const"); e != s.end() && !same(*e, v))
      fails(path, "must be " + e->dump());
    if (auto e = s.find("enum"); e != s.end()) {
      bool in = false;
      for (const auto& x : *e)
        in = in || same(x, v);
      if (!in)
        fails(path, "must be one of " + e->dump());
    }
    if (v.is_number()) {
      double d = v.get<double>();
      auto num = [&](const char* k) -> std::optional<double> {
        auto it = s.find(k);
        return it == s.end() ? std::nullopt : std::optional<double>{it->get<double>()};
      };
      if (auto m = num("minimum"); m && d < *m)
        fails(path, "must be at least " + s["minimum"].dump());
      if (auto m = num("maximum"); m && d > *m)
        fails(path, "must be at most " + s["maximum"].dump());
      if (auto m = num("exclusiveMinimum"); m && d <= *m)
        fails(path, "must be above " + s["exclusiveMinimum"].dump());
      if (auto m = num("exclusiveMaximum"); m && d >= *m)
        fails(path, "must be below " + s["exclusiveMaximum"].dump());
      if (auto m = num("multipleOf")) {
        double q = d / *m;
        if (!std::isfinite(q) || std::fabs(q - std::round(q)) > 1e-9)
          fails(path, "must be a multiple of " + s["multipleOf"].dump());
      }
    }
    if (v.is_string()) {
      auto n = code_points(v.get_ref<const std::string&>());
      if (auto it = s.find("minLength"); it != s.end() && n < it->get<std::size_t>())
        fails(path, "must be at least " + it->dump() + " characters long");
      if (auto it = s.find("maxLength"); it != s.end() && n > it->get<std::size_t>())
        fails(path, "must be at most " + it->dump() + " characters long");
    }
    if (v.is_array()) {
      if (auto it = s.find("minItems"); it != s.end() && v.size() < it->get<std::size_t>())
        fails(path, "must have at least " + it->dump() + " items");
      if (auto it = s.find("maxItems"); it != s.end() && v.size() > it->get<std::size_t>())
        fails(path, "must have at most " + it->dump() + " items");
      if (auto it = s.find("uniqueItems"); it != s.end() && it->get<bool>())
        for (std::size_t i = 0; i < v.size(); ++i)
          for (std::size_t j = i + 1; j < v.size(); ++j)
            if (same(v[i], v[j])) {
              fails(path, "must not hold the same item twice");
              i = j = v.size();
            }
      if (auto it = s.find("items"); it != s.end())
        for (std::size_t i = 0; i < v.size(); ++i)
          ok = run(*it, v[i], path + "[" + std::to_string(i) + "]", record) && ok;
    }
    if (v.is_object()) {
      if (auto it = s.find("minProperties"); it != s.end() && v.size() < it->get<std::size_t>())
        fails(path, "must have at least " + it->dump() + " members");
      if (auto it = s.find("maxProperties"); it != s.end() && v.size() > it->get<std::size_t>())
        fails(path, "must have at most " + it->dump() + " members");
      if (auto it = s.find("required"); it != s.end())
        for (const auto& n : *it)
          if (!v.contains(n.get<std::string>()))
            fails(join(path, n.get<std::string>()), "is required");
      auto props = s.find("properties");
      auto extra = s.find("additionalProperties");
      for (const auto& [k, x] : v.items()) {
        if (props != s.end())
          if (auto p = props->find(k); p != props->end()) {
            ok = run(*p, x, join(path, k), record) && ok;
            continue;
          }
        if (extra != s.end())
          ok = (extra->is_boolean() && !extra->get<bool>() ? note(record, join(path, k), "is not a known member")
                                                           : run(*extra, x, join(path, k), record)) &&
            ok;
      }
    }
    if (auto it = s.find("allOf"); it != s.end())
      for (const auto& sub : *it)
        ok = run(sub, v, path, record) && ok;
    if (auto it = s.find("anyOf"); it != s.end()) {
      bool any = false;
      for (const auto& sub : *it)
        any = any || run(sub, v, path, false);
      if (!any)
        fails(path, "must match at least one of the anyOf schemas");
    }
    if (auto it = s.find("oneOf"); it != s.end()) {
      int n = 0;
      for (const auto& sub : *it)
        n += run(sub, v, path, false) ? 1 : 0;
      if (n != 1)
        fails(path, "must match exactly one of the oneOf schemas (it matches " + std::to_string(n) + ")");
    }
    if (auto it = s.find("not"); it != s.end() && run(*it, v, path, false))
      fails(path, "must not match the 'not' schema");
    return ok;
  }

private:
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  bool note(bool record, const std::string& where, const std::string& why) {
    if (record && errors.size() < 20)
      errors.push_back({where, why});
    return false;
  }
};

} // namespace

std::optional<protocol::field_error> check_config_schema(const std::string& schema_json, const std::string& base) {
  auto s = json::parse(schema_json, nullptr, false);
  if (s.is_discarded())
    return protocol::field_error{base, "is not JSON"};
  return check(s, base, 0);
}

std::vector<protocol::field_error> validate_config(const std::string& schema_json, const std::string& config_json,
                                                   const std::string& base) {
  auto s = json::parse(schema_json, nullptr, false);
  auto v = json::parse(config_json, nullptr, false);
  if (s.is_discarded() || v.is_discarded())
    return {protocol::field_error{base, "is not JSON"}};
  validator val;
  val.run(s, v, base, true);
  return std::move(val.errors);
}

} // namespace colony::actors
