// The aiqos_steer XDP program itself, run by the kernel on crafted frames (BPF_PROG_TEST_RUN):
// which frames it steers to aiqosd and why, and which it passes to the kernel. No interface, no
// AF_XDP socket: xsks_map stays empty, so every steered frame falls back to XDP_PASS and the
// decision is read from the program's own counters (aiqos_stats). Needs root (CAP_BPF or
// CAP_SYS_ADMIN); skipped otherwise.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "../unit/classify/packet_builder.h"
#include "xdp/aiqos_steer.h"

namespace {

enum class Why { pass, port, vlan, prefix };

const char* why_name(Why w) {
  switch (w) {
    case Why::port: return "port";
    case Why::vlan: return "vlan";
    case Why::prefix: return "prefix";
    default: return "pass";
  }
}

// Frame builder: Ethernet, optional VLAN tags, IPv4/IPv6, TCP/UDP, in network byte order (on
// the unit tests' byte writer).
struct Frame : aiqos::test::Frame {
  using aiqos::test::Frame::bytes;
  void bytes(const void* p, size_t n) { b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); }
  // An address in text form (AF_INET or AF_INET6), in network byte order.
  void addr(int af, const char* text) {
    uint8_t a[16] = {};
    inet_pton(af, text, a);
    bytes(a, af == AF_INET ? 4 : 16);
  }

  Frame& eth(std::initializer_list<std::pair<uint16_t, uint16_t>> tags, uint16_t type) {
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 2}, src[6] = {0x02, 0, 0, 0, 0, 1};
    bytes(dst, 6);
    bytes(src, 6);
    for (auto [tpid, vid] : tags) {
      u16(tpid);
      u16(static_cast<uint16_t>(0x2000 | vid));  // PCP 1: the priority bits must not matter
    }
    u16(type);
    return *this;
  }
  Frame& ipv4(const char* s, const char* d, uint8_t proto, uint16_t frag = 0, int options_words = 0) {
    u8(static_cast<uint8_t>(0x45 + options_words));
    u8(0);
    u16(static_cast<uint16_t>(20 + 4 * options_words + 20));
    u16(1);
    u16(frag);
    u8(64);
    u8(proto);
    u16(0);
    addr(AF_INET, s);
    addr(AF_INET, d);
    zeros(4 * static_cast<size_t>(options_words));
    return *this;
  }
  Frame& ipv6(const char* s, const char* d, uint8_t next) {
    u16(0x6000);
    u16(0);
    u16(20);
    u8(next);
    u8(64);
    addr(AF_INET6, s);
    addr(AF_INET6, d);
    return *this;
  }
  Frame& l4(uint16_t sport, uint16_t dport) {  // TCP (20 bytes) or the first 8 of UDP plus padding
    u16(sport);
    u16(dport);
    zeros(8);
    u8(0x50);
    u8(0x18);
    zeros(6);
    return *this;
  }
};

constexpr uint16_t kIp4 = 0x0800, kIp6 = 0x86dd, kArp = 0x0806, kQ = 0x8100, kAd = 0x88a8;
constexpr uint8_t kTcp = 6, kUdp = 17;

class XdpProgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "BPF_PROG_TEST_RUN needs root (CAP_BPF)";
    libbpf_set_print(nullptr);
    obj_ = bpf_object__open_file(AIQOS_XDP_OBJ_BUILD, nullptr);
    ASSERT_TRUE(obj_ != nullptr && libbpf_get_error(obj_) == 0) << "cannot open " << AIQOS_XDP_OBJ_BUILD;
    int rc = bpf_object__load(obj_);
    if (rc == -EPERM) GTEST_SKIP() << "bpf(BPF_PROG_LOAD): not permitted here";
    ASSERT_EQ(rc, 0) << "load: " << std::strerror(-rc);
    // The PMD takes the first program of the object; it must be ours.
    bpf_program* prog = bpf_object__next_program(obj_, nullptr);
    ASSERT_NE(prog, nullptr);
    EXPECT_STREQ(bpf_program__name(prog), AIQOS_XDP_PROG_NAME);
    EXPECT_EQ(bpf_object__next_program(obj_, prog), nullptr) << "one program only";
    prog_fd_ = bpf_program__fd(prog);
    for (const char* m : {"xsks_map", "aiqos_ports", "aiqos_vlans", "aiqos_pfx4", "aiqos_pfx6", "aiqos_stats"})
      ASSERT_NE(bpf_object__find_map_by_name(obj_, m), nullptr) << m;
    ports_ = fd("aiqos_ports");
    vlans_ = fd("aiqos_vlans");
    pfx4_ = fd("aiqos_pfx4");
    pfx6_ = fd("aiqos_pfx6");
    stats_ = fd("aiqos_stats");
  }
  void TearDown() override {
    if (obj_ != nullptr && libbpf_get_error(obj_) == 0) bpf_object__close(obj_);
  }

  int fd(const char* name) { return bpf_map__fd(bpf_object__find_map_by_name(obj_, name)); }

  void steer_port(uint16_t p) {
    uint8_t one = 1;
    ASSERT_EQ(bpf_map_update_elem(ports_, &p, &one, BPF_ANY), 0);
  }
  void steer_vlan(uint16_t v) {
    uint8_t one = 1;
    ASSERT_EQ(bpf_map_update_elem(vlans_, &v, &one, BPF_ANY), 0);
  }
  void steer_prefix(const char* addr, uint32_t len) {
    uint8_t one = 1;
    if (std::strchr(addr, ':')) {
      aiqos_lpm6_key k{.prefixlen = len, .addr = {}};
      ASSERT_EQ(inet_pton(AF_INET6, addr, k.addr), 1);
      ASSERT_EQ(bpf_map_update_elem(pfx6_, &k, &one, BPF_ANY), 0);
    } else {
      aiqos_lpm4_key k{.prefixlen = len, .addr = {}};
      ASSERT_EQ(inet_pton(AF_INET, addr, k.addr), 1);
      ASSERT_EQ(bpf_map_update_elem(pfx4_, &k, &one, BPF_ANY), 0);
    }
  }

  std::array<uint64_t, AIQOS_XDP_STAT_COUNT> counters() {
    std::array<uint64_t, AIQOS_XDP_STAT_COUNT> sum{};
    std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    for (uint32_t k = 0; k < AIQOS_XDP_STAT_COUNT; ++k) {
      EXPECT_EQ(bpf_map_lookup_elem(stats_, &k, per_cpu.data()), 0);
      for (uint64_t v : per_cpu) sum[k] += v;
    }
    return sum;
  }

  // Runs the program on one frame: its verdict (XDP_PASS with no socket) and why.
  Why run(const Frame& f) {
    auto before = counters();
    std::vector<uint8_t> in = f.b;
    if (in.size() < 60) in.resize(60);  // Ethernet minimum, as a NIC would deliver it
    std::vector<uint8_t> out(in.size() + 256);
    bpf_test_run_opts o{};
    o.sz = sizeof o;
    o.data_in = in.data();
    o.data_size_in = static_cast<uint32_t>(in.size());
    o.data_out = out.data();
    o.data_size_out = static_cast<uint32_t>(out.size());
    o.repeat = 1;
    int rc = bpf_prog_test_run_opts(prog_fd_, &o);
    EXPECT_EQ(rc, 0) << std::strerror(-rc);
    EXPECT_EQ(o.retval, static_cast<uint32_t>(XDP_PASS)) << "no AF_XDP socket: steered frames fall back to the kernel";
    auto after = counters();
    uint64_t d[AIQOS_XDP_STAT_COUNT];
    for (int i = 0; i < AIQOS_XDP_STAT_COUNT; ++i) d[i] = after[i] - before[i];
    uint64_t steered = d[AIQOS_XDP_STAT_STEER_PORT] + d[AIQOS_XDP_STAT_STEER_VLAN] + d[AIQOS_XDP_STAT_STEER_PREFIX];
    EXPECT_EQ(d[AIQOS_XDP_STAT_PASS] + steered, 1u) << "one decision a frame";
    EXPECT_EQ(d[AIQOS_XDP_STAT_NO_SOCKET], steered) << "every match finds the empty xsks_map";
    if (d[AIQOS_XDP_STAT_STEER_PORT]) return Why::port;
    if (d[AIQOS_XDP_STAT_STEER_VLAN]) return Why::vlan;
    if (d[AIQOS_XDP_STAT_STEER_PREFIX]) return Why::prefix;
    return Why::pass;
  }

  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1, ports_ = -1, vlans_ = -1, pfx4_ = -1, pfx6_ = -1, stats_ = -1;
};

