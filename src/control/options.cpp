#include "control/options.h"

#include "control/policy.h"

#include "aiqos_version.h"

#include <arpa/inet.h>  // xdp steering: inet_pton
#include <sched.h>      // offline lcores: sched_getaffinity
#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <type_traits>
#include <ostream>
#include <unistd.h>

namespace po = boost::program_options;

namespace aiqos {
namespace {

constexpr uint64_t kMaxRxRatePps = 1'000'000'000'000;

const char* kUsageHead =
    "Usage: aiqosd [EAL options] -- [aiqos options]\n"
    "       aiqosd --pcap-in IN.pcap [--pcap-out OUT.pcap] [aiqos options]\n"
    "\n"
    "aiqos is a bump in the wire: ports are paired 0<->1, 2<->3, ...; a frame\n"
    "received on one port of a pair leaves on the other. The main lcore runs\n"
    "the control plane; every other lcore is a poll-mode worker.\n"
    "\n"
    "Examples:\n"
    "  aiqosd -l 0,1 --no-huge -m 512 --no-pci \\\n"
    "     --vdev net_af_packet0,iface=eth1 --vdev net_af_packet1,iface=eth2 \\\n"
    "     -- --stats-interval 1\n"
    "  aiqosd -l 0-4 -a 0000:3b:00.0 -a 0000:3b:00.1 -- --stats-json /run/aiqos/final.json\n"
    "\n"
    "aiqos options";

}  // namespace

const char* dispatch_mode_name(DispatchMode m) noexcept {
  switch (m) {
    case DispatchMode::rss: return "rss";
    case DispatchMode::software: return "software";
    default: return "auto";
  }
}

std::vector<std::string> apply_policy_limits(const Limits& l, Options& o) {
  std::vector<std::string> replaced;
  const Options def;
  auto take = [&](auto& opt, auto def_v, uint64_t v, const char* flag, const char* key) {
    using T = std::remove_reference_t<decltype(opt)>;
    if (opt != def_v && opt != v)
      replaced.push_back(std::string(flag) + " " + std::to_string(opt) + " is replaced by the policy's " + key +
                         " " + std::to_string(v));
    opt = static_cast<T>(v);  // the loader's ranges fit (policy.h)
  };
  take(o.flows, def.flows, l.flows, "--flows", "limits.flows");
  take(o.reassembly_bytes, def.reassembly_bytes, l.reassembly_bytes_total, "--reassembly-bytes",
       "limits.reassembly_bytes_total");
  take(o.reassembly_flow_bytes, def.reassembly_flow_bytes, l.reassembly_bytes_per_flow, "--reassembly-flow-bytes",
       "limits.reassembly_bytes_per_flow");
  o.h2_streams = static_cast<uint32_t>(l.streams_per_connection);
  o.header_block_bytes = static_cast<uint32_t>(l.header_block_bytes);
  o.hpack_table_bytes = static_cast<uint32_t>(l.hpack_table_bytes);
  o.body_scan_bytes = l.request_body_scan_bytes;
  o.idle_tcp_ns = l.idle_timeout.tcp_ns;
  o.idle_tcp_closing_ns = l.idle_timeout.tcp_closing_ns;
  o.idle_other_ns = l.idle_timeout.other_ns;
  return replaced;
}

Limits limits_of(const Options& o) {
  Limits l;
  l.flows = o.flows;
  l.reassembly_bytes_total = o.reassembly_bytes;
  l.reassembly_bytes_per_flow = o.reassembly_flow_bytes;
  l.streams_per_connection = o.h2_streams;
  l.header_block_bytes = o.header_block_bytes;
  l.hpack_table_bytes = o.hpack_table_bytes;
  l.request_body_scan_bytes = o.body_scan_bytes;
  l.idle_timeout.tcp_ns = o.idle_tcp_ns;
  l.idle_timeout.tcp_closing_ns = o.idle_tcp_closing_ns;
  l.idle_timeout.other_ns = o.idle_other_ns;
  return l;
}

ParseOutcome parse_options(int argc, char** argv, Options& o, std::ostream& out,
                           std::ostream& err) {
  std::string dispatch = "auto";
  std::string egress_rate;
  po::options_description desc(kUsageHead);
  // clang-format off
  desc.add_options()
    ("help,h", "show this help and exit")
    ("version,V", "show the version and exit")
    ("log-level", po::value(&o.log_level)->default_value(o.log_level),
       "log level of aiqosd's own messages: trace, debug, info, warn, error, critical or off "
       "(DPDK's are EAL's --log-level)")
    ("stats-interval", po::value(&o.stats_interval_s)->default_value(o.stats_interval_s),
       "print per-port counters every SEC seconds (0: only at exit)")
    ("stats-json", po::value(&o.stats_json),
       "write the final per-port and per-worker counters to FILE as JSON on exit")
    ("idle-exit", po::value(&o.idle_exit_s)->default_value(o.idle_exit_s),
       "stop after SEC seconds without a received frame (0: run until signalled)")
    ("pcap-in", po::value(&o.pcap_in),
       "offline mode: replay FILE through the dataplane and exit when it is exhausted "
       "(no EAL options, hugepages or NIC needed)")
    ("pcap-out", po::value(&o.pcap_out),
       "offline mode: write forwarded frames to FILE")
    ("offline-workers", po::value(&o.offline_workers)->default_value(o.offline_workers),
       "offline mode: run N workers (1-16), round-robin over the CPUs this process may use "
       "(more workers than CPUs run oversubscribed: a test of the multi-worker dataplane)")
    ("burst", po::value(&o.burst)->default_value(o.burst), "RX/TX burst size (1-256)")
    ("rx-desc", po::value(&o.rx_desc)->default_value(o.rx_desc), "RX descriptors per queue")
    ("tx-desc", po::value(&o.tx_desc)->default_value(o.tx_desc), "TX descriptors per queue")
    ("mbufs", po::value(&o.mbufs)->default_value(o.mbufs),
       "mbufs in the packet pool of each NUMA socket")
    ("mbuf-size", po::value(&o.mbuf_size)->default_value(o.mbuf_size),
       "bytes of frame data each mbuf holds (1024-65000). Longer frames arrive as mbuf chains "
       "where the PMD can (net_pcap, NICs with scatter RX); net_af_packet cannot chain: for "
       "jumbo frames on it, give framesz= and an --mbuf-size over it (docs/deployment.md)")
    ("dispatch", po::value(&dispatch)->default_value(dispatch),
       "how frames reach workers: auto (RSS with a symmetric key where the port "
       "supports it, else software), rss, software")
    ("dispatch-ring", po::value(&o.dispatch_ring)->default_value(o.dispatch_ring),
       "entries of each worker's software dispatch ring (power of two)")
    ("no-promisc", "do not put ports in promiscuous mode")
    ("user", po::value(&o.user),
       "after start-up, change to USER[:GROUP] (the control socket is given to them); "
       "capabilities are dropped in any case (docs/deployment.md)")
    ("keep-caps", po::value(&o.keep_caps)->composing(),
       "capabilities to keep after start-up, e.g. net_admin (comma-separated, repeatable); "
       "'all' drops none. Default: none (net_admin with net_af_xdp ports, to detach XDP at exit)")
    ("bypass", "start in bypass: forward every frame to the peer port without parsing, "
       "classification or QoS (aiqosctl bypass off to leave it)")
    ("rx-rate", po::value(&o.rx_rate_pps)->default_value(o.rx_rate_pps),
       "benchmarking/testing: each worker polls at most PPS frames per second per RX queue "
       "(token bucket from the TSC, at most --burst a poll, banking at most --rx-desc frames); "
       "frames count as arrived when polled, so "
       "the latency histogram measures time inside the appliance at that offered load (0: no limit)")
    ("request-log", po::value(&o.request_log),
       "append one JSON object per request to FILE (see docs/request-log.md)")
    ("flows", po::value(&o.flows)->default_value(o.flows), "flow table entries per worker")
    ("l7-conns", po::value(&o.l7_conns)->default_value(o.l7_conns),
       "connections with HTTP/TLS state at once, per worker")
    ("requests", po::value(&o.requests)->default_value(o.requests),
       "requests in flight at once, per worker")
    ("reassembly-bytes", po::value(&o.reassembly_bytes)->default_value(o.reassembly_bytes),
       "out-of-order TCP bytes buffered per worker, all flows together")
    ("reassembly-flow-bytes", po::value(&o.reassembly_flow_bytes)->default_value(o.reassembly_flow_bytes),
       "out-of-order TCP bytes buffered per flow direction")
    ("hpack-pool-bytes", po::value(&o.hpack_pool_bytes)->default_value(o.hpack_pool_bytes),
       "memory of the HTTP/2 HPACK decoders per worker, all connections together "
       "(0: 8 KiB per --l7-conns, at least 4 x the largest allocation)")
    ("capture-header", po::value(&o.capture_headers)->composing(),
       "report this request header's value (repeatable; lowercase name)")
    ("tenant-header", po::value(&o.tenant_header),
       "request header whose value names the tenant; a credential header (authorization, "
       "x-api-key...) names it by a salted hash, key:<16 hex>, and needs --tenant-salt-file")
    ("tenant-salt-file", po::value(&o.tenant_salt_file),
       "16-64 byte key of credential tenants' hash (mode 0600); created with 32 random "
       "bytes if absent, so tenants stay the same across restarts")
    ("policy", po::value(&o.policy),
       "policy file (YAML, see docs/policy.md); without it every frame is in one unlimited class")
    ("egress-rate", po::value(&egress_rate),
       "shape each egress port to RATE (e.g. 100Mbit) with strict priority between classes")
    ("ctl-socket", po::value(&o.ctl_socket)->default_value(o.ctl_socket),
       "Unix socket for aiqosctl (mode 0660); 'none' for no socket (the default offline)")
    ("prometheus", po::value(&o.prometheus)->default_value(o.prometheus),
       "serve Prometheus metrics at http://HOST:PORT/metrics; 'none' to disable (the default offline)")
    ("prometheus-allow-remote", "let --prometheus listen on a non-loopback address")
    ("queue-frames", po::value(&o.queue_frames)->default_value(o.queue_frames),
       "shaper queue length per class and egress port, in frames (power of two)");
  // clang-format on

  // --- block: xdp steering (deployment) ---
  // Comma-separated and repeatable; parsed in notifiers so a typo fails before EAL starts.
  auto each_item = [](const std::vector<std::string>& args, auto&& fn) {
    for (const auto& a : args) {
      size_t b = 0;
      while (b <= a.size()) {
        size_t e = a.find(',', b);
        if (e == std::string::npos) e = a.size();
        if (e > b) fn(a.substr(b, e - b));
        b = e + 1;
      }
    }
  };
  auto number = [](const std::string& s, unsigned lo, unsigned hi, const char* what) {
    char* end = nullptr;
    unsigned long v = std::strtoul(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < lo || v > hi)
      throw po::error(std::string(what) + " '" + s + "' is not a number from " + std::to_string(lo) +
                      " to " + std::to_string(hi));
    return static_cast<uint16_t>(v);
  };
  using Strings = std::vector<std::string>;
  desc.add_options()
    ("xdp-steer-ports", po::value<Strings>()->composing()->notifier([&](const Strings& v) {
       each_item(v, [&](const std::string& s) { o.xdp_steer_ports.push_back(number(s, 1, 65535, "--xdp-steer-ports")); });
     }), "net_af_xdp ports with xdp_prog=aiqos_steer.bpf.o: TCP ports (source or destination) "
         "whose frames go to aiqosd, e.g. 8080,443; everything not steered goes to the kernel")
    ("xdp-steer-vlans", po::value<Strings>()->composing()->notifier([&](const Strings& v) {
       each_item(v, [&](const std::string& s) { o.xdp_steer_vlans.push_back(number(s, 1, 4094, "--xdp-steer-vlans")); });
     }), "VLAN IDs (outer or inner tag) whose frames go to aiqosd, e.g. 100,200")
    ("xdp-steer-prefixes", po::value<Strings>()->composing()->notifier([&](const Strings& v) {
       each_item(v, [&](const std::string& s) {
         Options::IpPrefix p;
         size_t slash = s.find('/');
         std::string addr = s.substr(0, slash);
         p.v6 = addr.find(':') != std::string::npos;
         unsigned max = p.v6 ? 128 : 32;
         p.len = static_cast<uint8_t>(slash == std::string::npos ? max : number(s.substr(slash + 1), 0, max, "--xdp-steer-prefixes length"));
         if (inet_pton(p.v6 ? AF_INET6 : AF_INET, addr.c_str(), p.addr) != 1)
           throw po::error("--xdp-steer-prefixes: '" + s + "' is not an IPv4 or IPv6 address[/length]");
         o.xdp_steer_prefixes.push_back(p);
       });
     }), "IPv4/IPv6 prefixes (source or destination) whose frames go to aiqosd, "
         "e.g. 198.18.0.0/24,fd00:198:18::/64");
  // --- end block: xdp steering ---

  // Not in --help (nor the man page): test hooks.
  po::options_description hidden;
  hidden.add_options()("test-stall-signal", "test only: SIGUSR2 stalls worker 0 (docs/deployment.md, Watchdog)");
  po::options_description all;
  all.add(desc).add(hidden);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "aiqosd: " << e.what() << " (see --help)\n";
    return ParseOutcome::error;
  }
  if (vm.count("help")) {
    out << desc << '\n';
    return ParseOutcome::help;
  }
  if (vm.count("version")) {
    out << "aiqosd " << version_string() << '\n';
    return ParseOutcome::help;
  }
  static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), o.log_level) == std::end(kLevels)) {
    err << "aiqosd: --log-level must be trace, debug, info, warn, error, critical or off, not '" << o.log_level
        << "'\n";
    return ParseOutcome::error;
  }
  o.test_stall_signal = vm.count("test-stall-signal") != 0;
  if (dispatch == "auto") {
    o.dispatch = DispatchMode::auto_;
  } else if (dispatch == "rss") {
    o.dispatch = DispatchMode::rss;
  } else if (dispatch == "software") {
    o.dispatch = DispatchMode::software;
  } else {
    err << "aiqosd: --dispatch must be auto, rss or software, not '" << dispatch << "'\n";
    return ParseOutcome::error;
  }
  o.promiscuous = vm.count("no-promisc") == 0;
  o.bypass = vm.count("bypass") != 0;
  if (o.ctl_socket == "none" || (!o.pcap_in.empty() && vm["ctl-socket"].defaulted())) o.ctl_socket.clear();
  if (o.prometheus == "none" || (!o.pcap_in.empty() && vm["prometheus"].defaulted())) o.prometheus.clear();
  o.prometheus_allow_remote = vm.count("prometheus-allow-remote") != 0;
  if (!egress_rate.empty()) {
    auto r = parse_rate(egress_rate);
    if (!r || *r == 0) {
      err << "aiqosd: --egress-rate: expected a rate like 100Mbit, got '" << egress_rate << "'\n";
      return ParseOutcome::error;
    }
    o.egress_rate_bps = *r;
  }
  if (o.mbuf_size < 1024 || o.mbuf_size > 65000) {
    err << "aiqosd: --mbuf-size must be 1024..65000 bytes\n";
    return ParseOutcome::error;
  }
  if (o.queue_frames == 0 || (o.queue_frames & (o.queue_frames - 1)) != 0) {
    err << "aiqosd: --queue-frames must be a power of two\n";
    return ParseOutcome::error;
  }
  if (o.burst == 0 || o.burst > 256) {
    err << "aiqosd: --burst must be between 1 and 256\n";
    return ParseOutcome::error;
  }
  if (o.dispatch_ring == 0 || (o.dispatch_ring & (o.dispatch_ring - 1)) != 0) {
    err << "aiqosd: --dispatch-ring must be a power of two\n";
    return ParseOutcome::error;
  }
  if (o.rx_rate_pps > kMaxRxRatePps) {  // also "-1", which Boost wraps around
    err << "aiqosd: --rx-rate must be 0 (no limit) to " << kMaxRxRatePps << " frames/s\n";
    return ParseOutcome::error;
  }
  if (o.offline_workers < 1 || o.offline_workers > 16) {
    err << "aiqosd: --offline-workers must be 1-16\n";
    return ParseOutcome::error;
  }
  if (o.stats_interval_s < 0 || o.idle_exit_s < 0) {
    err << "aiqosd: intervals must not be negative\n";
    return ParseOutcome::error;
  }
  // Credentials are never captured, whatever the command line says; a credential tenant
  // header is replaced by its salted hash when it is captured.
  if (is_credential_header(o.tenant_header) && o.tenant_salt_file.empty()) {
    err << "aiqosd: --tenant-header " << o.tenant_header
        << ": a credential header names tenants by a salted hash; give --tenant-salt-file\n";
    return ParseOutcome::error;
  }
  for (const auto& h : o.capture_headers)
    for (auto cred : kCredentialHeaders)
      if (h == cred) {
        err << "aiqosd: --capture-header " << h << ": credential headers are never captured\n";
        return ParseOutcome::error;
      }
  if (o.flows == 0 || o.l7_conns == 0 || o.requests == 0) {
    err << "aiqosd: --flows, --l7-conns and --requests must be positive\n";
    return ParseOutcome::error;
  }
  if (!o.pcap_out.empty() && o.pcap_in.empty()) {
    err << "aiqosd: --pcap-out needs --pcap-in\n";
    return ParseOutcome::error;
  }
  return ParseOutcome::run;
}

