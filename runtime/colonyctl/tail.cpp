#include "tail.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

namespace colony::ctl {

using njson = nlohmann::json;

bool sse_reader::feed(std::string_view piece) {
  partial_.append(piece);
  std::size_t start = 0;
  for (auto nl = partial_.find('\n', start); nl != std::string::npos; nl = partial_.find('\n', start)) {
    std::string_view l{partial_.data() + start, nl - start};
    if (!l.empty() && l.back() == '\r')
      l.remove_suffix(1);
    start = nl + 1;
    if (!line(l)) {
      partial_.clear();
      return false;
    }
  }
  partial_.erase(0, start);
  return true;
}

bool sse_reader::line(std::string_view l) {
  if (l.empty()) { // the end of one event
    bool go = true;
    if (!data_.empty() || !name_.empty())
      go = f_(name_.empty() ? "message" : name_, id_, data_);
    name_.clear();
    data_.clear();
    return go;
  }
  if (l.front() == ':')
    return true; // a comment (keep-alive)
  auto colon = l.find(':');
  auto field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (field == "event")
    name_ = value;
  else if (field == "id")
    id_ = value;
  else if (field == "data") {
    if (!data_.empty())
      data_ += '\n';
    data_ += value;
  }
  return true;
}

namespace {

std::string text(const njson& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string{"-"};
}

std::string padded(std::string s, std::size_t width) {
  if (s.size() < width)
    s.append(width - s.size(), ' ');
  return s;
}

void print_row(const njson& item) {
  const auto& ev = item.contains("event") && item["event"].is_object() ? item["event"] : njson::object();
  std::string pos = item.contains("position") ? item["position"].dump() : "-";
  std::cout << padded(pos, 10) << padded(text(ev, "occurredAt"), 29) << padded(text(ev, "type"), 18)
            << padded(text(ev, "tenantId"), 38) << text(ev, "aggregateKind") << "/" << text(ev, "aggregateId")
            << std::endl; // a line as soon as it arrives: a tail read by a pipe or a person
}

} // namespace

int run_events_tail(const client& cl, const tail_options& o) {
  std::string tenant_id;
  if (!o.tenant.empty()) { // an id or a slug; one that does not exist would tail nothing forever: say so
    auto r = cl.request("GET", "/v1/admin/tenants/" + encode(o.tenant));
    auto doc = njson::parse(r.body, nullptr, false);
    if (r.status == 404) {
      std::cerr << "colonyctl: no tenant " << o.tenant << "\n";
      return 4;
    }
    if (r.status != 200 || !doc.is_object() || !doc.contains("tenantId")) {
      std::cerr << "colonyctl: cannot look up tenant " << o.tenant << ": " << r.status << " "
                << (doc.is_object() ? doc.value("detail", std::string{}) : r.body.substr(0, 200)) << "\n";
      return 1;
    }
    tenant_id = text(doc, "tenantId");
  }
  std::string target = "/v1/admin/stream?events=1&snapshots=0";
  if (!tenant_id.empty())
    target += "&tenant=" + encode(tenant_id);
  if (!o.type.empty())
    target += "&type=" + encode(o.type);
  if (o.after >= 0)
    target += "&after=" + std::to_string(o.after);
  if (!o.json)
    std::cout << padded("POSITION", 10) << padded("OCCURRED", 29) << padded("TYPE", 18) << padded("TENANT", 38)
              << "AGGREGATE" << std::endl;
  std::int64_t printed = 0;
  bool bad = false;
  sse_reader events{[&](const std::string& name, const std::string&, const std::string& data) {
    if (name == "dropped") {
      auto d = njson::parse(data, nullptr, false);
      std::cerr << "colonyctl: " << (d.is_object() ? d.value("dropped", std::int64_t{0}) : 0)
                << " events dropped: the node's buffer let them go before they were sent" << std::endl;
      return true;
    }
    if (name != "event")
      return true;
    auto item = njson::parse(data, nullptr, false);
    if (!item.is_object()) {
      bad = true;
      return false;
    }
    if (o.json)
      std::cout << item.dump() << std::endl;
    else
      print_row(item);
    return o.count == 0 || ++printed < o.count;
  }};
  auto r = cl.stream(target, [&](std::string_view piece) { return events.feed(piece); });
  if (r.status != 200) {
    auto doc = njson::parse(r.body, nullptr, false);
    std::cerr << "colonyctl: " << r.status << " "
              << (doc.is_object() ? doc.value("title", std::string{}) + ": " + doc.value("detail", std::string{})
                                  : r.body.substr(0, 200))
              << "\n";
    return r.status == 404 ? 4 : 1;
  }
  if (bad) {
    std::cerr << "colonyctl: the stream sent an event that is not JSON\n";
    return 1;
  }
  if (o.count > 0 && printed >= o.count)
    return 0;
  std::cerr << "colonyctl: the node ended the stream (shutting down?)\n";
  return 1;
}

} // namespace colony::ctl
