// Shared helpers for the micro-benchmarks: frames from the unit-test packet
// builder, and a minimal pcap reader (classic format) for captured traffic.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../unit/classify/packet_builder.h"

namespace aiqos::bench {

// Frames of a classic pcap file (either byte order); empty if unreadable.
inline std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
  std::vector<std::vector<uint8_t>> out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  uint8_t gh[24];
  if (std::fread(gh, 1, 24, f) != 24) {
    std::fclose(f);
    return out;
  }
  bool swap = gh[0] == 0xa1;  // big-endian file
  auto u32 = [swap](const uint8_t* p) {
    return swap ? uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]
                : uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0];
  };
  uint8_t rh[16];
  while (std::fread(rh, 1, 16, f) == 16) {
    std::vector<uint8_t> fr(u32(rh + 8));
    if (std::fread(fr.data(), 1, fr.size(), f) != fr.size()) break;
    out.push_back(std::move(fr));
  }
  std::fclose(f);
  return out;
}

inline std::string source_path(const char* rel) { return std::string(AIQOS_SOURCE_ROOT "/") + rel; }

}  // namespace aiqos::bench