#define EXPECT_WHY(frame, want) EXPECT_STREQ(why_name(run(frame)), why_name(want))

TEST_F(XdpProgTest, EmptyConfigPassesEverything) {
  EXPECT_WHY(Frame().eth({}, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp).l4(40000, 8080), Why::pass);
  EXPECT_WHY(Frame().eth({{kQ, 100}}, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp).l4(40000, 8080), Why::pass);
  EXPECT_WHY(Frame().eth({}, kIp6).ipv6("fd00:198:18::1", "fd00:198:18::2", kTcp).l4(40000, 8080), Why::pass);
}

TEST_F(XdpProgTest, TcpPortsEitherDirection) {
  steer_port(8080);
  steer_port(443);
  auto v4 = [](uint8_t proto, uint16_t s, uint16_t d) {
    return Frame().eth({}, kIp4).ipv4("198.18.0.1", "198.18.0.2", proto).l4(s, d);
  };
  EXPECT_WHY(v4(kTcp, 40000, 8080), Why::port);  // request
  EXPECT_WHY(v4(kTcp, 8080, 40000), Why::port);  // response
  EXPECT_WHY(v4(kTcp, 40000, 443), Why::port);
  EXPECT_WHY(v4(kTcp, 40000, 9090), Why::pass);
  EXPECT_WHY(v4(kUdp, 40000, 8080), Why::pass);  // TCP only
  EXPECT_WHY(v4(kUdp, 443, 40000), Why::pass);
  // IPv4 options move the TCP header.
  EXPECT_WHY(Frame().eth({}, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp, 0, 2).l4(40000, 8080), Why::port);
  // Non-first fragments have no TCP header, whatever their first bytes look like.
  EXPECT_WHY(Frame().eth({}, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp, 0x00b9).l4(40000, 8080), Why::pass);
  // First fragment (MF set, offset 0) does carry it.
  EXPECT_WHY(Frame().eth({}, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp, 0x2000).l4(40000, 8080), Why::port);
  // IPv6: TCP as the first next header.
  EXPECT_WHY(Frame().eth({}, kIp6).ipv6("fd00:198:18::1", "fd00:198:18::2", kTcp).l4(40000, 443), Why::port);
  EXPECT_WHY(Frame().eth({}, kIp6).ipv6("fd00:198:18::2", "fd00:198:18::1", kTcp).l4(8080, 40000), Why::port);
  EXPECT_WHY(Frame().eth({}, kIp6).ipv6("fd00:198:18::1", "fd00:198:18::2", kUdp).l4(40000, 443), Why::pass);
  // Documented limit: extension headers are not walked (hop-by-hop here).
  EXPECT_WHY(Frame().eth({}, kIp6).ipv6("fd00:198:18::1", "fd00:198:18::2", 0).l4(40000, 8080), Why::pass);
  // Through VLAN tags, single and double.
  EXPECT_WHY(Frame().eth({{kQ, 200}}, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp).l4(40000, 8080), Why::port);
  EXPECT_WHY(Frame().eth({{kAd, 300}, {kQ, 200}}, kIp6).ipv6("fd00::1", "fd00::2", kTcp).l4(8080, 1), Why::port);
  // Not IP.
  EXPECT_WHY(Frame().eth({}, kArp), Why::pass);
}

