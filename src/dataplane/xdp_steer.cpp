#include "dataplane/xdp_steer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string_view>

#include "xdp/aiqos_steer.h"

namespace aiqos {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error("xdp steering: " + msg); }

std::string errstr(int rc) { return std::strerror(rc < 0 ? -rc : rc); }

// A file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int release() { return std::exchange(fd, -1); }
};

// One XDP attachment of an interface: the program id and the mode flag that names it.
struct Attached {
  uint32_t id = 0;
  uint32_t mode_flag = 0;  // XDP_FLAGS_{DRV,SKB,HW}_MODE
};

// Every program attached to `ifindex`, one per mode (a NIC can hold a driver and an offloaded
// program at once).
std::vector<Attached> attached_programs(int ifindex) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof q;
  std::vector<Attached> out;
  if (int rc = bpf_xdp_query(ifindex, 0, &q); rc != 0) {
    spdlog::warn("xdp: query of ifindex {}: {}", ifindex, errstr(rc));
    return out;
  }
  if (q.drv_prog_id) out.push_back({q.drv_prog_id, XDP_FLAGS_DRV_MODE});
  if (q.skb_prog_id) out.push_back({q.skb_prog_id, XDP_FLAGS_SKB_MODE});
  if (q.hw_prog_id) out.push_back({q.hw_prog_id, XDP_FLAGS_HW_MODE});
  return out;
}

// Opens program `id` and reads its name and map ids; fd < 0 if it is gone.
struct ProgInfo {
  int fd = -1;
  std::string name;
  std::vector<uint32_t> map_ids;
};

ProgInfo prog_info(uint32_t id) {
  ProgInfo pi;
  pi.fd = bpf_prog_get_fd_by_id(id);
  if (pi.fd < 0) return pi;
  uint32_t ids[32] = {};
  bpf_prog_info info{};
  info.nr_map_ids = 32;
  info.map_ids = reinterpret_cast<uintptr_t>(ids);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(pi.fd, &info, &len) != 0) return pi;
  pi.name.assign(info.name, strnlen(info.name, sizeof info.name));
  pi.map_ids.assign(ids, ids + std::min<uint32_t>(info.nr_map_ids, 32));
  return pi;
}

bool detach_program(int ifindex, const Attached& a, int prog_fd) {
  bpf_xdp_attach_opts o{};
  o.sz = sizeof o;
  o.old_prog_fd = prog_fd;  // only if it is still this program
  return bpf_xdp_detach(ifindex, a.mode_flag | XDP_FLAGS_REPLACE, &o) == 0;
}

std::string join(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s.empty() ? "-" : s;
}

std::string prefix_text(const Options::IpPrefix& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.addr, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(p.len);
}

void update(int fd, const void* key, const char* map, const std::string& what, const std::string& ifname) {
  const uint8_t one = 1;
  if (int rc = bpf_map_update_elem(fd, key, &one, BPF_ANY); rc != 0)
    fail(ifname + ": " + map + " " + what + ": " + errstr(rc) + " (at most " +
         std::to_string(AIQOS_XDP_MAX_PORTS) + " entries a map)");
}

}  // namespace

bool xdp_steering_requested(const Options& o) noexcept {
  return !o.xdp_steer_ports.empty() || !o.xdp_steer_vlans.empty() || !o.xdp_steer_prefixes.empty();
}

bool read_xdp_steer_counters(int fd, XdpSteerCounters& out) {
  int ncpu = libbpf_num_possible_cpus();
  if (fd < 0 || ncpu <= 0) return false;
  uint64_t sum[AIQOS_XDP_STAT_COUNT] = {};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  for (uint32_t k = 0; k < AIQOS_XDP_STAT_COUNT; ++k) {
    if (bpf_map_lookup_elem(fd, &k, per_cpu.data()) != 0) return false;
    for (uint64_t v : per_cpu) sum[k] += v;
  }
  out.passed = sum[AIQOS_XDP_STAT_PASS];
  out.steered_port = sum[AIQOS_XDP_STAT_STEER_PORT];
  out.steered_vlan = sum[AIQOS_XDP_STAT_STEER_VLAN];
  out.steered_prefix = sum[AIQOS_XDP_STAT_STEER_PREFIX];
  out.no_socket = sum[AIQOS_XDP_STAT_NO_SOCKET];
  return true;
}

