// Names kept for flows that outlive their parser (the server name of a TLS
// connection past its ClientHello, needed again when a reload brings rules
// that test it): each distinct name is stored once per worker however many
// flows hold it, reference counted, in a fixed table allocated at
// construction. A name finds its slot by linear probing from its hash over at
// most kProbe slots; a slot whose last holder went keeps its name (probe
// chains never break) until another name takes it. No free slot within the
// window, or a name longer than kMaxName: not kept (the caller counts it).
// Not on the per-frame path: one acquire per TLS connection, one release when
// its flow goes. Threading: one per worker.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace aiqos {

class NameTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kMaxName = 255;  // a DNS name is at most 253 bytes
  static constexpr uint32_t kProbe = 16;

  explicit NameTable(uint32_t slots)
      : n_(slots), slots_(slots ? std::make_unique<Slot[]>(slots) : nullptr) {}

  // The slot holding `name` (a reference taken), or kNone.
  uint32_t acquire(std::string_view name) noexcept {
    if (n_ == 0 || name.size() > kMaxName) return kNone;
    const uint64_t h = hash(name);
    uint32_t spare = kNone;
    for (uint32_t k = 0; k < kProbe && k < n_; ++k) {
      const uint32_t i = static_cast<uint32_t>((h + k) % n_);
      Slot& s = slots_[i];
      if (s.used && s.hash == h && s.len == name.size() &&
          std::memcmp(s.buf, name.data(), name.size()) == 0) {
        if (s.refs == 0) ++in_use_;
        ++s.refs;
        return i;
      }
      if (s.refs == 0 && spare == kNone) spare = i;
    }
    if (spare == kNone) return kNone;
    Slot& s = slots_[spare];
    s.used = true;
    s.hash = h;
    s.len = static_cast<uint16_t>(name.size());
    if (!name.empty()) std::memcpy(s.buf, name.data(), name.size());
    s.refs = 1;
    ++in_use_;
    return spare;
  }
  void release(uint32_t i) noexcept {
    if (i >= n_ || slots_[i].refs == 0) return;
    if (--slots_[i].refs == 0) --in_use_;
  }
  std::string_view name(uint32_t i) const noexcept {
    return i < n_ ? std::string_view(slots_[i].buf, slots_[i].len) : std::string_view();
  }
  uint32_t refs(uint32_t i) const noexcept { return i < n_ ? slots_[i].refs : 0; }
  uint32_t in_use() const noexcept { return in_use_; }  // slots held by at least one flow
  uint32_t capacity() const noexcept { return n_; }
  uint64_t memory_bytes() const noexcept { return uint64_t{n_} * sizeof(Slot); }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t refs = 0;
    uint16_t len = 0;
    bool used = false;  // holds a name (possibly with no holder left)
    char buf[kMaxName];
  };
  static uint64_t hash(std::string_view s) noexcept {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    h ^= h >> 33;  // FNV-1a's low bits mix poorly: finalize (murmur3's fmix64)
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
  }
  uint32_t n_;
  uint32_t in_use_ = 0;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace aiqos
