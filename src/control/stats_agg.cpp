#include "control/stats_agg.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

namespace aiqos {

int status_class_of(uint16_t status) noexcept {
  if (status == 0) return 0;
  if (status < 100 || status > 599) return 6;
  return status / 100;
}

std::optional<double> record_ttfb_s(const RequestRecord& r) noexcept {
  uint64_t from = r.req_end_ns ? r.req_end_ns : r.ts_ns;
  if (r.resp_first_ns == 0 || from == 0) return std::nullopt;
  if (r.resp_first_ns < from) return 0.0;  // server answered before the body ended
  return static_cast<double>(r.resp_first_ns - from) / 1e9;
}

std::optional<double> record_duration_s(const RequestRecord& r) noexcept {
  if (r.resp_end_ns == 0 || r.ts_ns == 0 || r.resp_end_ns < r.ts_ns) return std::nullopt;
  return static_cast<double>(r.resp_end_ns - r.ts_ns) / 1e9;
}

std::optional<double> record_ttft_s(const RequestRecord& r) noexcept {
  uint64_t from = r.req_end_ns ? r.req_end_ns : r.ts_ns;
  // A response that streams before its request ends (a bidirectional gRPC stream) has none.
  if (r.first_token_ns == 0 || from == 0 || r.first_token_ns < from) return std::nullopt;
  return static_cast<double>(r.first_token_ns - from) / 1e9;
}

std::optional<double> record_tpot_s(const RequestRecord& r) noexcept {
  if (!r.streamed || r.output_tokens < 2 || r.first_token_ns == 0 || r.last_token_ns <= r.first_token_ns)
    return std::nullopt;
  return static_cast<double>(r.last_token_ns - r.first_token_ns) / 1e9 / static_cast<double>(r.output_tokens - 1);
}

const char* error_type_of(const RequestRecord& r) noexcept {
  static constexpr const char* kGrpc[] = {
      "grpc_ok",        "grpc_cancelled",      "grpc_unknown",      "grpc_invalid_argument",
      "grpc_deadline_exceeded", "grpc_not_found", "grpc_already_exists", "grpc_permission_denied",
      "grpc_resource_exhausted", "grpc_failed_precondition", "grpc_aborted", "grpc_out_of_range",
      "grpc_unimplemented", "grpc_internal",  "grpc_unavailable",  "grpc_data_loss",
      "grpc_unauthenticated"};
  if (r.proto == ReqProto::tls) return nullptr;
  if (r.reset) return "stream_reset";
  if (r.incomplete) return "incomplete";
  if (r.status >= 500) return "http_5xx";
  if (r.status >= 400) return "http_4xx";
  if (r.grpc_status > 0) return r.grpc_status < 17 ? kGrpc[r.grpc_status] : "grpc_other";
  if (r.stream_error) return "stream_error";
  if (r.status == 0) return "no_response";
  return nullptr;
}

bool record_has_tokens(const RequestRecord& r) noexcept {
  return r.proto != ReqProto::tls && (r.provider != GenAiProvider::none || r.token_source != TokenSource::estimated);
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len > 1) {
      uint32_t cp = c & (0x7f >> len);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3f);
      // Overlong forms, surrogates and values past U+10FFFF are invalid too.
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

size_t SeriesKeyHash::operator()(const SeriesKey& k) const noexcept {
  std::hash<std::string> h;
  size_t v = h(k.klass);
  v = v * 1000003u ^ h(k.model);
  v = v * 1000003u ^ h(k.endpoint);
  v = v * 1000003u ^ h(k.response_model);
  return v;
}

std::optional<StatsDim> stats_dim_from_name(std::string_view by) noexcept {
  for (size_t i = 0; i < kStatsDimNames.size(); ++i)
    if (by == kStatsDimNames[i]) return static_cast<StatsDim>(i);
  return std::nullopt;
}

namespace {

void count(KeyStats& k, const RequestRecord& r, int sc, std::optional<double> ttfb,
           std::optional<double> dur, size_t code_limit) {
  ++k.requests;
  k.req_bytes += r.req_bytes;
  k.resp_bytes += r.resp_bytes;
  ++k.status_class[sc];
  if (r.status != 0) {
    auto it = k.status_codes.find(r.status);
    if (it != k.status_codes.end())
      ++it->second;
    else if (k.status_codes.size() < code_limit)
      k.status_codes.emplace(r.status, 1);
    else
      ++k.status_codes_other;
  }
  if (r.grpc_status >= 0) {
    if (r.grpc_status < static_cast<int>(k.grpc.size()))
      ++k.grpc[r.grpc_status];
    else
      ++k.grpc_other;
  }
  if (r.incomplete) ++k.incomplete;
  if (r.reset) ++k.reset;
  if (ttfb) k.ttfb.record(*ttfb);
  if (dur) k.duration.record(*dur);
  const bool ok = error_type_of(r) == nullptr;
  if (auto t = record_ttft_s(r); t && ok) k.ttft.record(*t);
  if (auto t = record_tpot_s(r); t && ok) k.tpot.record(*t);
  if (record_has_tokens(r)) {
    ++k.token_requests;
    k.input_tokens += r.input_tokens;
    k.output_tokens += r.output_tokens;
    ++k.token_source[static_cast<size_t>(r.token_source) % k.token_source.size()];
  }
  if (ok && r.streamed && r.first_token_ns && r.resp_end_ns > r.first_token_ns) {
    k.gen_tokens += r.output_tokens;
    k.gen_s += static_cast<double>(r.resp_end_ns - r.first_token_ns) / 1e9;
  }
}

nlohmann::json latency_json(const Histogram& h) {
  using nlohmann::json;
  if (h.count() == 0) return {{"count", 0}};
  auto ms = [](double s) { return std::round(s * 1e6) / 1e3; };  // ms, microsecond precision
  return {{"count", h.count()},          {"mean", ms(h.mean())},
          {"p50", ms(h.quantile(0.5))},  {"p90", ms(h.quantile(0.9))},
          {"p99", ms(h.quantile(0.99))}, {"p999", ms(h.quantile(0.999))},
          {"max", ms(h.max())}};
}

nlohmann::json key_json(std::string_view key, const KeyStats& k) {
  using nlohmann::json;
  json status = json::object();
  for (size_t i = 0; i < k.status_class.size(); ++i)
    if (k.status_class[i]) status[kStatusClassNames[i]] = k.status_class[i];
  json codes = json::object();
  for (auto& [c, n] : k.status_codes) codes[std::to_string(c)] = n;
  if (k.status_codes_other) codes["other"] = k.status_codes_other;
  json grpc = json::object();
  for (size_t i = 0; i < k.grpc.size(); ++i)
    if (k.grpc[i]) grpc[std::to_string(i)] = k.grpc[i];
  if (k.grpc_other) grpc["other"] = k.grpc_other;
  return {{"key", key},
          {"requests", k.requests},
          {"req_bytes", k.req_bytes},
          {"resp_bytes", k.resp_bytes},
          {"status", status},
          {"codes", codes},
          {"grpc", grpc},
          {"incomplete", k.incomplete},
          {"reset", k.reset},
          {"ttfb_ms", latency_json(k.ttfb)},
          {"duration_ms", latency_json(k.duration)},
          {"ttft_ms", latency_json(k.ttft)},
          {"tpot_ms", latency_json(k.tpot)},
          {"tokens",
           {{"requests", k.token_requests},
            {"input", k.token_requests ? json(k.input_tokens) : json(nullptr)},
            {"output", k.token_requests ? json(k.output_tokens) : json(nullptr)},
            {"source",
             {{"usage", k.token_source[static_cast<size_t>(TokenSource::usage)]},
              {"counted", k.token_source[static_cast<size_t>(TokenSource::counted)]},
              {"estimated", k.token_source[static_cast<size_t>(TokenSource::estimated)]}}},
            {"output_per_s", k.gen_s > 0 ? json(std::round(static_cast<double>(k.gen_tokens) / k.gen_s * 10) / 10)
                                          : json(nullptr)}}}};
}

}  // namespace

KeyStats& StatsAgg::slot(Table& t, std::string_view key, size_t limit, uint64_t& overflow) {
  std::string k = key.empty() ? std::string(kNoneKey) : sanitize_utf8(key);
  auto it = t.find(k);
  if (it != t.end()) return it->second;
  // The (other) key itself never counts against the limit.
  if (t.size() >= limit && k != kOtherKey) {
    ++overflow;
    return t[std::string(kOtherKey)];
  }
  return t[k];
}

void StatsAgg::add(const RequestRecord& r, std::string_view class_name) {
  const int sc = status_class_of(r.status);
  const auto ttfb = record_ttfb_s(r);
  const auto dur = record_duration_s(r);
  const size_t codes = limits_.status_codes;
  std::lock_guard lock(mu_);
  ++total_;
  KeyStats& c = slot(classes_, class_name, limits_.classes, overflow_.classes);
  count(c, r, sc, ttfb, dur, codes);
  // Find the model's slot first: the series uses the same (possibly overflowed) key.
  std::string model_key = r.model.empty() ? std::string(kNoneKey) : sanitize_utf8(r.model.view());
  if (!models_.contains(model_key) && models_.size() >= limits_.models && model_key != kOtherKey)
    model_key = std::string(kOtherKey), ++overflow_.models;
  count(models_[model_key], r, sc, ttfb, dur, codes);
  size_t e = static_cast<size_t>(r.endpoint);
  if (e >= endpoints_.size()) e = 0;
  count(endpoints_[e], r, sc, ttfb, dur, codes);
  count(slot(tenants_, r.tenant.view(), limits_.tenants, overflow_.tenants), r, sc, ttfb, dur,
        codes);

  SeriesKey key{class_name.empty() ? std::string(kNoneKey) : sanitize_utf8(class_name),
                std::move(model_key), endpoint_name(static_cast<Endpoint>(e)), sanitize_utf8(r.resp_model.view())};
  auto it = series_.find(key);
  if (it == series_.end()) {
    if (series_.size() >= limits_.series) {
      ++overflow_.series;
      key = {std::string(kOtherKey), std::string(kOtherKey), std::string(kOtherKey), std::string()};
    }
    it = series_.try_emplace(std::move(key)).first;
  }
  SeriesStats& s = it->second;
  ++s.requests[sc];
  s.req_bytes += r.req_bytes;
  s.resp_bytes += r.resp_bytes;
  if (ttfb) s.ttfb.record(*ttfb);
  if (dur) s.duration.record(*dur);
  const char* err = error_type_of(r);
  if (auto t = record_ttft_s(r); t && !err) s.ttft.record(*t);
  if (auto t = record_tpot_s(r); t && !err) s.tpot.record(*t);
  if (record_has_tokens(r)) {
    auto [tit, fresh] = s.tokens.try_emplace(err ? err : "");
    if (fresh) tit->second = {Histogram{kTokenBounds}, Histogram{kTokenBounds}};
    tit->second[0].record(r.input_tokens);
    tit->second[1].record(r.output_tokens);
  }
}

void StatsAgg::reset() {
  std::lock_guard lock(mu_);
  total_ = 0;
  classes_.clear();
  models_.clear();
  tenants_.clear();
  for (auto& e : endpoints_) e = KeyStats{};
  series_.clear();
  overflow_ = {};
}

nlohmann::json StatsAgg::snapshot(StatsDim by) const {
  using nlohmann::json;
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string_view, const KeyStats*>> rows;
  size_t limit = 0;
  uint64_t overflow = 0;
  auto take = [&](const Table& t) {
    for (auto& [k, v] : t) rows.emplace_back(k, &v);
  };
  switch (by) {
    case StatsDim::klass: take(classes_), limit = limits_.classes, overflow = overflow_.classes; break;
    case StatsDim::model: take(models_), limit = limits_.models, overflow = overflow_.models; break;
    case StatsDim::tenant: take(tenants_), limit = limits_.tenants, overflow = overflow_.tenants; break;
    case StatsDim::endpoint:
      for (size_t e = 0; e < endpoints_.size(); ++e)
        if (endpoints_[e].requests) rows.emplace_back(endpoint_name(static_cast<Endpoint>(e)), &endpoints_[e]);
      limit = endpoints_.size();
      break;
  }
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
    return a.second->requests != b.second->requests ? a.second->requests > b.second->requests
                                                    : a.first < b.first;
  });
  json keys = json::array();
  for (auto& [k, v] : rows) keys.push_back(key_json(k, *v));
  return {{"by", kStatsDimNames[static_cast<size_t>(by)]},
          {"requests", total_},
          {"keys", std::move(keys)},
          {"distinct", rows.size()},
          {"limit", limit},
          {"overflow", overflow}};
}

std::optional<nlohmann::json> StatsAgg::snapshot(std::string_view by) const {
  auto d = stats_dim_from_name(by);
  if (!d) return std::nullopt;
  return snapshot(*d);
}

uint64_t StatsAgg::total_requests() const {
  std::lock_guard lock(mu_);
  return total_;
}

void StatsAgg::for_each_series(
    const std::function<void(const SeriesKey&, const SeriesStats&)>& fn) const {
  std::lock_guard lock(mu_);
  std::vector<const std::pair<const SeriesKey, SeriesStats>*> rows;
  rows.reserve(series_.size());
  for (auto& kv : series_) rows.push_back(&kv);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) {
    return std::tie(a->first.klass, a->first.model, a->first.endpoint, a->first.response_model) <
           std::tie(b->first.klass, b->first.model, b->first.endpoint, b->first.response_model);
  });
  for (auto* kv : rows) fn(kv->first, kv->second);
}

StatsAgg::Overflow StatsAgg::overflow() const {
  std::lock_guard lock(mu_);
  return overflow_;
}

}  // namespace aiqos