void XdpSteer::prepare(const Options& opts) {
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(pid, &info) != 0 || info.driver_name == nullptr) continue;
    if (std::string_view(info.driver_name) != "net_af_xdp" || info.if_index == 0) continue;
    Iface f;
    f.port = pid;
    f.ifindex = static_cast<int>(info.if_index);
    char name[IF_NAMESIZE] = {};
    f.name = if_indextoname(info.if_index, name) ? name : "ifindex " + std::to_string(info.if_index);
    for (const Attached& a : attached_programs(f.ifindex)) {
      ProgInfo pi = prog_info(a.id);
      Fd guard(pi.fd);
      if (pi.name == AIQOS_XDP_PROG_NAME) {
        // Left by an aiqosd that did not close its ports (crash, SIGKILL). Its sockets are gone,
        // so it passes every frame to the kernel; the PMD refuses to attach over it.
        if (detach_program(f.ifindex, a, pi.fd))
          spdlog::warn("xdp: {}: detached a stale {} program (id {}) left by an aiqosd that did not exit cleanly",
                       f.name, AIQOS_XDP_PROG_NAME, a.id);
        else
          spdlog::warn("xdp: {}: could not detach the stale {} program (id {})", f.name, AIQOS_XDP_PROG_NAME, a.id);
      } else {
        spdlog::warn("xdp: {}: XDP program '{}' (id {}) is attached and is not aiqos's; net_af_xdp cannot attach "
                     "its own over it. Remove it if it is not wanted: ip link set dev {} xdp off",
                     f.name, pi.name, a.id, f.name);
      }
    }
    ifaces_.push_back(std::move(f));
  }
  if (xdp_steering_requested(opts) && ifaces_.empty())
    fail("--xdp-steer-* options need net_af_xdp ports, e.g. --vdev net_af_xdp0,iface=eth1,xdp_prog=" +
         std::string(AIQOS_XDP_OBJ_INSTALLED));
}

