#include "control/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <map>
#include <span>
#include <vector>

#include "classify/endpoint.h"
#include "classify/genai.h"
#include "control/ctl_server.h"

namespace aiqos {

const char* otel_operation_name(std::string_view e) noexcept {
  if (e == "chat_completions" || e == "responses" || e == "anthropic_messages" || e == "ollama_chat")
    return "chat";
  if (e == "completions" || e == "ollama_generate" || e == "triton_generate" || e == "tgi_generate")
    return "text_completion";
  if (e == "embeddings") return "embeddings";
  if (e == "kserve_infer" || e == "grpc_model_infer") return "infer";
  return "other";
}

std::string prom_escape(std::string_view v) {
  std::string s;
  s.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      s += "\\\\";
    else if (c == '"')
      s += "\\\"";
    else if (c == '\n')
      s += "\\n";
    else
      s += c;
  }
  return s;
}

namespace {

using nlohmann::json;

std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string num(uint64_t v) { return std::to_string(v); }

// One metric family: HELP and TYPE, then samples appended by the caller.
struct Family {
  std::string text;
  bool has_samples = false;
  Family(std::string_view name, std::string_view type, std::string_view help) {
    text.append("# HELP ").append(name).append(" ").append(help).append("\n");
    text.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  void sample(std::string_view name, std::string_view labels, const std::string& value) {
    text.append(name);
    if (!labels.empty()) text.append("{").append(labels).append("}");
    text.append(" ").append(value).append("\n");
    has_samples = true;
  }
};

struct Labels {
  std::string s;
  Labels& add(std::string_view k, std::string_view v) {
    if (!s.empty()) s += ',';
    s.append(k).append("=\"").append(prom_escape(v)).append("\"");
    return *this;
  }
};

void histogram(Family& f, std::string_view name, const std::string& labels, const Histogram& h) {
  auto cum = h.cumulative();
  auto bounds = h.export_bounds();
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < bounds.size(); ++i)
    f.sample(bucket, labels + (labels.empty() ? "" : ",") + "le=\"" + num(bounds[i]) + "\"", num(cum[i]));
  f.sample(bucket, labels + (labels.empty() ? "" : ",") + "le=\"+Inf\"", num(h.count()));
  f.sample(std::string(name) + "_sum", labels, num(h.sum()));
  f.sample(std::string(name) + "_count", labels, num(h.count()));
}

// Fleet status fields (FleetSync::status(), JSON): any non-negative integer.
bool is_count(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && is_count(*it) ? it->get<uint64_t>() : 0;
}

// Fleet budgets on Redis (control/fleet_sync.h status()), when configured.
void fleet_metrics(std::string& out, const json& f) {
  if (!f.is_object()) return;
  auto gauge = [&](const char* name, const char* type, const char* help, double v) {
    Family g(name, type, help);
    g.sample(name, "", num(v));
    out += g.text;
  };
  auto dbl = [&](const char* key) { auto it = f.find(key); return it != f.end() && it->is_number() ? it->get<double>() : 0.0; };
  gauge("aiqos_fleet_mode", "gauge", "1 while fleet budgets are enforced from Redis' figures, 0 in local mode (each box its local share).",
        f.value("mode", "") == "fleet" ? 1 : 0);
  gauge("aiqos_fleet_syncs_total", "counter", "Successful fleet syncs with Redis.", static_cast<double>(u64(f, "syncs")));
  gauge("aiqos_fleet_sync_errors_total", "counter", "Failed fleet syncs (connect, AUTH, command error or timeout).",
        static_cast<double>(u64(f, "sync_errors")));
  gauge("aiqos_fleet_outages_total", "counter", "Switches from fleet to local mode.", static_cast<double>(u64(f, "outages")));
  gauge("aiqos_fleet_sync_lag_seconds", "gauge", "Duration of the last successful sync round with Redis.", dbl("sync_lag_s"));
  gauge("aiqos_fleet_sync_age_seconds", "gauge", "Time since the last successful sync (-1: none yet).", dbl("last_sync_age_s"));
  if (auto b = f.find("budgets"); b != f.end() && b->is_array()) {
    Family u("aiqos_fleet_budget_used", "gauge",
             "Use of a fleet budget in its current window: this box's part (scope=local) and the fleet's total (scope=fleet).");
    Family l("aiqos_fleet_budget_limit", "gauge", "A fleet budget per window (requests per second, or tokens per minute).");
    for (const auto& k : *b) {
      if (!k.is_object()) continue;
      std::string cls = k.value("class", "?"), bud = k.value("budget", "?");
      u.sample("aiqos_fleet_budget_used", Labels().add("class", cls).add("budget", bud).add("scope", "local").s,
               num(k.value("local", 0.0)));
      u.sample("aiqos_fleet_budget_used", Labels().add("class", cls).add("budget", bud).add("scope", "fleet").s,
               num(k.value("fleet", 0.0)));
      l.sample("aiqos_fleet_budget_limit", Labels().add("class", cls).add("budget", bud).s, num(k.value("limit", 0.0)));
    }
    if (u.has_samples) out += u.text + l.text;
  }
}

// Families in the order first named, each with all its samples (the text
// format wants a family's samples together).
class Families {
 public:
  Family& get(const char* name, StatKind kind, const char* help) {
    auto [it, fresh] = index_.try_emplace(name, list_.size());
    if (fresh) list_.emplace_back(name, kind == StatKind::counter ? "counter" : "gauge", help);
    return list_[it->second];
  }
  void append_to(std::string& out) const {
    for (const Family& f : list_)
      if (f.has_samples) out += f.text;
  }

