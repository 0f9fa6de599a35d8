// aiqos options: everything after `--` on the aiqosd command line.
// Parsed on the control path with Boost.Program_options into a plain struct
// that the dataplane reads once at start.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "classify/credential_hash.h"

namespace aiqos {

struct Limits;  // control/policy.h

enum class DispatchMode : uint8_t { auto_, rss, software };

struct Options {
  // Reporting
  std::string log_level = "info";  // spdlog level: trace, debug, info, warn, error, critical, off
  double stats_interval_s = 0;  // live counter line every N seconds; 0 = off
  std::string stats_json;       // final counters as JSON, written on exit
  // Lifecycle
  double idle_exit_s = 0;  // exit after this long with no frame received; 0 = never
  // Offline mode: aiqosd builds its own EAL arguments around net_pcap vdevs.
  std::string pcap_in;
  std::string pcap_out;
  // Offline mode: workers (lcores beyond the main one), mapped round-robin
  // onto the CPUs this process may use, however few: 3 workers on 2 CPUs
  // run oversubscribed (tests of the multi-worker dataplane).
  unsigned offline_workers = 1;
  // Dataplane sizing
  uint16_t burst = 32;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  uint32_t mbufs = 16383;  // per NUMA socket mempool; 2^n - 1 is optimal for rte_mempool
  uint32_t mbuf_size = 2048;  // data room of each mbuf after the headroom (RTE_MBUF_DEFAULT_DATAROOM)
  uint32_t dispatch_ring = 4096;  // per-worker software dispatch ring (power of two)
  DispatchMode dispatch = DispatchMode::auto_;
  bool promiscuous = true;
  bool bypass = false;  // start in operator bypass: forward port to port, classify nothing
  // Privileges after start (src/aiqosd/privileges.h)
  std::string user;                    // USER[:GROUP] to change to; empty: stay root
  std::vector<std::string> keep_caps;  // capabilities kept in the main thread; "all": no drop
  // Benchmarking/testing: each worker polls at most this many frames per second
  // per RX queue (token bucket refilled from the TSC); 0 = no limit.
  uint64_t rx_rate_pps = 0;
  // Classification (per worker)
  std::string request_log;              // JSON lines, one per request; empty = off
  uint32_t flows = 65536;               // flow table entries
  uint32_t l7_conns = 16384;            // connections with L7 state at once
  uint32_t requests = 16384;            // requests in flight at once
  uint64_t reassembly_bytes = 32 << 20; // out-of-order buffer, all flows together
  uint32_t reassembly_flow_bytes = 256 << 10;  // out-of-order buffer of one direction
  uint64_t hpack_pool_bytes = 0;        // HPACK inflaters' memory, all connections; 0: 8 KiB a --l7-conns
  // From the policy's `limits` only (apply_policy_limits); no command-line option. Without a
  // policy, the classifier's defaults (which are also the policy's).
  uint32_t h2_streams = 128;               // HTTP/2 streams tracked at once per connection
  uint32_t header_block_bytes = 64 << 10;  // one header block (HTTP/1 section; HTTP/2 as sent and decoded)
  uint32_t hpack_table_bytes = 64 << 10;   // cap on each HPACK dynamic table mirrored
  uint64_t body_scan_bytes = 1 << 20;      // request body bytes searched for the model; 0: none
  uint64_t idle_tcp_ns = 300'000'000'000ULL;         // established TCP flow idle timeout
  uint64_t idle_tcp_closing_ns = 15'000'000'000ULL;  // after FIN or RST
  uint64_t idle_other_ns = 60'000'000'000ULL;        // UDP and other IP
  std::vector<std::string> capture_headers;  // extra request headers reported
  std::string tenant_header;            // a captured header naming the tenant
  // Credential tenants: the key of their hash. The file is read (or created) at start;
  // tenant_salt is what it held, never an option itself.
  std::string tenant_salt_file;
  CredentialSalt tenant_salt;
  // --- block: xdp steering (deployment) ---
  // What the aiqos_steer XDP program on net_af_xdp ports hands to aiqosd; every other frame
  // goes to the kernel stack. All empty: nothing is steered (src/dataplane/xdp_steer.h).
  struct IpPrefix {
    bool v6 = false;
    uint8_t len = 0;            // prefix length in bits
    uint8_t addr[16] = {};      // network byte order; IPv4 in the first 4 bytes
  };
  std::vector<uint16_t> xdp_steer_ports;     // TCP source or destination port
  std::vector<uint16_t> xdp_steer_vlans;     // VLAN ID (outer or inner tag)
  std::vector<IpPrefix> xdp_steer_prefixes;  // IPv4/IPv6 source or destination
  // --- end block: xdp steering ---
  // Policy and QoS
  std::string policy;                   // YAML policy file; empty: one unlimited class
  uint64_t egress_rate_bps = 0;         // shape every egress port to this rate; 0: no shaping
  uint16_t queue_frames = 512;          // shaper queue per class and egress port (power of two)
  // Control
  std::string ctl_socket = "/run/aiqos/aiqosd.sock";  // empty: no control socket
  std::string prometheus = "127.0.0.1:9470";        // HOST:PORT of /metrics; empty: off
  bool prometheus_allow_remote = false;
  // Test only (hidden option --test-stall-signal): SIGUSR2 makes worker 0 spin without advancing
  // its heartbeat, as a worker stuck in a loop would, so the watchdog test can see the pings stop.
  bool test_stall_signal = false;
};

enum class ParseOutcome { run, help, error };

// Parses the aiqos part of argv (argv[0] is a program name, as after EAL).
// On `help` the usage text (or, for --version, the version) is written to `out`; on `error` a one-line reason
// to `err`.
ParseOutcome parse_options(int argc, char** argv, Options& opts, std::ostream& out,
                           std::ostream& err);

// Builds the EAL argument vector used in offline mode (--pcap-in): no hugepages,
// no PCI, one port pair of net_pcap vdevs, the main lcore plus one worker.
std::vector<std::string> offline_eal_args(const Options& opts, const std::string& prog,
                                          const std::string& empty_pcap);

const char* dispatch_mode_name(DispatchMode m) noexcept;

// A policy's `limits` replace the sizing options, command line included (--flows,
// --reassembly-bytes, --reassembly-flow-bytes): the policy wins. Returns one line for each
// such option given a value other than its default that the policy replaced, for a warning.
std::vector<std::string> apply_policy_limits(const Limits& l, Options& o);
// The limits the dataplane runs with under `o`: apply_policy_limits(limits_of(o), o) changes
// nothing.
Limits limits_of(const Options& o);

}  // namespace aiqos