void XdpSteer::configure(const Options& opts) {
  const bool want = xdp_steering_requested(opts);
  for (Iface& f : ifaces_) {
    auto progs = attached_programs(f.ifindex);
    const Attached* ours = nullptr;
    ProgInfo pi;
    for (const Attached& a : progs) {
      ProgInfo p = prog_info(a.id);
      if (p.name == AIQOS_XDP_PROG_NAME) {
        if (pi.fd >= 0) ::close(pi.fd);
        pi = std::move(p);
        ours = &a;
        break;
      }
      if (p.fd >= 0) ::close(p.fd);
    }
    Fd prog_fd(pi.fd);
    if (ours == nullptr) {
      if (want)
        fail(f.name + ": no " + AIQOS_XDP_PROG_NAME + " XDP program attached; give its vdev xdp_prog=PATH/" +
             "aiqos_steer.bpf.o (without xdp_prog, net_af_xdp steers every frame to aiqosd)");
      continue;  // the PMD's default program: everything to aiqosd, nothing to configure
    }
    int fds[5] = {-1, -1, -1, -1, -1};
    const char* names[5] = {"aiqos_ports", "aiqos_vlans", "aiqos_pfx4", "aiqos_pfx6", "aiqos_stats"};
    for (uint32_t id : pi.map_ids) {
      int fd = bpf_map_get_fd_by_id(id);
      if (fd < 0) continue;
      bpf_map_info mi{};
      uint32_t len = sizeof mi;
      bool kept = false;
      if (bpf_obj_get_info_by_fd(fd, &mi, &len) == 0) {
        std::string_view n(mi.name, strnlen(mi.name, sizeof mi.name));
        for (int i = 0; i < 5; ++i)
          if (n == names[i] && fds[i] < 0) {
            fds[i] = fd;
            kept = true;
          }
      }
      if (!kept) ::close(fd);
    }
    Fd ports(fds[0]), vlans(fds[1]), pfx4(fds[2]), pfx6(fds[3]), stats(fds[4]);
    for (int i = 0; i < 5; ++i)
      if (fds[i] < 0)
        fail(f.name + ": program " + AIQOS_XDP_PROG_NAME + " has no map " + names[i] +
             " (an aiqos_steer.bpf.o from another aiqos version?)");

    for (uint16_t p : opts.xdp_steer_ports) update(ports.fd, &p, "aiqos_ports", "port " + std::to_string(p), f.name);
    for (uint16_t v : opts.xdp_steer_vlans) update(vlans.fd, &v, "aiqos_vlans", "VLAN " + std::to_string(v), f.name);
    std::string pfx;
    for (const Options::IpPrefix& p : opts.xdp_steer_prefixes) {
      pfx += (pfx.empty() ? "" : ",") + prefix_text(p);
      if (p.v6) {
        aiqos_lpm6_key k{.prefixlen = p.len, .addr = {}};
        std::memcpy(k.addr, p.addr, 16);
        update(pfx6.fd, &k, "aiqos_pfx6", prefix_text(p), f.name);
      } else {
        aiqos_lpm4_key k{.prefixlen = p.len, .addr = {}};
        std::memcpy(k.addr, p.addr, 4);
        update(pfx4.fd, &k, "aiqos_pfx4", prefix_text(p), f.name);
      }
    }
    if (f.stats_fd >= 0) ::close(f.stats_fd);
    f.stats_fd = stats.release();
    if (want)
      spdlog::info("xdp: {} (port {}): {} program id {} steers TCP ports {}, VLANs {}, prefixes {} to aiqosd; "
                   "every other frame goes to the kernel",
                   f.name, f.port, AIQOS_XDP_PROG_NAME, ours->id, join(opts.xdp_steer_ports),
                   join(opts.xdp_steer_vlans), pfx.empty() ? "-" : pfx);
    else
      spdlog::warn("xdp: {} (port {}): {} is attached but no --xdp-steer-ports/-vlans/-prefixes were given: "
                   "every frame goes to the kernel, none to aiqosd",
                   f.name, f.port, AIQOS_XDP_PROG_NAME);
  }
}

void XdpSteer::detach() noexcept {
  try {
    for (Iface& f : ifaces_) {
      XdpSteerCounters c;
      if (f.stats_fd >= 0 && read_xdp_steer_counters(f.stats_fd, c))
        spdlog::info("xdp: {}: steered to aiqosd by port {}, by VLAN {}, by prefix {} (of which {} had no socket "
                     "and went to the kernel); passed to the kernel {}",
                     f.name, c.steered_port, c.steered_vlan, c.steered_prefix, c.no_socket, c.passed);
      if (f.stats_fd >= 0) ::close(f.stats_fd);
      f.stats_fd = -1;
      // The PMD detaches its program when the port closes; this catches the paths where it
      // did not (a port that failed half-way through set-up).
      for (const Attached& a : attached_programs(f.ifindex)) {
        ProgInfo pi = prog_info(a.id);
        Fd guard(pi.fd);
        if (pi.name != AIQOS_XDP_PROG_NAME) continue;
        if (detach_program(f.ifindex, a, pi.fd))
          spdlog::info("xdp: {}: detached {} (id {})", f.name, AIQOS_XDP_PROG_NAME, a.id);
        else
          spdlog::warn("xdp: {}: could not detach {} (id {}): ip link set dev {} xdp off", f.name,
                       AIQOS_XDP_PROG_NAME, a.id, f.name);
      }
    }
    ifaces_.clear();
  } catch (...) {
    // Logging failed; nothing else can be done on the way out.
  }
}

}  // namespace aiqos