 private:
  std::vector<Family> list_;
  std::map<std::string, size_t, std::less<>> index_;
};

std::string join_labels(const std::string& a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return a;
  return a + "," + std::string(b);
}

// Every visited field as a sample of its family, with the row's labels
// (port, worker, class) and the field's own; arrays one sample per element.
struct PromFields {
  Families& fam;
  std::string labels;
  double scale = 0;  // non-zero: values are converted (nanoseconds to seconds)
  void operator()(const StatField& f, uint64_t v) const {
    fam.get(f.prom, f.kind, f.help)
        .sample(f.prom, join_labels(labels, f.labels), scale != 0 ? num(static_cast<double>(v) * scale) : num(v));
  }
  void operator()(const StatArray& a, std::span<const uint64_t> v) const {
    Family& f = fam.get(a.prom, a.kind, a.help);
    for (size_t i = a.first; i < v.size(); ++i)
      if (!a.nonzero_only || v[i] != 0) f.sample(a.prom, join_labels(labels, Labels().add(a.label, a.element(i)).s), num(v[i]));
  }
};

void dataplane_metrics(std::string& out, const DataplaneStats& s) {
  Families fam;
  for (const PortStats& p : s.ports) PortStats::visit(p, PromFields{fam, Labels().add("port", num(uint64_t{p.port})).s});
  for (const WorkerStats& w : s.workers)
    WorkerStats::visit(w, PromFields{fam, Labels().add("worker", num(uint64_t{w.worker})).s});
  if (!s.workers.empty()) {
    const ClassifierStats total = classifier_total(s);
    ClassifierStats::visit(total, PromFields{fam, ""});
  }
  for (const ClassStats& c : s.classes) ClassStats::visit(c, PromFields{fam, Labels().add("class", c.name).s});
  LatencyStats::visit(s.latency_ns, PromFields{fam, "", 1e-9});
  DataplaneStats::visit(s, PromFields{fam, ""});
  fam.append_to(out);
}

// Build and policy reloads (deploy/grafana dashboard, deploy/prometheus alerts).
void operations_metrics(std::string& out, const ApplianceMetrics& a) {
  Family f("aiqos_build_info", "gauge", "Always 1; labels: aiqosd's version and git describe.");
  f.sample("aiqos_build_info", Labels().add("version", a.version).add("git", a.git).s, "1");
  Family g("aiqos_policy_generation", "gauge", "Generation of the policy in force (1 at start, +1 a reload).");
  g.sample("aiqos_policy_generation", "", num(a.policy_generation));
  Family r("aiqos_policy_reloads_total", "counter", "Policy reloads (SIGHUP, aiqosctl), by result.");
  r.sample("aiqos_policy_reloads_total", Labels().add("result", "ok").s, num(a.reloads_ok));
  r.sample("aiqos_policy_reloads_total", Labels().add("result", "failed").s, num(a.reloads_failed));
  out += f.text + g.text + r.text;
}

}  // namespace

