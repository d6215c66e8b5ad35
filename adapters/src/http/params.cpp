#include "params.hpp"

#include <algorithm>
#include <cctype>

namespace colony::adapters::http {

std::string pct_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc{} && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
      out += c;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segs;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos)
      j = path.size();
    segs.push_back(pct_decode(path.substr(i, j - i), false));
    i = j;
  }
  return segs;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    auto j = q.find('&', i);
    if (j == std::string_view::npos)
      j = q.size();
    auto part = q.substr(i, j - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      auto key = pct_decode(part.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::string{} : pct_decode(part.substr(eq + 1), true);
      out[key] = value; // last one wins
    }
    if (j == q.size())
      break;
    i = j + 1;
  }
  return out;
}

std::optional<std::string> media_type_param(std::string_view params, std::string_view name) {
  std::size_t i = 0;
  while (i < params.size()) {
    auto semi = params.find(';', i);
    auto part = params.substr(i, semi == std::string_view::npos ? std::string_view::npos : semi - i);
    i = semi == std::string_view::npos ? params.size() : semi + 1;
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      continue;
    auto trim = [](std::string_view v) {
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
      return v;
    };
    auto key = trim(part.substr(0, eq));
    auto value = trim(part.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    std::string k{key}, v{value};
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char ch) { return std::tolower(ch); });
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (k == name)
      return v;
  }
  return std::nullopt;
}

std::vector<std::pair<bool, std::optional<std::uint32_t>>> entity_tags(std::string_view v) {
  std::vector<std::pair<bool, std::optional<std::uint32_t>>> out;
  std::size_t i = 0;
  while (i < v.size() && out.size() < 64) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      ++i;
    if (i >= v.size())
      break;
    bool weak = v.substr(i, 2) == "W/";
    if (weak)
      i += 2;
    std::optional<std::uint32_t> version;
    if (i < v.size() && v[i] == '"') {
      auto close = v.find('"', i + 1);
      if (close == std::string_view::npos)
        break;
      auto inner = v.substr(i + 1, close - i - 1);
      std::uint32_t n = 0;
      auto [p, ec] = std::from_chars(inner.data(), inner.data() + inner.size(), n);
      if (ec == std::errc{} && p == inner.data() + inner.size() && !inner.empty())
        version = n;
      i = close + 1;
    } else {
      auto comma = v.find(',', i);
      i = comma == std::string_view::npos ? v.size() : comma;
    }
    out.emplace_back(weak, version);
  }
  return out;
}

std::vector<std::uint32_t> if_match_versions(std::string_view v) {
  if (v.find_first_not_of(" \t") == std::string_view::npos || v.find_first_not_of(" \t*") == std::string_view::npos)
    return {};
  std::vector<std::uint32_t> out;
  for (const auto& [weak, version] : entity_tags(v))
    if (!weak && version)
      out.push_back(*version);
  if (out.empty())
    out.push_back(0);
  return out;
}

bool none_match_hits(std::string_view header, std::uint32_t version) {
  if (header.find_first_not_of(" \t") == std::string_view::npos)
    return false;
  if (header.find_first_not_of(" \t*") == std::string_view::npos)
    return true;
  for (const auto& [weak, v] : entity_tags(header))
    if (v && *v == version)
      return true;
  return false;
}

} // namespace colony::adapters::http
