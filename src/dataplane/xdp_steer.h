// XDP steering on a shared NIC: the control-path half of src/xdp/aiqos_steer.bpf.c.
//
// DPDK 22.11's net_af_xdp PMD loads and attaches the program itself (vdev argument
// `xdp_prog=PATH`) while it sets up the first RX queue, and puts its AF_XDP sockets into the
// program's `xsks_map`. It has no way to hand the other maps to the application (no
// `use_pinned_map` before 23.x), so aiqosd finds them through the kernel: the program attached
// to the port's interface (bpf_xdp_query), checked by name, then the program's map ids
// (bpf_obj_get_info_by_fd), each checked by name. Each interface gets its own instance of the
// program and maps.
//
// Lifecycle, all on the main lcore:
//   prepare()   after rte_eal_init, before the ports are configured: detaches an aiqos_steer
//               program a crashed aiqosd left on an af_xdp port's interface (the PMD attaches
//               with XDP_FLAGS_UPDATE_IF_NOEXIST and would fail); a foreign program is left
//               alone and reported.
//   configure() after the ports are configured and started (the program is attached): fills
//               the steering maps from Options; throws if steering was asked for and a port's
//               program is not aiqos_steer.
//   detach()    after the ports are closed (the PMD detaches its program on close): logs the
//               program's counters and removes an aiqos_steer that is still attached. Also
//               run by the destructor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/options.h"

namespace aiqos {

struct XdpSteerCounters {
  uint64_t passed = 0;          // to the kernel stack: not steered
  uint64_t steered_port = 0;    // matched a TCP port
  uint64_t steered_vlan = 0;    // matched a VLAN ID
  uint64_t steered_prefix = 0;  // matched an IPv4/IPv6 prefix
  uint64_t no_socket = 0;       // of the matches, passed to the kernel: no AF_XDP socket on the queue
};

class XdpSteer {
 public:
  XdpSteer() = default;
  ~XdpSteer() { detach(); }
  XdpSteer(const XdpSteer&) = delete;
  XdpSteer& operator=(const XdpSteer&) = delete;

  void prepare(const Options& opts);    // throws std::runtime_error
  void configure(const Options& opts);  // throws std::runtime_error
  void detach() noexcept;

  // Interfaces of the net_af_xdp ports seen by prepare().
  size_t interfaces() const noexcept { return ifaces_.size(); }

 private:
  struct Iface {
    uint16_t port = 0;
    int ifindex = 0;
    std::string name;
    int stats_fd = -1;  // aiqos_stats of the program configure() filled; kept to read at exit
  };
  std::vector<Iface> ifaces_;
};

// True if `opts` asks for any XDP steering.
bool xdp_steering_requested(const Options& opts) noexcept;

// The program's counters, summed over CPUs, from an aiqos_stats map fd.
bool read_xdp_steer_counters(int stats_fd, XdpSteerCounters& out);

}  // namespace aiqos