std::string render_metrics(const StatsAgg& agg, const ApplianceMetrics* appliance) {
  Family ttft("gen_ai_server_time_to_first_token_seconds", "histogram",
              "Time from the end of the request to its first content-bearing response event (the first token), "
              "as seen on the wire; successful responses.");
  Family tpot("gen_ai_server_time_per_output_token_seconds", "histogram",
              "Mean time per output token after the first, per streamed response; successful responses.");
  Family usage("gen_ai_client_token_usage", "histogram",
               "Input and output tokens per request: reported by the server (usage), counted from its stream, or "
               "estimated.");
  Family dur("gen_ai_server_request_duration_seconds", "histogram",
             "Time from the request headers to the end of the response, as seen on the wire.");
  Family reqs("aiqos_requests_total", "counter",
              "Finished inference requests by class, model, endpoint and HTTP status class.");
  Family reqb("aiqos_request_bytes_total", "counter", "Request body bytes.");
  Family respb("aiqos_response_bytes_total", "counter", "Response body bytes.");
  agg.for_each_series([&](const SeriesKey& k, const SeriesStats& s) {
    std::string base = Labels().add("class", k.klass).add("model", k.model).add("endpoint", k.endpoint).s;
    for (size_t i = 0; i < s.requests.size(); ++i)
      if (s.requests[i])
        reqs.sample("aiqos_requests_total", base + "," + Labels().add("status_class", kStatusClassNames[i]).s,
                    num(s.requests[i]));
    reqb.sample("aiqos_request_bytes_total", base, num(s.req_bytes));
    respb.sample("aiqos_response_bytes_total", base, num(s.resp_bytes));
    std::string gl = Labels()
                         .add("gen_ai_request_model", k.model)
                         .add("gen_ai_operation_name", otel_operation_name(k.endpoint))
                         .add("endpoint", k.endpoint)
                         .add("class", k.klass)
                         .s;
    auto ep = endpoint_from_name(k.endpoint);
    const char* provider = ep ? provider_name(provider_of(*ep)) : "";
    if (*provider) gl += "," + Labels().add("gen_ai_provider_name", provider).s;
    if (!k.response_model.empty()) gl += "," + Labels().add("gen_ai_response_model", k.response_model).s;
    if (s.ttft.count()) histogram(ttft, "gen_ai_server_time_to_first_token_seconds", gl, s.ttft);
    if (s.tpot.count()) histogram(tpot, "gen_ai_server_time_per_output_token_seconds", gl, s.tpot);
    for (auto& [err, h] : s.tokens) {
      std::string el = err.empty() ? gl : gl + "," + Labels().add("error_type", err).s;
      histogram(usage, "gen_ai_client_token_usage", el + "," + Labels().add("gen_ai_token_type", "input").s, h[0]);
      histogram(usage, "gen_ai_client_token_usage", el + "," + Labels().add("gen_ai_token_type", "output").s, h[1]);
    }
    if (s.duration.count()) histogram(dur, "gen_ai_server_request_duration_seconds", gl, s.duration);
  });
  auto ov = agg.overflow();
  Family over("aiqos_stats_overflow_total", "counter",
              "Requests counted under the (other) key because a statistics table was full.");
  over.sample("aiqos_stats_overflow_total", Labels().add("table", "class").s, num(ov.classes));
  over.sample("aiqos_stats_overflow_total", Labels().add("table", "model").s, num(ov.models));
  over.sample("aiqos_stats_overflow_total", Labels().add("table", "tenant").s, num(ov.tenants));
  over.sample("aiqos_stats_overflow_total", Labels().add("table", "series").s, num(ov.series));

  std::string out;
  for (Family* f : {&ttft, &tpot, &usage, &dur, &reqs, &reqb, &respb})
    if (f->has_samples) out += f->text;
  out += over.text;
  if (appliance != nullptr) {
    dataplane_metrics(out, appliance->dp);
    operations_metrics(out, *appliance);
    fleet_metrics(out, appliance->fleet);
  }
  return out;
}

