#include "colony/runtime/options.hpp"

#include <charconv>
#include <stdexcept>

#include "options_detail.hpp"

namespace colony::runtime {

void option_registry::add(const std::string& module, option o) {
  if (find(o.name) != nullptr)
    throw std::logic_error("option " + o.name + " is registered twice (by " + find(o.name)->module + " and " + module +
                           ")");
  o.module = module;
  options_.push_back(std::move(o));
}

const option* option_registry::find(const std::string& name) const {
  for (const auto& o : options_)
    if (o.name == name)
      return &o;
  return nullptr;
}

std::string env_name(const std::string& name) {
  std::string out = "COLONY_";
  for (char c : name)
    out += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

namespace detail {

std::optional<std::chrono::milliseconds> parse_duration(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  if (i == 0)
    return std::nullopt;
  auto n = opt::parse_int(s.substr(0, i));
  if (!n)
    return std::nullopt;
  auto unit = s.substr(i);
  if (unit == "ms" || unit.empty())
    return std::chrono::milliseconds(*n);
  if (unit == "s")
    return std::chrono::milliseconds(*n * 1000);
  if (unit == "min")
    return std::chrono::milliseconds(*n * 60'000);
  if (unit == "h")
    return std::chrono::milliseconds(*n * 3'600'000);
  return std::nullopt;
}

std::optional<std::int64_t> parse_size(const std::string& s) {
  for (auto [suffix, mult] : {std::pair{"KiB", 1024LL}, {"MiB", 1024LL * 1024}, {"GiB", 1024LL * 1024 * 1024}}) {
    std::string suf = suffix;
    if (s.size() > suf.size() && s.ends_with(suf)) {
      auto n = opt::parse_int(s.substr(0, s.size() - suf.size()));
      return n ? std::optional<std::int64_t>(*n * mult) : std::nullopt;
    }
  }
  return opt::parse_int(s);
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 3'600'000 == 0 && ms != 0)
    return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0)
    return std::to_string(ms / 60'000) + "min";
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

} // namespace detail

namespace opt {
namespace {

template <class Int>
option int_row(std::string name, std::string desc, std::int64_t min, std::int64_t max, Int node_config::*member,
               option_kind type) {
  option o{std::move(name), type, std::move(desc), min, max, {}, false, {}, {}, {}};
  o.set = [member, min, max, type](node_config& c, const std::string& v) -> std::optional<std::string> {
    auto n = type == option_kind::size ? detail::parse_size(v) : parse_int(v);
    if (!n)
      return "'" + v + "' is not " + (type == option_kind::size ? "a size (bytes, or with KiB/MiB)" : "an integer");
    if (*n < min || *n > max)
      return "'" + v + "' is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    c.*member = static_cast<Int>(*n);
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return std::to_string(c.*member); };
  return o;
}

} // namespace

std::optional<std::int64_t> parse_int(const std::string& s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    return std::nullopt;
  return v;
}

option integer(std::string name, std::string desc, std::int64_t min, std::int64_t max, int node_config::*member) {
  return int_row(std::move(name), std::move(desc), min, max, member, option_kind::integer);
}

option size(std::string name, std::string desc, std::int64_t min, std::int64_t max, std::int64_t node_config::*member) {
  return int_row(std::move(name), std::move(desc), min, max, member, option_kind::size);
}

option duration(std::string name, std::string desc, std::chrono::milliseconds min, std::chrono::milliseconds max,
                std::chrono::milliseconds node_config::*member) {
  option o{std::move(name), option_kind::duration, std::move(desc), min.count(), max.count(), {}, false, {}, {}, {}};
  o.set = [member, min, max](node_config& c, const std::string& v) -> std::optional<std::string> {
    auto d = detail::parse_duration(v);
    if (!d)
      return "'" + v + "' is not a duration (e.g. 500ms, 30s, 5min, 1h)";
    if (*d < min || *d > max)
      return "'" + v + "' is out of range [" + detail::format_duration(min) + ", " + detail::format_duration(max) + "]";
    c.*member = *d;
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return detail::format_duration(c.*member); };
  return o;
}

option string(std::string name, std::string desc, std::string node_config::*member, string_check check) {
  option o{std::move(name), option_kind::string, std::move(desc), 0, 0, {}, false, {}, {}, {}};
  o.set = [member, check](node_config& c, const std::string& v) -> std::optional<std::string> {
    if (check)
      if (auto err = check(c, v))
        return err;
    c.*member = v;
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return c.*member; };
  return o;
}

option secret(std::string name, std::string desc, std::string node_config::*member, string_check check) {
  auto o = string(std::move(name), std::move(desc), member, std::move(check));
  o.secret = true;
  o.get = [member](const node_config& c) { return (c.*member).empty() ? std::string{} : std::string{"***"}; };
  return o;
}

option boolean(std::string name, std::string desc, bool node_config::*member) {
  option o{std::move(name), option_kind::boolean, std::move(desc), 0, 0, {}, false, {}, {}, {}};
  o.set = [member](node_config& c, const std::string& v) -> std::optional<std::string> {
    if (v == "true" || v == "1")
      c.*member = true;
    else if (v == "false" || v == "0")
      c.*member = false;
    else
      return "'" + v + "' is not true or false";
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return std::string{c.*member ? "true" : "false"}; };
  return o;
}

option choice(std::string name, std::string desc, std::vector<std::string> choices, std::string node_config::*member) {
  option o{std::move(name), option_kind::choice, std::move(desc), 0, 0, choices, false, {}, {}, {}};
  o.set = [member, choices](node_config& c, const std::string& v) -> std::optional<std::string> {
    for (const auto& ch : choices)
      if (ch == v) {
        c.*member = v;
        return std::nullopt;
      }
    std::string list;
    for (const auto& ch : choices)
      list += (list.empty() ? "" : "|") + ch;
    return "'" + v + "' is not one of " + list;
  };
  o.get = [member](const node_config& c) { return c.*member; };
  return o;
}

option list(std::string name, std::string desc, std::vector<std::string> node_config::*member,
            std::function<std::optional<std::string>(const std::string&)> check) {
  option o{std::move(name), option_kind::string, std::move(desc), 0, 0, {}, false, {}, {}, {}};
  o.set = [member, check](node_config& c, const std::string& v) -> std::optional<std::string> {
    std::vector<std::string> items;
    for (std::size_t i = 0; !v.empty();) {
      auto j = v.find(',', i);
      auto item = v.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (auto err = check(item))
        return err;
      items.push_back(std::move(item));
      if (j == std::string::npos)
        break;
      i = j + 1;
    }
    c.*member = std::move(items);
    return std::nullopt;
  };
  o.get = [member](const node_config& c) {
    std::string out;
    for (const auto& item : c.*member)
      out += (out.empty() ? "" : ",") + item;
    return out;
  };
  return o;
}

option custom(std::string name, option_kind type, std::string desc,
              std::function<std::optional<std::string>(node_config&, const std::string&)> set,
              std::function<std::string(const node_config&)> get) {
  return option{std::move(name), type, std::move(desc), 0, 0, {}, false, std::move(set), std::move(get), {}};
}

std::optional<std::string> kafka_topic(node_config&, const std::string& v) {
  if (v.empty() || v.size() > 249 ||
      v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
    return "'" + v + "' is not a Kafka topic name ([a-zA-Z0-9._-], 1 to 249 characters)";
  return std::nullopt;
}

std::optional<std::string> not_empty(node_config&, const std::string& v) {
  if (v.empty())
    return "must not be empty";
  return std::nullopt;
}

} // namespace opt
} // namespace colony::runtime
