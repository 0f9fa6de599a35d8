#include "dataplane/shaper.h"

#include <rte_cycles.h>
#include <rte_malloc.h>

#include <algorithm>

namespace aiqos {

Shaper::~Shaper() {
  if (slots_ != nullptr)
    for (size_t t = 0; t < kTcs; ++t)
      for (uint32_t k = 0; k < fifo_[t].count; ++k) rte_pktmbuf_free(slots_[t * qsize_ + (fifo_[t].head + k) % qsize_]);
  rte_free(slots_);
  rte_free(flows_);
  rte_free(pins_);
}

namespace {
// Burst of a rate-limited bucket: 20 ms at the rate, at least two full frames.
double burst_for(double bytes_per_s) noexcept {
  return std::max(bytes_per_s / 50.0, 2.0 * static_cast<double>(kMaxFrameBytes));
}
}  // namespace

bool Shaper::init(const std::string& name, uint64_t rate_bps, uint16_t queue_frames, int socket, std::string& error) {
  if (queue_frames == 0 || (queue_frames & (queue_frames - 1)) != 0) {
    error = "shaper " + name + ": queue length must be a power of two";
    return false;
  }
  qsize_ = queue_frames;
  // At most one pin per queued frame: twice the slots keeps the table at most
  // half full, so a probe always ends at the flow or at a free entry.
  const uint32_t npins = rte_align32pow2(static_cast<uint32_t>(2 * kTcs * qsize_));
  slots_ = static_cast<rte_mbuf**>(
      rte_zmalloc_socket(name.c_str(), sizeof(rte_mbuf*) * kTcs * qsize_, RTE_CACHE_LINE_SIZE, socket));
  flows_ = static_cast<uint64_t*>(
      rte_zmalloc_socket(name.c_str(), sizeof(uint64_t) * kTcs * qsize_, RTE_CACHE_LINE_SIZE, socket));
  pins_ = static_cast<Pin*>(rte_zmalloc_socket(name.c_str(), sizeof(Pin) * npins, RTE_CACHE_LINE_SIZE, socket));
  pin_mask_ = npins - 1;
  if (slots_ == nullptr || flows_ == nullptr || pins_ == nullptr) {
    error = "shaper " + name + ": out of memory";
    return false;
  }
  tsc_hz_ = static_cast<double>(rte_get_tsc_hz());
  double port = static_cast<double>(rate_bps) / 8.0;
  port_.per_tsc = port / tsc_hz_;
  port_.burst = burst_for(port);
  port_.tokens = port_.burst;
  last_tsc_ = rte_rdtsc();
  return true;
}

bool Shaper::set_tc_rates(const std::array<uint64_t, kTcs>& r) noexcept {
  if (r == rates_) return true;
  for (size_t t = 0; t < kTcs; ++t) {
    Bucket& b = tc_[t];
    if (r[t] == 0) {
      b = Bucket{};
    } else {
      b.per_tsc = static_cast<double>(r[t]) / tsc_hz_;
      b.burst = burst_for(static_cast<double>(r[t]));
      b.tokens = std::min(b.tokens, b.burst);
    }
  }
  rates_ = r;
  return true;
}

void Shaper::refill(uint64_t now) noexcept {
  double dt = static_cast<double>(now - last_tsc_);
  last_tsc_ = now;
  port_.tokens = std::min(port_.burst, port_.tokens + dt * port_.per_tsc);
  for (Bucket& b : tc_)
    if (b.per_tsc != 0) b.tokens = std::min(b.burst, b.tokens + dt * b.per_tsc);
}

namespace {
// Flow keys are hashes already, but tests and non-IP frames use small ones:
// mix before taking the low bits.
inline uint32_t pin_home(uint64_t flow, uint32_t mask) noexcept {
  return static_cast<uint32_t>((flow * 0x9e3779b97f4a7c15ULL) >> 32) & mask;
}
}  // namespace

// The entry of `flow`, or the free entry where it would go.
uint32_t Shaper::pin_slot(uint64_t flow) const noexcept {
  uint32_t i = pin_home(flow, pin_mask_);
  while (pins_[i].count != 0 && pins_[i].flow != flow) i = (i + 1) & pin_mask_;
  return i;
}

// One frame of `flow` has left its FIFO; the last one frees the entry
// (backward-shift deletion: no tombstones, probes stay short).
void Shaper::pin_release(uint64_t flow) noexcept {
  uint32_t i = pin_slot(flow);
  if (pins_[i].count == 0 || --pins_[i].count != 0) return;
  --pinned_;
  for (uint32_t j = (i + 1) & pin_mask_; pins_[j].count != 0; j = (j + 1) & pin_mask_) {
    uint32_t home = pin_home(pins_[j].flow, pin_mask_);
    if (((j - home) & pin_mask_) >= ((j - i) & pin_mask_)) {
      pins_[i] = pins_[j];
      pins_[j].count = 0;
      i = j;
    }
  }
}

uint32_t Shaper::enqueue(rte_mbuf** pkts, uint32_t n, const uint8_t* tcs, const uint64_t* flows,
                         uint32_t* held) noexcept {
  uint32_t ok = 0, moved = 0;
  for (uint32_t i = 0; i < n; ++i) {
    size_t t = tcs[i] < kTcs ? tcs[i] : kTcs - 1;
    Pin& p = pins_[pin_slot(flows[i])];
    const bool keep = p.count != 0 && p.tc != t;
    if (keep) t = p.tc;  // the flow keeps the queue that holds its frames
    Fifo& f = fifo_[t];
    if (f.count == qsize_) {
      rte_pktmbuf_free(pkts[i]);
      continue;
    }
    moved += keep;
    const uint32_t slot = static_cast<uint32_t>(t * qsize_ + ((f.head + f.count) & (qsize_ - 1)));
    slots_[slot] = pkts[i];
    flows_[slot] = flows[i];
    ++f.count;
    ++queued_;
    ++ok;
    if (p.count++ == 0) {
      p.flow = flows[i];
      p.tc = static_cast<uint8_t>(t);
      ++pinned_;
    }
  }
  if (held != nullptr) *held = moved;
  return ok;
}

uint32_t Shaper::pass(rte_mbuf* const* pkts, uint32_t n, const uint8_t* tcs, uint64_t now) noexcept {
  if (queued_ != 0) return 0;
  refill(now);
  uint32_t k = 0;
  for (; k < n; ++k) {
    const double len = static_cast<double>(rte_pktmbuf_pkt_len(pkts[k]));
    Bucket& b = tc_[tcs[k] < kTcs ? tcs[k] : kTcs - 1];
    if (port_.tokens < len || (b.per_tsc != 0 && b.tokens < len)) break;
    port_.tokens -= len;
    if (b.per_tsc != 0) b.tokens -= len;
  }
  return k;
}

uint32_t Shaper::dequeue(rte_mbuf** out, uint32_t n) noexcept {
  if (queued_ == 0) return 0;  // every poll asks; an idle shaper has nothing to refill for
  refill(rte_rdtsc());
  const uint32_t mask = qsize_ - 1;  // qsize_ is a power of two (init)
  uint32_t k = 0;
  // Strict priority. Within one call no tokens are added, so a class found
  // empty or over its rate stays so: each class is visited once, most urgent
  // first, and gives what it can before the next may go.
  for (size_t t = 0; t < kTcs && k < n; ++t) {
    Fifo& f = fifo_[t];
    Bucket& b = tc_[t];
    while (f.count != 0 && k < n) {
      rte_mbuf* m = slots_[t * qsize_ + f.head];
      double len = static_cast<double>(rte_pktmbuf_pkt_len(m));
      if (port_.tokens < len) return k;                 // the port is the limit: nobody may go
      if (b.per_tsc != 0 && b.tokens < len) break;      // this class waits; a lower one may go
      port_.tokens -= len;
      if (b.per_tsc != 0) b.tokens -= len;
      pin_release(flows_[t * qsize_ + f.head]);
      f.head = (f.head + 1) & mask;
      --f.count;
      --queued_;
      out[k++] = m;
    }
  }
  return k;
}

uint32_t Shaper::queued() const noexcept { return queued_; }

}  // namespace aiqos
