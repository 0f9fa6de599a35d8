#include "control/request_log.h"

#include <arpa/inet.h>

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "control/stats_agg.h"

namespace aiqos {

const char* req_proto_name(ReqProto p) noexcept {
  switch (p) {
    case ReqProto::h2: return "h2";
    case ReqProto::h1: return "h1";
    case ReqProto::grpc: return "grpc";
    case ReqProto::tls: return "tls";
    default: return "unknown";
  }
}

namespace {

std::string addr(const std::array<uint8_t, 16>& a, uint8_t family) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a.data(), buf, sizeof buf);
  return buf;
}

// RFC 3339 UTC with microseconds.
std::string rfc3339(uint64_t ns) {
  std::time_t s = static_cast<std::time_t>(ns / 1000000000ULL);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06uZ", static_cast<unsigned>((ns % 1000000000ULL) / 1000));
  return buf;
}

template <size_t N>
std::string str(const BoundedString<N>& b) {
  return std::string(b.view());
}

const char* model_source_name(ModelSource s) {
  switch (s) {
    case ModelSource::path: return "path";
    case ModelSource::body: return "body";
    case ModelSource::grpc: return "grpc";
    default: return nullptr;
  }
}

}  // namespace

std::string request_json(const RequestRecord& r, const std::string& class_name) {
  using nlohmann::json;
  auto ms = [](uint64_t from, uint64_t to) -> json {
    if (from == 0 || to == 0 || to < from) return nullptr;
    return static_cast<double>(to - from) / 1e6;
  };
  json j = {
      {"ts", rfc3339(r.ts_ns)},
      {"src", addr(r.src, r.family)},
      {"dst", addr(r.dst, r.family)},
      {"sport", r.sport},
      {"dport", r.dport},
      {"vlan", r.vlan},
      {"proto", req_proto_name(r.proto)},
      {"stream_id", r.proto == ReqProto::h2 || r.proto == ReqProto::grpc ? json(r.stream_id) : json(nullptr)},
      {"method", r.method.empty() ? json(nullptr) : json(str(r.method))},
      {"authority", r.authority.empty() ? json(nullptr) : json(str(r.authority))},
      {"path", r.path.empty() ? json(nullptr) : json(str(r.path))},
      {"endpoint", endpoint_name(r.endpoint)},
      {"model", r.model.empty() ? json(nullptr) : json(str(r.model))},
      {"model_source", model_source_name(r.model_source) ? json(model_source_name(r.model_source)) : json(nullptr)},
      {"tenant", r.tenant.empty() ? json(nullptr) : json(str(r.tenant))},
      {"class", class_name},
      {"status", r.status ? json(r.status) : json(nullptr)},
      {"grpc_status", r.grpc_status >= 0 ? json(r.grpc_status) : json(nullptr)},
      {"req_bytes", r.req_bytes},
      {"resp_bytes", r.resp_bytes},
      {"ttfb_ms", ms(r.req_end_ns ? r.req_end_ns : r.ts_ns, r.resp_first_ns)},
      {"duration_ms", ms(r.ts_ns, r.resp_end_ns)},
      {"reset", r.reset},
      {"incomplete", r.incomplete},
      {"pickup", r.midstream ? json("midstream") : json(nullptr)},
      {"headers_partial", r.headers_partial},
      {"budget", r.budget == BudgetState::demoted   ? json("demoted")
                 : r.budget == BudgetState::dropped ? json("dropped")
                                                    : json(nullptr)},
      {"est_tokens", r.est_tokens ? json(r.est_tokens) : json(nullptr)},
  };
  // What the server did (classify/response_tracker.h, docs/request-log.md).
  const bool tokens = record_has_tokens(r);
  auto sec_ms = [](std::optional<double> s) -> json {
    if (!s) return nullptr;
    return std::round(*s * 1e6) / 1e3;
  };
  j["ttft_ms"] = sec_ms(record_ttft_s(r));
  j["tpot_ms"] = sec_ms(record_tpot_s(r));
  j["input_tokens"] = tokens ? json(r.input_tokens) : json(nullptr);
  j["output_tokens"] = tokens ? json(r.output_tokens) : json(nullptr);
  j["token_source"] = tokens ? json(token_source_name(r.token_source)) : json(nullptr);
  j["provider"] = r.provider != GenAiProvider::none ? json(provider_name(r.provider)) : json(nullptr);
  j["response_model"] = r.resp_model.empty() ? json(nullptr) : json(str(r.resp_model));
  const char* err = error_type_of(r);
  j["error_type"] = err ? json(err) : json(nullptr);
  j["compressed"] = r.resp_encoded;
  // Bytes cut from untrusted strings must not break the log: replace invalid UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

RequestLog::~RequestLog() {
  if (f_) std::fclose(f_);
}

bool RequestLog::open(const std::string& path) {
  path_ = path;
  return reopen();
}

bool RequestLog::reopen() {
  if (f_) std::fclose(f_);
  f_ = std::fopen(path_.c_str(), "a");
  return f_ != nullptr;
}

void RequestLog::write(const RequestRecord& r, const std::string& class_name) {
  if (!f_) return;
  std::string line = request_json(r, class_name);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), f_);
  ++written_;
}

void RequestLog::flush() {
  if (f_) std::fflush(f_);
}

}  // namespace aiqos
