#include "aiqosctl/render.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <sstream>

namespace aiqos::ctl {

using nlohmann::json;

namespace {

std::string scalar(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) {
    std::ostringstream o;
    double d = v.get<double>();
    o.precision(d != 0 && std::fabs(d) < 1 ? 3 : 6);
    o << d;
    return o.str();
  }
  if (v.is_number()) return v.dump();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Aligned columns; numbers right-aligned, text left-aligned.
void print_table(std::ostream& out, const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t c = 0; c < head.size(); ++c) w[c] = head[c].size();
  for (auto& r : rows)
    for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
  auto numeric = [](const std::string& s) {
    return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s == "-");
  };
  auto line = [&](const std::vector<std::string>& r, bool header) {
    std::string s;
    for (size_t c = 0; c < w.size(); ++c) {
      std::string cell = c < r.size() ? r[c] : "";
      std::string pad(w[c] - std::min(w[c], cell.size()), ' ');
      bool right = !header && c > 0 && numeric(cell);
      s += right ? pad + cell : cell + (c + 1 < w.size() ? pad : "");
      if (c + 1 < w.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(head, true);
  for (auto& r : rows) line(r, false);
}

std::string human_count(uint64_t v) { return std::to_string(v); }

// A count in decimal units: "20 Mbit/s", "64 KB".
std::string with_unit(uint64_t n, const std::array<const char*, 5>& units) {
  double x = static_cast<double>(n);
  size_t u = 0;
  while (x >= 1000 && u + 1 < units.size()) x /= 1000, ++u;
  std::ostringstream o;
  o << x << ' ' << units[u];
  return o.str();
}

std::string rate_text(const json& v) {
  if (!v.is_number_unsigned()) return scalar(v);
  if (v.get<uint64_t>() == 0) return "unlimited";
  return with_unit(v.get<uint64_t>(), {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"});
}

std::string size_text(const json& v) {
  if (!v.is_number_unsigned()) return scalar(v);
  return with_unit(v.get<uint64_t>(), {"B", "KB", "MB", "GB", "TB"});
}

// Flattens one level of nesting: {"drops": {"tx_full": 1}} -> "drops.tx_full".
void flatten(const json& obj, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  for (auto& [k, v] : obj.items()) {
    if (v.is_object() && prefix.empty())
      flatten(v, k + ".", out);
    else
      out.emplace_back(prefix + k, v);
  }
}

void print_generic_table(std::ostream& out, const json& arr) {
  std::vector<std::string> cols;
  std::vector<std::map<std::string, std::string>> rows;
  for (auto& e : arr) {
    std::vector<std::pair<std::string, json>> f;
    if (e.is_object())
      flatten(e, "", f);
    else
      f.emplace_back("value", e);
    std::map<std::string, std::string> row;
    for (auto& [k, v] : f) {
      if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
      row[k] = scalar(v);
    }
    rows.push_back(std::move(row));
  }
  // JSON objects arrive with sorted keys: put the identifying columns first.
  static const std::vector<std::string> kFirst = {"port", "worker", "lcore", "name", "key", "class",
                                                  "client", "src", "server", "dst", "proto", "model", "server_name",
                                                  "endpoint", "tenant"};
  auto rank = [](const std::string& c) {
    auto it = std::find(kFirst.begin(), kFirst.end(), c);
    return it == kFirst.end() ? kFirst.size() : static_cast<size_t>(it - kFirst.begin());
  };
  std::stable_sort(cols.begin(), cols.end(), [&](auto& a, auto& b) { return rank(a) < rank(b); });
  std::vector<std::vector<std::string>> cells;
  for (auto& r : rows) {
    std::vector<std::string> line;
    for (auto& c : cols) line.push_back(r.contains(c) ? r[c] : "");
    cells.push_back(std::move(line));
  }
  std::vector<std::string> head;
  for (auto& c : cols) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(), ::toupper);
    head.push_back(h);
  }
  print_table(out, head, cells);
}

// Objects as indented "key: value" lines; arrays of objects as tables.
void print_tree(std::ostream& out, const json& v, int indent = 0) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    for (auto& [k, x] : v.items()) {
      if (x.is_object() && !x.empty()) {
        out << pad << k << ":\n";
        print_tree(out, x, indent + 2);
      } else if (x.is_array() && !x.empty() && x[0].is_object()) {
        out << pad << k << ":\n";
        std::ostringstream t;
        print_generic_table(t, x);
        std::istringstream in(t.str());
        for (std::string l; std::getline(in, l);) out << pad << "  " << l << '\n';
      } else {
        out << pad << k << ": " << scalar(x) << '\n';
      }
    }
  } else if (v.is_array() && !v.empty() && v[0].is_object()) {
    print_generic_table(out, v);
  } else if (v.is_array()) {
    for (auto& x : v) out << pad << scalar(x) << '\n';
  } else if (!v.is_null()) {
    out << pad << scalar(v) << '\n';
  }
}

void print_classes(std::ostream& out, const json& data) {
  if (!data.is_array()) return print_tree(out, data);
  std::vector<std::vector<std::string>> rows;
  for (auto& c : data) {
    if (!c.is_object()) continue;
    auto get = [&](const char* k) { return c.contains(k) ? c[k] : json(); };
    rows.push_back({scalar(get("name")), scalar(get("priority")), rate_text(get("rate_bps")),
                    get("rate_bps") == json(0) ? "-" : size_text(get("burst_bytes")), scalar(get("exceed")), scalar(get("frames")),
                    scalar(get("bytes")), scalar(get("drops")), scalar(get("requests")),
                    scalar(get("active_flows"))});
  }
  print_table(out, {"CLASS", "PRIO", "RATE", "BURST", "EXCEED", "FRAMES", "BYTES", "DROPS", "REQUESTS", "FLOWS"},
              rows);
}

// `stats --by class|model|endpoint|tenant`: StatsAgg::snapshot's shape.
void print_request_stats(std::ostream& out, const json& d) {
  std::vector<std::vector<std::string>> rows;
  auto ms = [](const json& lat, const char* q) {
    return lat.is_object() && lat.contains(q) ? scalar(lat[q]) : std::string("-");
  };
  auto tok = [](const json& k, const char* f) {
    if (!k.contains("tokens") || !k["tokens"].is_object() || !k["tokens"].contains(f) || k["tokens"][f].is_null())
      return std::string("-");
    const json& v = k["tokens"][f];
    return v.is_number_float() ? scalar(v) : human_count(v.get<uint64_t>());
  };
  for (auto& k : d["keys"]) {
    const json& st = k.contains("status") ? k["status"] : json::object();
    auto sc = [&](const char* c) { return st.contains(c) ? scalar(st[c]) : std::string("0"); };
    uint64_t errs = k.value("incomplete", uint64_t{0}) + k.value("reset", uint64_t{0});
    rows.push_back({scalar(k["key"]), scalar(k["requests"]), size_text(k["req_bytes"]),
                    size_text(k["resp_bytes"]), sc("2xx"), sc("4xx"), sc("5xx"), human_count(errs),
                    ms(k["ttfb_ms"], "p50"), ms(k["ttfb_ms"], "p99"), ms(k["duration_ms"], "p50"),
                    ms(k["duration_ms"], "p99"), ms(k["ttft_ms"], "p50"), ms(k["ttft_ms"], "p99"),
                    ms(k["tpot_ms"], "p50"), ms(k["tpot_ms"], "p99"), tok(k, "input"), tok(k, "output"),
                    tok(k, "output_per_s")});
  }
  std::string by = d.value("by", "key");
  std::transform(by.begin(), by.end(), by.begin(), ::toupper);
  print_table(out,
              {by, "REQUESTS", "REQ_BYTES", "RESP_BYTES", "2XX", "4XX", "5XX", "INCOMPL/RST",
               "TTFB_P50_MS", "TTFB_P99_MS", "DUR_P50_MS", "DUR_P99_MS", "TTFT_P50_MS", "TTFT_P99_MS",
               "TPOT_P50_MS", "TPOT_P99_MS", "IN_TOK", "OUT_TOK", "OUT_TOK/S"},
              rows);
  if (d.value("overflow", uint64_t{0}) > 0)
    out << "(" << scalar(d["overflow"]) << " requests counted under (other): more than "
        << scalar(d["limit"]) << " distinct keys)\n";
  // Fleet budgets (stats --by tenant|class with a fleet section): this box's
  // part of each budget's current window beside the fleet's total.
  if (d.contains("fleet") && d["fleet"].is_object()) {
    const json& f = d["fleet"];
    out << "\nfleet budgets: redis " << scalar(f.value("redis", json())) << ", mode " << scalar(f.value("mode", json()))
        << ", syncs " << scalar(f.value("syncs", json())) << ", sync errors " << scalar(f.value("sync_errors", json()))
        << ", last sync " << scalar(f.value("last_sync_age_s", json())) << " s ago\n";
    std::vector<std::vector<std::string>> fr;
    if (f.contains("budgets") && f["budgets"].is_array())
      for (auto& b : f["budgets"])
        fr.push_back({scalar(b.value("class", json())), scalar(b.value("budget", json())), scalar(b.value("limit", json())),
                      scalar(b.value("local", json())), scalar(b.value("fleet", json())),
                      scalar(b.value("allow_per_worker", json()))});
    print_table(out, {"CLASS", "BUDGET", "LIMIT", "LOCAL", "FLEET", "ALLOW/WORKER"}, fr);
  }
}

}  // namespace

void render(std::ostream& out, const std::string& cmd, const json& data, bool as_json) {
  if (as_json) {
    out << data.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
    return;
  }
  if (cmd == "classes") return print_classes(out, data);
  if (cmd == "policy.reload" && data.is_object() && data.contains("restart_needed")) {
    // Limits the reload could not apply: in force only after a restart.
    json rest = data;
    json keys = rest["restart_needed"];
    rest.erase("restart_needed");
    print_tree(out, rest);
    if (keys.is_array() && !keys.empty()) {
      std::string list;
      for (auto& k : keys) list += (list.empty() ? "" : ", ") + scalar(k);
      out << "warning: " << list << " changed: limits apply at start; restart aiqosd to apply them\n";
    }
    return;
  }
  if (cmd == "stats" && data.is_object() && data.contains("keys") && data["keys"].is_array())
    return print_request_stats(out, data);
  if (data.is_null()) {
    out << "ok\n";
    return;
  }
  // A single array member (e.g. {"ports": [...]}) reads best as a table.
  if (data.is_object() && data.size() == 1 && data.begin()->is_array()) return print_tree(out, *data.begin());
  print_tree(out, data);
}

}  // namespace aiqos::ctl