TEST_F(XdpProgTest, VlanIds) {
  steer_vlan(100);
  auto tcp = [](std::initializer_list<std::pair<uint16_t, uint16_t>> tags) {
    return Frame().eth(tags, kIp4).ipv4("198.18.0.1", "198.18.0.2", kTcp).l4(40000, 9090);
  };
  EXPECT_WHY(tcp({{kQ, 100}}), Why::vlan);
  EXPECT_WHY(tcp({{kQ, 101}}), Why::pass);
  EXPECT_WHY(tcp({}), Why::pass);
  EXPECT_WHY(tcp({{kAd, 100}, {kQ, 5}}), Why::vlan);  // outer
  EXPECT_WHY(tcp({{kAd, 5}, {kQ, 100}}), Why::vlan);  // inner
  EXPECT_WHY(Frame().eth({{kQ, 100}}, kArp), Why::vlan);  // anything in the VLAN, ARP included
  // A third tag is not parsed: the frame is judged on its two outer tags only.
  EXPECT_WHY(Frame().eth({{kAd, 5}, {kQ, 6}, {kQ, 100}}, kIp4).ipv4("1.1.1.1", "2.2.2.2", kTcp).l4(1, 2), Why::pass);
}

TEST_F(XdpProgTest, PrefixesEitherDirection) {
  steer_prefix("198.18.1.0", 24);
  steer_prefix("198.19.0.7", 32);
  steer_prefix("fd00:198:18::", 64);
  auto v4 = [](const char* s, const char* d) { return Frame().eth({}, kIp4).ipv4(s, d, kUdp).l4(53, 53); };
  EXPECT_WHY(v4("198.18.1.77", "10.0.0.1"), Why::prefix);
  EXPECT_WHY(v4("10.0.0.1", "198.18.1.255"), Why::prefix);
  EXPECT_WHY(v4("10.0.0.1", "198.18.2.1"), Why::pass);
  EXPECT_WHY(v4("198.19.0.7", "10.0.0.1"), Why::prefix);
  EXPECT_WHY(v4("198.19.0.8", "10.0.0.1"), Why::pass);
  // Any protocol, fragments included: prefixes need no L4 header.
  EXPECT_WHY(Frame().eth({}, kIp4).ipv4("10.0.0.1", "198.18.1.1", 1), Why::prefix);
  EXPECT_WHY(Frame().eth({}, kIp4).ipv4("10.0.0.1", "198.18.1.1", kTcp, 0x00b9), Why::prefix);
  auto v6 = [](const char* s, const char* d) { return Frame().eth({}, kIp6).ipv6(s, d, 58); };
  EXPECT_WHY(v6("fd00:198:18::1", "2001:db8::1"), Why::prefix);
  EXPECT_WHY(v6("2001:db8::1", "fd00:198:18:0:ffff::1"), Why::prefix);
  EXPECT_WHY(v6("2001:db8::1", "fd00:198:18:1::1"), Why::pass);
}

TEST_F(XdpProgTest, TruncatedFramesPass) {
  steer_port(8080);
  steer_vlan(100);
  steer_prefix("198.18.0.0", 16);
  // Each frame is cut short of the header the next decision needs; the test runner pads to 60
  // bytes only when asked, so these go in at their own length (>= 14, the kernel's minimum).
  auto raw = [&](Frame f, size_t len) {
    f.b.resize(len);
    auto before = counters();
    bpf_test_run_opts o{};
    o.sz = sizeof o;
    o.data_in = f.b.data();
    o.data_size_in = static_cast<uint32_t>(f.b.size());
    o.repeat = 1;
    EXPECT_EQ(bpf_prog_test_run_opts(prog_fd_, &o), 0);
    EXPECT_EQ(o.retval, static_cast<uint32_t>(XDP_PASS));
    auto after = counters();
    return after[AIQOS_XDP_STAT_PASS] - before[AIQOS_XDP_STAT_PASS];
  };
  Frame v4 = Frame().eth({}, kIp4).ipv4("10.0.0.1", "10.0.0.2", kTcp).l4(40000, 8080);
  EXPECT_EQ(raw(v4, 14), 1u);       // Ethernet only
  EXPECT_EQ(raw(v4, 14 + 19), 1u);  // IPv4 header one byte short
  EXPECT_EQ(raw(v4, 14 + 20 + 19), 1u);  // TCP header one byte short
  Frame tagged = Frame().eth({{kQ, 100}}, kIp4);
  EXPECT_EQ(raw(tagged, 16), 1u);  // VLAN tag cut
  Frame v6 = Frame().eth({}, kIp6).ipv6("fd00::1", "fd00::2", kTcp).l4(1, 8080);
  EXPECT_EQ(raw(v6, 14 + 39), 1u);
}

}  // namespace
