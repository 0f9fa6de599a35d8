// The whole per-worker Classifier (flow table -> reassembly -> L7 -> request
// records) over a list of frames, with small bounds so that every one of them
// is hit, then the memory bounds are asserted.
//
//   byte 0: mode (bit 0: policy body patterns on; bit 1: flush at the end;
//                 bit 2: a policy, and time step 254 reloads it)
//   then frames: time step u8 (x 1 ms; 255: jump 100 s, to expire flows),
//                length u16 (little endian, cut to 2048), the frame bytes.
//
// tests/fuzz/make_seeds.py writes seeds in this format from real captures.
#include <string_view>
#include <vector>

#include "classify/classifier.h"
#include "classify/packet_parse.h"
#include "fuzz_input.h"

using namespace aiqos;

namespace {

struct CheckingRequestSink : RequestSink {
  uint64_t emitted = 0;
  void emit(const RequestRecord& r) noexcept override {
    ++emitted;
    FUZZ_CHECK(r.model.len <= kMaxModelName);
    FUZZ_CHECK(r.path.len <= 256 && r.authority.len <= 128 && r.method.len <= 16);
    FUZZ_CHECK(r.tenant.len <= 64);
    FUZZ_CHECK(r.family == 4 || r.family == 6);
    FUZZ_CHECK(r.model_source != ModelSource::none || r.model.len == 0);
    fuzz::touch(r.model.view());
  }
};

// Four classes from what a request shows (a rule on the model first: pending
// until it is known); class 1 over 1 request/s is demoted to 2. Each reload
// shifts every answer (`salt`).
struct FuzzPolicy final : ClassResolver {
  uint16_t salt = 0;
  uint16_t classify(const RequestFacts& f, uint16_t, bool* pending) const noexcept override {
    if (!f.model_known && pending != nullptr) *pending = true;
    uint32_t h = salt;
    for (std::string_view s : {f.model, f.sni, f.path, f.tenant})
      for (char c : s) h = h * 31 + static_cast<uint8_t>(c);
    return static_cast<uint16_t>(h % 4);
  }
  uint16_t classify_flow(uint16_t vlan, uint8_t, const uint8_t*, const uint8_t*) const noexcept override {
    return static_cast<uint16_t>((vlan + salt) % 4);
  }
  void tenant(const RequestFacts&, BoundedString<64>& out) const noexcept override { out.append("t"); }
  uint8_t priority(uint16_t c) const noexcept override { return static_cast<uint8_t>((c * 2 + salt) % 8); }
  uint16_t default_class() const noexcept override { return 0; }
  std::string_view class_name_of(uint16_t) const noexcept override { return "c"; }
  ClassBudget budget(uint16_t c) const noexcept override {
    ClassBudget b;
    if (c == 1) {
      b.requests_per_second = 1;
      b.demote = true;
      b.demote_to = 2;
    }
    return b;
  }
  uint16_t class_count() const noexcept override { return 4; }
};

const BodyMatcher* matcher() {
  static const BodyMatcher* m = [] {
    std::vector<HsPattern> pats = {{.id = 0, .expression = "\"stream\"\\s*:\\s*true", .flags = 0}};
    HsCompileError err;
    return BodyMatcher::compile(pats, err).release();
  }();
  return m;
}

ClassifierConfig small_config() {
  ClassifierConfig c;
  c.flows.max_flows = 16;
  c.flows.tcp_handshake_timeout_ns = 2'000'000'000;
  c.flows.tcp_established_timeout_ns = 30'000'000'000;
  c.flows.tcp_closing_timeout_ns = 3'000'000'000;
  c.flows.other_timeout_ns = 10'000'000'000;
  c.reassembly.pool_bytes = 16 * 256;
  c.reassembly.chunk_bytes = 256;
  c.reassembly.max_ooo_bytes_per_flow = 4 * 256;
  c.reassembly.max_window_bytes = 1 << 16;
  c.l7.http1.max_header_section = 2048;
  c.l7.http1.max_pipeline = 4;
  c.l7.http2.max_streams = 8;
  c.l7.http2.max_frame_size = 1 << 14;
  c.l7.http2.max_header_block = 4096;
  c.l7.http2.max_header_list = 8192;
  c.l7.http2.max_hpack_table = 4096;
  c.l7.http2.max_hpack_mem = 64 << 10;
  c.l7.capture.extra.add("x-tenant");
  c.l7.capture.max_value_len = 64;
  c.tenant_header = 0;
  c.max_l7_conns = 8;
  c.max_requests = 8;
  c.body_scan_bytes = 4096;
  c.max_tls_handshakes = 2;
  c.tls_hello_bytes = 2048;
  c.max_tls_names = 2;
  return c;
}

void check_bounds(const Classifier& cls, const ClassifierConfig& cfg) {
  const ReassemblyPool& pool = cls.reassembly();
  FUZZ_CHECK(pool.bytes_in_use() <= cfg.reassembly.pool_bytes);
  FUZZ_CHECK(pool.chunks_in_use() <= pool.chunks_total());
  FUZZ_CHECK(cls.flows().size() <= cfg.flows.max_flows);
  FUZZ_CHECK(cls.l7_in_use() <= cfg.max_l7_conns);
  FUZZ_CHECK(cls.requests_in_use() <= cfg.max_requests);
  FUZZ_CHECK(cls.tls_names().in_use() <= cfg.max_tls_names);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  uint8_t mode = in.u8();
  const ClassifierConfig cfg = small_config();
  CheckingRequestSink sink;
  Classifier cls(cfg, sink, (mode & 1) ? matcher() : nullptr);
  const uint64_t mem = cls.memory_bytes();
  FuzzPolicy policies[2];
  policies[1].salt = 1;
  uint32_t gen = 1;
  if (mode & 4) cls.set_policy(&policies[0], gen, 0);

  uint64_t now = 1'000'000'000'000;
  std::vector<uint8_t> frame;
  while (!in.empty()) {
    uint8_t dt = in.u8();
    if ((mode & 4) && dt == 254) {  // a reload: the other policy, a new generation
      ++gen;
      cls.set_policy(&policies[gen & 1], gen, 0);
      dt = 0;
    }
    now += dt == 255 ? 100'000'000'000 : uint64_t{dt} * 1'000'000;
    size_t len = std::min<size_t>(in.u16(), 2048);
    std::span<const uint8_t> b = in.bytes(len);
    frame.assign(b.begin(), b.end());  // exactly the frame: ASan sees reads past it
    PacketInfo p;
    parse_packet(frame, p);
    cls.on_packet(p, frame, now);
    cls.expire(now, 4);
    check_bounds(cls, cfg);
  }
  FUZZ_CHECK(cls.memory_bytes() == mem);  // nothing per packet
  const ClassifierCounters& c = cls.counters();
  FUZZ_CHECK(c.requests_emitted <= c.requests + c.tls_hellos);  // a ClientHello is logged too
  if (mode & 2) {
    cls.flush();
    check_bounds(cls, cfg);
    FUZZ_CHECK(cls.reassembly().bytes_in_use() == 0);
    FUZZ_CHECK(cls.l7_in_use() == 0);
    FUZZ_CHECK(cls.requests_in_use() == 0);
    FUZZ_CHECK(cls.tls_names().in_use() == 0);
  }
  return 0;
}