bool parse_listen_address(std::string_view s, std::string& host, uint16_t& port) {
  size_t colon;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = std::string(s.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    host = std::string(s.substr(0, colon));
    if (host.find(':') != std::string::npos) return false;  // bare IPv6 needs brackets
  }
  std::string_view p = s.substr(colon + 1);
  unsigned v = 0;
  auto r = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || r.ec != std::errc() || r.ptr != p.data() + p.size() || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

MetricsServer::MetricsServer(const StatsAgg& agg, ApplianceFn appliance, MetricsConfig cfg)
    : agg_(agg), appliance_(std::move(appliance)), cfg_(std::move(cfg)) {}

MetricsServer::~MetricsServer() { stop(); }

namespace {

std::string http(int code, const char* reason, std::string_view ctype, std::string_view body,
                 bool head_only = false, std::string_view extra = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  r += "Content-Type: ";
  r.append(ctype).append("\r\n");
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r.append(extra);
  r += "Connection: close\r\n\r\n";
  if (!head_only) r.append(body);
  return r;
}

}  // namespace

std::string MetricsServer::respond(std::string_view head) {
  size_t eol = head.find_first_of("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/")
    return http(400, "Bad Request", "text/plain", "bad request\n");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") return http(404, "Not Found", "text/plain", "only /metrics is served here\n");
  if (method != "GET" && method != "HEAD")
    return http(405, "Method Not Allowed", "text/plain", "GET only\n", false, "Allow: GET, HEAD\r\n");
  std::optional<ApplianceMetrics> a;
  if (appliance_) {
    try {
      a = appliance_();
    } catch (const std::exception&) {
      a.reset();  // request metrics are still worth serving
    }
  }
  return http(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render_metrics(agg_, a ? &*a : nullptr),
              method == "HEAD");
}

bool MetricsServer::start(std::string& error) {
  std::string host;
  uint16_t port = 0;
  if (!parse_listen_address(cfg_.listen, host, port)) {
    error = "bad metrics address '" + cfg_.listen + "' (want HOST:PORT or [IPV6]:PORT)";
    return false;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool loopback = false;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
    loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
    loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
  } else {
    error = "bad metrics address '" + cfg_.listen + "': '" + host + "' is not an IP address";
    return false;
  }
  if (!loopback && !cfg_.allow_remote) {
    error = "refusing to serve metrics on " + cfg_.listen +
            ": not a loopback address (metrics name models and tenants; allow it explicitly)";
    return false;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0) {
    error = "cannot listen on " + cfg_.listen + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  server_ = std::make_unique<StreamServer>(
      StreamServerConfig{.max_conns = cfg_.max_conns,
                         .max_request = 8192,
                         .read_timeout_ms = cfg_.timeout_ms,
                         .write_timeout_ms = cfg_.timeout_ms},
      [](std::string_view buf) {
        size_t e = buf.find("\r\n\r\n");
        if (e != std::string_view::npos) return e + 4;
        e = buf.find("\n\n");
        return e == std::string_view::npos ? e : e + 2;
      },
      [this](std::string_view req, RequestStatus st) -> std::string {
        switch (st) {
          case RequestStatus::complete: return respond(req);
          case RequestStatus::too_large:
            return http(431, "Request Header Fields Too Large", "text/plain", "request too large\n");
          case RequestStatus::timeout: return http(408, "Request Timeout", "text/plain", "timeout\n");
        }
        return {};
      });
  return server_->start(fd, error);
}

void MetricsServer::stop() {
  if (server_) server_->stop();
}

}  // namespace aiqos
