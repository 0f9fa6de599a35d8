/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared between the XDP program (aiqos_steer.bpf.c, built with clang -target bpf) and its
 * loader (src/dataplane/xdp_steer.cpp): map sizes, LPM keys and counter indices. Plain C, no
 * includes beyond the kernel's integer types. */
#ifndef AIQOS_XDP_STEER_H
#define AIQOS_XDP_STEER_H

#include <linux/types.h>

#define AIQOS_XDP_PROG_NAME "aiqos_steer"
#define AIQOS_XDP_MAX_QUEUES 64
#define AIQOS_XDP_MAX_PORTS 256
#define AIQOS_XDP_MAX_VLANS 256
#define AIQOS_XDP_MAX_PREFIXES 256

/* LPM trie keys: prefix length in bits, then the address in network byte order. */
struct aiqos_lpm4_key {
  __u32 prefixlen;
  __u8 addr[4];
};
struct aiqos_lpm6_key {
  __u32 prefixlen;
  __u8 addr[16];
};

/* aiqos_stats (per CPU): what the program decided. A STEER_* counter counts a match; of those,
 * NO_SOCKET counts the ones passed to the kernel because no AF_XDP socket serves the queue. */
enum {
  AIQOS_XDP_STAT_PASS = 0,
  AIQOS_XDP_STAT_STEER_PORT = 1,
  AIQOS_XDP_STAT_STEER_VLAN = 2,
  AIQOS_XDP_STAT_STEER_PREFIX = 3,
  AIQOS_XDP_STAT_NO_SOCKET = 4,
  AIQOS_XDP_STAT_COUNT = 5,
};

#endif
