// Test fixtures for the whole classifier: a sink that keeps every record, a
// TCP connection fed frame by frame (packet_builder.h) with exact frame
// times, HTTP/1.1 and HTTP/2 message builders, LLM bodies and SSE events, and
// a one-class budget policy.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "classify/classifier.h"
#include "packet_builder.h"

namespace aiqos::test {

inline constexpr uint64_t kMs = 1'000'000;

// A few connections' worth of pools (the defaults size a worker: ~100 MB).
inline ClassifierConfig small_config() {
  ClassifierConfig c;
  c.flows.max_flows = 256;
  c.reassembly.pool_bytes = 1 << 20;
  c.max_l7_conns = 16;
  c.max_requests = 8;
  c.max_tls_handshakes = 2;
  return c;
}

struct RecordSink final : RequestSink {
  std::vector<RequestRecord> recs;
  void emit(const RequestRecord& r) noexcept override { recs.push_back(r); }
};

// One TCP connection (client 10.0.0.1:cport, server 10.0.0.2:sport) fed to a
// classifier frame by frame, sequence and acknowledgement numbers in step.
struct TcpConn {
  Classifier& cls;
  uint16_t cport;
  uint32_t cip = 0x0a000001, sip = 0x0a000002;
  uint16_t sport = 8080;
  uint32_t cseq = 1000, sseq = 900000;
  PacketClass last{};  // what the classifier said of the latest frame

  void frame(bool from_client, uint8_t flags, std::string_view payload, uint64_t t) {
    auto f = tcp4(from_client ? cip : sip, from_client ? sip : cip, from_client ? cport : sport,
                  from_client ? sport : cport, flags, payload.size(), {}, from_client ? cseq : sseq);
    uint32_t ack = from_client ? sseq : cseq;
    f[14 + 20 + 8] = static_cast<uint8_t>(ack >> 24);
    f[14 + 20 + 9] = static_cast<uint8_t>(ack >> 16);
    f[14 + 20 + 10] = static_cast<uint8_t>(ack >> 8);
    f[14 + 20 + 11] = static_cast<uint8_t>(ack);
    if (!payload.empty()) std::memcpy(f.data() + 14 + 20 + 20, payload.data(), payload.size());  // data() may be null
    PacketInfo p;
    parse_packet(f, p);
    last = cls.on_packet(p, f, t);
    (from_client ? cseq : sseq) += static_cast<uint32_t>(payload.size()) + ((flags & 0x03) ? 1 : 0);
  }
  void open(uint64_t t) {
    frame(true, 0x02, {}, t);
    frame(false, 0x12, {}, t);
    frame(true, 0x10, {}, t);
  }
  void send(bool from_client, std::string_view data, uint64_t t) {
    while (!data.empty()) {
      size_t n = std::min<size_t>(data.size(), 1400);
      frame(from_client, 0x18, data.substr(0, n), t);
      data.remove_prefix(n);
    }
  }
  void close(uint64_t t) {
    frame(true, 0x11, {}, t);
    frame(false, 0x11, {}, t);
  }
};

// --- HTTP/1.1 ---
// A request with a Content-Length body (JSON).
inline std::string http1_post(std::string_view path, std::string_view body, std::string_view host = "api") {
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}
// A 200 response with a Content-Length body of `content_type`.
inline std::string http1_ok(std::string_view content_type, std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(content_type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}
inline std::string chunk(std::string_view s) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%zx\r\n", s.size());
  return std::string(hex) + std::string(s) + "\r\n";
}

// --- HTTP/2 (h2c) ---
// HPACK literal without indexing, no Huffman (names and values < 127 bytes).
inline void hpack_lit(std::string& out, std::string_view name, std::string_view value) {
  out += '\0';
  out += static_cast<char>(name.size());
  out += name;
  out += static_cast<char>(value.size());
  out += value;
}
inline std::string h2frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  f += static_cast<char>(payload.size() >> 16);
  f += static_cast<char>(payload.size() >> 8);
  f += static_cast<char>(payload.size());
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>(stream >> 24);
  f += static_cast<char>(stream >> 16);
  f += static_cast<char>(stream >> 8);
  f += static_cast<char>(stream);
  f += payload;
  return f;
}

// The h2c preface and an empty SETTINGS from the client, an empty SETTINGS from the server.
inline void h2c_start(TcpConn& c, uint64_t t) {
  c.send(true, std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) + h2frame(4, 0, 0, ""), t);
  c.send(false, h2frame(4, 0, 0, ""), t);
}
// A POST request's header block (literals without indexing).
inline std::string h2_post_headers(std::string_view path, std::string_view content_type = "application/json") {
  std::string hb;
  hpack_lit(hb, ":method", "POST");
  hpack_lit(hb, ":scheme", "http");
  hpack_lit(hb, ":path", path);
  hpack_lit(hb, "content-type", content_type);
  return hb;
}

// --- LLM bodies (OpenAI chat completions) ---
inline std::string token_event(int i) {
  return "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m-served\",\"choices\":[{\"index\":0,"
         "\"delta\":{\"content\":\"tok" +
         std::to_string(i) + "\"},\"finish_reason\":null}]}\n\n";
}
inline std::string usage_event(int in, int out) {
  return "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":" + std::to_string(in) +
         ",\"completion_tokens\":" + std::to_string(out) + "}}\n\ndata: [DONE]\n\n";
}
inline std::string chat_body(int max_tokens, std::string_view model = "m") {
  return "{\"model\":\"" + std::string(model) +
         "\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":" +
         std::to_string(max_tokens) + ",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}";
}

// A policy with one class (0) holding the given budgets; over them, requests
// are demoted to class 1. By default: a tokens-per-minute budget per tenant.
struct BudgetPolicy final : ClassResolver {
  ClassBudget b0;
  explicit BudgetPolicy(double tpm) {
    b0.tokens_per_minute = tpm;
    b0.tokens_per_tenant = true;
    b0.demote = true;
    b0.demote_to = 1;
  }
  explicit BudgetPolicy(const ClassBudget& b) : b0(b) {}
  uint16_t classify(const RequestFacts&, uint16_t, bool*) const noexcept override { return 0; }
  uint16_t classify_flow(uint16_t, uint8_t, const uint8_t*, const uint8_t*) const noexcept override { return 0; }
  void tenant(const RequestFacts&, BoundedString<64>& out) const noexcept override { out.append("tenant-a"); }
  uint8_t priority(uint16_t c) const noexcept override { return static_cast<uint8_t>(c); }
  uint16_t default_class() const noexcept override { return 0; }
  std::string_view class_name_of(uint16_t c) const noexcept override { return c ? "demoted" : "metered"; }
  ClassBudget budget(uint16_t c) const noexcept override { return c == 0 ? b0 : ClassBudget{}; }
  uint16_t class_count() const noexcept override { return 2; }
};

}  // namespace aiqos::test
