#include "control/options.h"

#include <boost/program_options.hpp>
#include <ostream>
#include <unistd.h>

namespace po = boost::program_options;

namespace aiqos {
namespace {

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

ParseOutcome parse_options(int argc, char** argv, Options& o, std::ostream& out,
                           std::ostream& err) {
  std::string dispatch = "auto";
  po::options_description desc(kUsageHead);
  // clang-format off
  desc.add_options()
    ("help,h", "show this help and exit")
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
    ("burst", po::value(&o.burst)->default_value(o.burst), "RX/TX burst size (1-256)")
    ("rx-desc", po::value(&o.rx_desc)->default_value(o.rx_desc), "RX descriptors per queue")
    ("tx-desc", po::value(&o.tx_desc)->default_value(o.tx_desc), "TX descriptors per queue")
    ("mbufs", po::value(&o.mbufs)->default_value(o.mbufs),
       "mbufs in the packet pool of each NUMA socket")
    ("dispatch", po::value(&dispatch)->default_value(dispatch),
       "how frames reach workers: auto (RSS with a symmetric key where the port "
       "supports it, else software), rss, software")
    ("dispatch-ring", po::value(&o.dispatch_ring)->default_value(o.dispatch_ring),
       "entries of each worker's software dispatch ring (power of two)")
    ("no-promisc", "do not put ports in promiscuous mode")
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
    ("capture-header", po::value(&o.capture_headers)->composing(),
       "report this request header's value (repeatable; lowercase name)")
    ("tenant-header", po::value(&o.tenant_header),
       "request header whose value names the tenant");
  // clang-format on

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "aiqosd: " << e.what() << " (see --help)\n";
    return ParseOutcome::error;
  }
  if (vm.count("help")) {
    out << desc << '\n';
    return ParseOutcome::help;
  }
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
  if (o.burst == 0 || o.burst > 256) {
    err << "aiqosd: --burst must be between 1 and 256\n";
    return ParseOutcome::error;
  }
  if (o.dispatch_ring == 0 || (o.dispatch_ring & (o.dispatch_ring - 1)) != 0) {
    err << "aiqosd: --dispatch-ring must be a power of two\n";
    return ParseOutcome::error;
  }
  if (o.stats_interval_s < 0 || o.idle_exit_s < 0) {
    err << "aiqosd: intervals must not be negative\n";
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
  return {prog,
          "-l",
          "0,1",
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
