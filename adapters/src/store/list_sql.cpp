#include "backend.hpp"

namespace colony::adapters::store {

list_sql build_list_sql(const actors::list_query& q, const std::function<std::string(int)>& ph) {
  list_sql out;
  bool users = q.kind == actors::entity_kind::user;
  auto add = [&](std::string v, bool number = false) {
    out.text_params.push_back(std::move(v));
    out.is_number.push_back(number);
    return ph(static_cast<int>(out.text_params.size()));
  };
  std::string col;
  bool numeric = false;
  if (q.sort_field == "createdAt") {
    col = "created_us";
    numeric = true;
  } else if (q.sort_field == "name") {
    col = "name";
  } else if (q.sort_field == "slug" && !users) {
    col = "slug";
  } else if (q.sort_field == "email" && users) {
    col = "email_lc";
  } else {
    col = "created_us";
    numeric = true;
  }
  std::string sql = users ? "SELECT state, 0, " + col + ", id FROM users WHERE tenant_id = " + add(q.tenant_id)
                          : "SELECT state, user_count, " + col + ", id FROM tenants WHERE 1=1";
  if (!q.status.empty())
    sql += " AND status = " + add(q.status);
  if (!users && !q.plan.empty())
    sql += " AND plan = " + add(q.plan);
  if (users && !q.role.empty())
    sql += " AND roles LIKE " + add("%," + q.role + ",%");
  if (users && !q.q.empty()) {
    std::string pattern = "%";
    for (char c : q.q) {
      char lc = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lc == '%' || lc == '_' || lc == '\\')
        pattern += '\\';
      pattern += lc;
    }
    pattern += '%';
    auto p1 = add(pattern);
    auto p2 = add(pattern);
    sql += " AND (email_lc LIKE " + p1 + " ESCAPE '\\' OR lower(name) LIKE " + p2 + " ESCAPE '\\')";
  }
  if (q.has_after) {
    const char* cmp = q.descending ? "<" : ">";
    auto value = numeric ? std::to_string(q.after_number) : q.after_text;
    auto v1 = add(value, numeric);
    auto v2 = add(value, numeric);
    auto id = add(q.after_id);
    sql += " AND (" + col + " " + cmp + " " + v1 + " OR (" + col + " = " + v2 + " AND id " + cmp + " " + id + "))";
  }
  const char* dir = q.descending ? " DESC" : " ASC";
  sql += " ORDER BY " + col + dir + ", id" + dir;
  sql += " LIMIT " + std::to_string(q.limit + 1);
  out.sql = std::move(sql);
  return out;
}

std::string encode_list(const std::vector<std::string>& items) {
  if (items.empty())
    return {};
  std::string s = ",";
  for (const auto& x : items)
    s += x + ",";
  return s;
}

std::vector<std::string> decode_list(const std::string& text) {
  std::vector<std::string> v;
  std::size_t i = 1;
  while (i < text.size()) {
    auto j = text.find(',', i);
    if (j == std::string::npos)
      break;
    v.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  return v;
}

std::string duplicate_field(std::string_view text) {
  std::string_view name;
  if (auto q = text.find('"'); q != std::string_view::npos) { // PostgreSQL: the constraint's name in quotes
    auto end = text.find('"', q + 1);
    name = text.substr(q + 1, end == std::string_view::npos ? std::string_view::npos : end - q - 1);
  } else if (auto f = text.find("failed: "); f != std::string_view::npos) { // SQLite: table.column[, ...]
    name = text.substr(f + 8);
    if (auto nl = name.find_first_of("\r\n"); nl != std::string_view::npos)
      name = name.substr(0, nl);
  }
  static const std::pair<std::string_view, std::string_view> known[] = {
    {"tenants_slug_key", "slug"},
    {"tenants.slug", "slug"},
    {"users_tenant_id_email_lc_key", "email"},
    {"users.tenant_id, users.email_lc", "email"},
    {"processed_messages_pkey", "message_key"},
    {"processed_messages.message_key", "message_key"},
  };
  for (auto [constraint, field] : known)
    if (name == constraint)
      return std::string{field};
  return "id";
}

} // namespace colony::adapters::store
