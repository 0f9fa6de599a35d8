// The memory the HPACK inflaters of one worker's HTTP/2 connections allocate
// (nghttp2_mem, http2_hpack.cpp): one region allocated at construction and
// never grown, so decoding a header block never reaches the heap.
//
// Blocks are powers of two from kMinBlock (64 B) to the largest allocation
// served (max_alloc rounded up), carved from the region buddy-style: a block
// is split in halves for a smaller class, and halves are merged back when
// both are free. A freed block first goes to a free list of its own class
// and is handed out again from there (the steady state: a header's buffers
// are freed and the next header takes the same blocks, O(1) each); only when
// a class finds nothing free are those lists given back to the buddy lists,
// merging what can be merged, and the allocation tried again. When that
// fails too the allocation is refused and counted (exhausted()): the caller
// fails its connection open, as with its own budget.
// The region is not written at construction: its largest blocks are taken
// in address order as the pool fills, so pages are touched as they are used
// (and the sizes beside it come zeroed from calloc).
//
// The size asked for is kept beside the region (one uint32_t per 64 B), not
// in front of the block: nghttp2's table of entries asks for powers of two.
//
// Threading: one per worker (worker: rw); the counters are plain fields the
// control plane may read (ro; a torn value is tolerated).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace aiqos {

class HpackPool {
 public:
  static constexpr size_t kMinBlock = 64;

  // `bytes`, rounded up to a whole number of the largest blocks (at least
  // one), each of which holds `max_alloc` bytes.
  HpackPool(uint64_t bytes, size_t max_alloc);
  HpackPool(const HpackPool&) = delete;
  HpackPool& operator=(const HpackPool&) = delete;

  // `n` bytes (up to max_alloc), aligned to kMinBlock; nullptr (counted) when
  // no block is free or n is above max_alloc.
  void* alloc(size_t n) noexcept {
    const unsigned k = order_of(n);
    Node* b = k <= top_ ? cached_[k] : nullptr;
    if (b == nullptr) return alloc_slow(n, k);
    cached_[k] = b->next;
    return hand_out(b, n, k);
  }
  // A block from alloc() (nullptr is ignored); returns the `n` it was given for.
  size_t free(void* p) noexcept {
    if (p == nullptr) return 0;
    const size_t u = unit(p), n = tag_[u];
    const unsigned k = order_of(n);
    tag_[u] = 0;
    in_use_ -= kMinBlock << k;
    auto* b = static_cast<Node*>(p);
    b->next = cached_[k];
    cached_[k] = b;
    any_cached_ = true;
    return n;
  }
  // `p` (from alloc()) holding `n` bytes now: in place when n needs the same
  // block size, else moved (its first min(n, old) bytes). nullptr (counted):
  // no block for n; `p` is left as it was.
  void* realloc(void* p, size_t n) noexcept;
  // The `n` alloc() was given for `p`.
  size_t size_of(const void* p) const noexcept { return tag_[unit(p)]; }

  static size_t block_size(size_t n) noexcept { return kMinBlock << order_of(n); }
  size_t max_alloc() const noexcept { return kMinBlock << top_; }
  uint64_t capacity() const noexcept { return capacity_; }
  // Memory allocated at construction: the region and the sizes beside it.
  uint64_t memory_bytes() const noexcept { return capacity_ + capacity_ / kMinBlock * sizeof(uint32_t); }
  uint64_t in_use() const noexcept { return in_use_; }  // bytes of the blocks handed out
  uint64_t peak() const noexcept { return peak_; }
  // Bytes from the start of the region to the end of the highest block ever
  // handed out: about what the pool has touched (it does not grow while
  // freed blocks are reused).
  uint64_t touched() const noexcept { return touched_; }
  uint64_t exhausted() const noexcept { return exhausted_; }  // allocations refused

 private:
  struct Node {
    Node* next;
    Node* prev;  // buddy free lists only
  };
  static constexpr uint32_t kFreeTag = 0x80000000u;  // | order: the head of a block on a buddy free list
  static constexpr size_t kOrders = 32;
  static constexpr unsigned kMinOrder = 6;  // log2(kMinBlock)

  static unsigned order_of(size_t n) noexcept {
    return n <= kMinBlock ? 0 : static_cast<unsigned>(std::bit_width(n - 1)) - kMinOrder;
  }
  void* hand_out(Node* b, size_t n, unsigned k) noexcept {
    tag_[unit(b)] = static_cast<uint32_t>(n);
    in_use_ += kMinBlock << k;
    peak_ = peak_ < in_use_ ? in_use_ : peak_;
    return b;
  }
  void* alloc_slow(size_t n, unsigned k) noexcept;  // no block of order k in its class list
  size_t unit(const void* p) const noexcept {
    return static_cast<size_t>(static_cast<const std::byte*>(p) - base_) / kMinBlock;
  }
  Node* take(unsigned k) noexcept;             // from the buddy lists, split down to k
  void give(Node* b, unsigned k) noexcept;     // to the buddy lists, merged up
  void push_free(Node* b, unsigned k) noexcept;
  void unlink_free(Node* b, unsigned k) noexcept;
  bool flush() noexcept;                       // every class list to the buddy lists

  unsigned top_;
  uint64_t capacity_;
  std::unique_ptr<std::byte[]> region_;
  std::byte* base_;
  struct FreeDeleter {
    void operator()(uint32_t* p) const noexcept;
  };
  // Per kMinBlock unit: the size asked, kFreeTag | order, or 0 (calloc).
  std::unique_ptr<uint32_t[], FreeDeleter> tag_;
  std::array<Node*, kOrders> buddy_{};  // free blocks that may merge, by order
  uint32_t buddy_mask_ = 0;             // bit k: buddy_[k] is not empty
  uint64_t top_blocks_ = 0, top_taken_ = 0;  // largest blocks in the region, and taken from it so far
  std::array<Node*, kOrders> cached_{};  // freed blocks kept in their class, by order
  bool any_cached_ = false;
  uint64_t in_use_ = 0, peak_ = 0, touched_ = 0, exhausted_ = 0;
};

// Bytes of a worker's pool when the configuration names none: 8 KiB for each
// L7 context (the two inflaters of an HTTP/2 connection with default-size
// tables), and at least four of the largest allocations at once.
uint64_t hpack_pool_default_bytes(uint32_t l7_conns, size_t max_alloc) noexcept;

}  // namespace aiqos
