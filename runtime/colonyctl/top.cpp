#include "top.hpp"

#include <ctime>
#include <curses.h>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

#include "views.hpp"

namespace colony::ctl {

namespace {

using njson = nlohmann::json;
using clock = std::chrono::steady_clock;

/// One GET as JSON; an error line instead when it fails.
njson fetch(const client& cl, const std::string& target, std::string& error) {
  try {
    auto r = cl.request("GET", target);
    auto doc = njson::parse(r.body, nullptr, false);
    if (r.status >= 400 || doc.is_discarded()) {
      error = target + ": HTTP " + std::to_string(r.status) +
        (doc.is_object() ? " " + doc.value("detail", std::string{}) : "");
      return njson();
    }
    return doc;
  } catch (const transport_error& e) {
    error = e.what();
    return njson();
  }
}

struct sample {
  clock::time_point at;
  std::map<std::string, std::vector<double>> totals; // kind → activations, passivations, crashes
};

sample totals_of(const njson& actors) {
  sample s{clock::now(), {}};
  for (const auto& k : actors.value("kinds", njson::array()))
    s.totals[k.value("kind", std::string{})] = {k.value("activations", 0.0), k.value("passivations", 0.0),
                                                k.value("crashes", 0.0)};
  return s;
}

std::map<std::string, std::vector<double>> rates_between(const sample& before, const sample& now) {
  std::map<std::string, std::vector<double>> out;
  double secs = std::chrono::duration<double>(now.at - before.at).count();
  if (secs <= 0)
    return out;
  for (const auto& [kind, t] : now.totals) {
    auto it = before.totals.find(kind);
    if (it == before.totals.end())
      continue;
    std::vector<double> r;
    for (std::size_t i = 0; i < t.size(); ++i)
      r.push_back(std::max(0.0, (t[i] - it->second[i]) / secs));
    out[kind] = std::move(r);
  }
  return out;
}

void draw(const std::vector<std::string>& lines) {
  int rows = 0, cols = 0;
  getmaxyx(stdscr, rows, cols);
  erase();
  for (int i = 0; i < rows && i < static_cast<int>(lines.size()); ++i) {
    if (i == 0)
      attron(A_REVERSE);
    mvaddnstr(i, 0, lines[static_cast<std::size_t>(i)].c_str(), cols);
    if (i == 0)
      attroff(A_REVERSE);
  }
  refresh();
}

} // namespace

int run_top(const client& cl, std::chrono::milliseconds interval) {
  if (isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0) {
    fprintf(stderr, "colonyctl: top needs a terminal (use nodes or actors top -o json in scripts)\n");
    return 1;
  }
  if (initscr() == nullptr) {
    fprintf(stderr, "colonyctl: cannot use the terminal\n");
    return 1;
  }
  cbreak();
  noecho();
  curs_set(0);
  keypad(stdscr, TRUE);
  std::optional<sample> last;
  std::vector<std::string> lines;
  bool paused = false;
  auto next = clock::now();
  for (;;) {
    if (clock::now() >= next && !paused) {
      std::string error;
      auto nodes = fetch(cl, "/v1/admin/nodes", error);
      auto actors = error.empty() ? fetch(cl, "/v1/admin/actors?top=10", error) : njson();
      auto crashes = error.empty() ? fetch(cl, "/v1/admin/crashes?limit=5", error) : njson();
      char when[32];
      auto t = std::time(nullptr);
      std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&t));
      const auto& ep = cl.where();
      lines = {"colonyctl top  " + std::string(ep.tls ? "https://" : "http://") + ep.host + ":" + ep.port + "  " +
               when + "  every " + std::to_string(interval.count()) + " ms   q quit  p pause  r refresh"};
      if (!error.empty()) {
        lines.push_back("");
        lines.push_back("error: " + error);
      } else {
        auto now = totals_of(actors);
        lines.emplace_back("");
        for (auto& l : nodes_view(nodes))
          lines.push_back(std::move(l));
        lines.emplace_back("");
        for (auto& l : actors_view(actors, last ? rates_between(*last, now) : decltype(now.totals){}, true))
          lines.push_back(std::move(l));
        lines.emplace_back("");
        lines.emplace_back("last crashes");
        for (auto& l : crashes_view(crashes))
          lines.push_back(std::move(l));
        last = now;
      }
      draw(lines);
      next = clock::now() + interval;
    }
    timeout(100);
    int ch = getch();
    if (ch == 'q' || ch == 'Q')
      break;
    if (ch == 'p' || ch == 'P') {
      paused = !paused;
      if (!lines.empty()) {
        lines[0] += paused ? "  [PAUSED]" : "";
        draw(lines);
      }
    }
    if (ch == 'r' || ch == 'R')
      next = clock::now();
    if (ch == KEY_RESIZE)
      draw(lines);
  }
  endwin();
  return 0;
}

} // namespace colony::ctl
