#include "router.hpp"
#include "params.hpp"

#include <algorithm>

namespace colony::adapters::http {

void router::add(std::string method, std::string path, std::optional<actors::access::permission> perm, handler fn) {
  auto segs = split_path(path);
  routes_.push_back(route{std::move(method), std::move(path), std::move(segs), fn, perm});
}

void router::add_tail(std::string method, std::string path, actors::access::permission perm, handler fn) {
  add(std::move(method), std::move(path), perm, fn);
  routes_.back().tail = true;
}

namespace {
bool same_template(const route& r, const std::vector<std::string>& segs) {
  if (r.tail ? segs.size() + 1 < r.segs.size() : r.segs.size() != segs.size())
    return false;
  // A tail route's last parameter matches whatever follows.
  std::size_t fixed = r.tail ? r.segs.size() - 1 : r.segs.size();
  for (std::size_t i = 0; i < fixed; ++i)
    if (!is_param(r.segs[i]) && r.segs[i] != segs[i])
      return false;
  return true;
}
} // namespace

const route* router::match(std::string_view method, std::vector<std::string>& segs,
                           std::vector<std::string>& methods) const {
  for (const auto& r : routes_) {
    if (!same_template(r, segs))
      continue;
    if (r.method != method && !(r.method == "GET" && method == "HEAD")) {
      methods.push_back(r.method);
      continue;
    }
    return &r;
  }
  return nullptr;
}

std::vector<std::string> router::methods_at(std::string_view path) const {
  auto segs = split_path(path);
  std::vector<std::string> methods;
  for (const auto& r : routes_)
    if (same_template(r, segs) && std::find(methods.begin(), methods.end(), r.method) == methods.end())
      methods.push_back(r.method);
  return methods;
}

} // namespace colony::adapters::http
