// What colonyctl prints: the answers of /v1/admin/* and /v1/cluster as
// tables (the JSON itself with -o json). Shared by the one-shot commands and
// `top`, which draws the same tables into a curses screen.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace colony::ctl {

/// Left-aligned columns, as wide as their widest cell.
class table {
public:
  explicit table(std::vector<std::string> head) : rows_{std::move(head)} {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  [[nodiscard]] std::vector<std::string> lines() const;

private:
  std::vector<std::vector<std::string>> rows_;
};

/// A JSON value as a cell: strings bare, null as "-", numbers as they are.
[[nodiscard]] std::string cell(const nlohmann::json& v);
/// Seconds as "3d4h", "5h12m", "7m3s", "42s".
[[nodiscard]] std::string duration(std::int64_t seconds);

/// The lines of each view (a title line where it helps, then a table).
[[nodiscard]] std::vector<std::string> nodes_view(const nlohmann::json& doc);
[[nodiscard]] std::vector<std::string> shards_view(const nlohmann::json& doc);
/// With `show_rates` (top): per kind, activations/passivations/crashes per
/// second since the previous sample (`rates`; "-" until there is one).
[[nodiscard]] std::vector<std::string> actors_view(const nlohmann::json& doc,
                                                   const std::map<std::string, std::vector<double>>& rates = {},
                                                   bool show_rates = false);
[[nodiscard]] std::vector<std::string> crashes_view(const nlohmann::json& doc);
[[nodiscard]] std::vector<std::string> tenant_view(const nlohmann::json& doc);
[[nodiscard]] std::vector<std::string> stores_view(const nlohmann::json& doc);
[[nodiscard]] std::vector<std::string> mailboxes_view(const nlohmann::json& doc);
[[nodiscard]] std::vector<std::string> actor_view(const nlohmann::json& doc);
/// "partial: node2 (not connected)" lines of a gathered answer; empty if complete.
[[nodiscard]] std::vector<std::string> partial_note(const nlohmann::json& doc);

} // namespace colony::ctl
