// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// aiqos_steer: the XDP program that shares a NIC between aiqosd and the kernel.
//
// Loaded by DPDK's net_af_xdp PMD (`--vdev net_af_xdp0,iface=eth1,xdp_prog=aiqos_steer.bpf.o`),
// which puts its AF_XDP socket for each queue into `xsks_map`. aiqosd then finds the program
// attached to the interface and fills the steering maps below (src/dataplane/xdp_steer.cpp).
//
// A frame goes to aiqosd (XDP_REDIRECT into the queue's AF_XDP socket) when any of these holds:
//   - one of its VLAN tags (outer or inner) is in aiqos_vlans;
//   - its IPv4/IPv6 source or destination is inside a prefix of aiqos_pfx4 / aiqos_pfx6;
//   - it is TCP and its source or destination port is in aiqos_ports.
// Source *or* destination, so both directions of a connection take the same path. Everything
// else (ARP, ICMP, other ports, undecodable frames) is XDP_PASS: the kernel stack sees it as if
// no program were attached. With empty maps nothing is steered.
//
// Limits: IPv6 extension headers are not walked (TCP must be the first next header for a port
// match; prefix matches do not need it); IPv4 non-first fragments carry no ports, so only a prefix
// or VLAN rule steers them.
//
// Names here are ABI shared with xdp_steer.cpp: program `aiqos_steer`, maps `xsks_map`,
// `aiqos_ports`, `aiqos_vlans`, `aiqos_pfx4`, `aiqos_pfx6`, `aiqos_stats` (the kernel keeps 15
// characters of a name). The PMD takes the first program of the object and the map named
// xsks_map; keep this the only program.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "aiqos_steer.h"

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, AIQOS_XDP_MAX_QUEUES);
  __type(key, __u32);    // RX queue index
  __type(value, __u32);  // AF_XDP socket fd, written by the PMD
} xsks_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, AIQOS_XDP_MAX_PORTS);
  __type(key, __u16);  // TCP port, host byte order
  __type(value, __u8);
} aiqos_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, AIQOS_XDP_MAX_VLANS);
  __type(key, __u16);  // VLAN ID 1-4094
  __type(value, __u8);
} aiqos_vlans SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, AIQOS_XDP_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct aiqos_lpm4_key);
  __type(value, __u8);
} aiqos_pfx4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, AIQOS_XDP_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct aiqos_lpm6_key);
  __type(value, __u8);
} aiqos_pfx6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, AIQOS_XDP_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} aiqos_stats SEC(".maps");

struct vlan_hdr {
  __be16 tci;
  __be16 encap_proto;
};

static __always_inline void count(__u32 what) {
  __u64* c = bpf_map_lookup_elem(&aiqos_stats, &what);
  if (c) *c += 1;
}

static __always_inline int vlan_steered(__u16 tci_host) {
  __u16 vid = tci_host & 0x0fff;
  return bpf_map_lookup_elem(&aiqos_vlans, &vid) != 0;
}

static __always_inline int port_steered(const struct tcphdr* th) {
  __u16 sport = bpf_ntohs(th->source), dport = bpf_ntohs(th->dest);
  return bpf_map_lookup_elem(&aiqos_ports, &dport) || bpf_map_lookup_elem(&aiqos_ports, &sport);
}

// The steering decision: an AIQOS_XDP_STAT_* reason (STEER_*) or AIQOS_XDP_STAT_PASS.
static __always_inline __u32 decide(void* data, void* data_end) {
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return AIQOS_XDP_STAT_PASS;
  __u16 proto = eth->h_proto;
  void* l3 = eth + 1;

#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_hdr* vh = l3;
    if ((void*)(vh + 1) > data_end) return AIQOS_XDP_STAT_PASS;
    if (vlan_steered(bpf_ntohs(vh->tci))) return AIQOS_XDP_STAT_STEER_VLAN;
    proto = vh->encap_proto;
    l3 = vh + 1;
  }

  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = l3;
    if ((void*)(ip + 1) > data_end) return AIQOS_XDP_STAT_PASS;
    struct aiqos_lpm4_key k = {.prefixlen = 32};
    __builtin_memcpy(k.addr, &ip->saddr, 4);
    if (bpf_map_lookup_elem(&aiqos_pfx4, &k)) return AIQOS_XDP_STAT_STEER_PREFIX;
    __builtin_memcpy(k.addr, &ip->daddr, 4);
    if (bpf_map_lookup_elem(&aiqos_pfx4, &k)) return AIQOS_XDP_STAT_STEER_PREFIX;
    if (ip->protocol != IPPROTO_TCP) return AIQOS_XDP_STAT_PASS;
    if (ip->frag_off & bpf_htons(0x1fff)) return AIQOS_XDP_STAT_PASS;  // no TCP header here
    __u32 ihl = ip->ihl * 4u;
    if (ihl < sizeof(*ip)) return AIQOS_XDP_STAT_PASS;
    struct tcphdr* th = l3 + ihl;
    if ((void*)(th + 1) > data_end) return AIQOS_XDP_STAT_PASS;
    return port_steered(th) ? AIQOS_XDP_STAT_STEER_PORT : AIQOS_XDP_STAT_PASS;
  }
  if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = l3;
    if ((void*)(ip6 + 1) > data_end) return AIQOS_XDP_STAT_PASS;
    struct aiqos_lpm6_key k = {.prefixlen = 128};
    __builtin_memcpy(k.addr, &ip6->saddr, 16);
    if (bpf_map_lookup_elem(&aiqos_pfx6, &k)) return AIQOS_XDP_STAT_STEER_PREFIX;
    __builtin_memcpy(k.addr, &ip6->daddr, 16);
    if (bpf_map_lookup_elem(&aiqos_pfx6, &k)) return AIQOS_XDP_STAT_STEER_PREFIX;
    if (ip6->nexthdr != IPPROTO_TCP) return AIQOS_XDP_STAT_PASS;
    struct tcphdr* th = (void*)(ip6 + 1);
    if ((void*)(th + 1) > data_end) return AIQOS_XDP_STAT_PASS;
    return port_steered(th) ? AIQOS_XDP_STAT_STEER_PORT : AIQOS_XDP_STAT_PASS;
  }
  return AIQOS_XDP_STAT_PASS;
}

SEC("xdp")
int aiqos_steer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  __u32 why = decide(data, data_end);
  if (why == AIQOS_XDP_STAT_PASS) {
    count(AIQOS_XDP_STAT_PASS);
    return XDP_PASS;
  }
  count(why);  // a match, whether or not a socket takes it
  __u32 q = ctx->rx_queue_index;
  // No socket on this queue (aiqosd not running, or a queue it does not poll): the kernel
  // gets the frame rather than a black hole.
  if (!bpf_map_lookup_elem(&xsks_map, &q)) {
    count(AIQOS_XDP_STAT_NO_SOCKET);
    return XDP_PASS;
  }
  return bpf_redirect_map(&xsks_map, q, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