std::vector<std::string> offline_eal_args(const Options& o, const std::string& prog,
                                          const std::string& empty_pcap) {
  const std::string out = o.pcap_out.empty() ? "/dev/null" : o.pcap_out;
  // Port 0 reads the capture; its peer, port 1, writes what is forwarded.
  // Port 1 reads an empty capture and port 0's output is discarded, so every
  // frame of the capture crosses the dataplane exactly once.
  // lcore i on the i-th allowed CPU, round-robin: lcore 0 is the main one.
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.empty()) cpus.push_back(0);
  std::string lcores;
  for (unsigned i = 0; i <= o.offline_workers; ++i)
    lcores += (i ? "," : "") + std::to_string(i) + "@" + std::to_string(cpus[i % cpus.size()]);
  return {prog,
          "--lcores",
          lcores,
          "--no-huge",
          "-m",
          "1024",
          "--no-pci",
          "--no-shconf",  // no shared config: offline runs may overlap
          "--file-prefix=aiqos-offline-" + std::to_string(getpid()),
          "--log-level=lib.eal:error",
          "--vdev",
          "net_pcap0,rx_pcap=" + o.pcap_in + ",tx_pcap=/dev/null",
          "--vdev",
          "net_pcap1,rx_pcap=" + empty_pcap + ",tx_pcap=" + out};
}

}  // namespace aiqos
