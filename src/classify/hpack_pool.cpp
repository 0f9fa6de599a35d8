#include "classify/hpack_pool.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

namespace aiqos {

namespace {
constexpr size_t kMaxAllocLimit = size_t{1} << 30;  // sizes are kept in 31 bits
}  // namespace

void HpackPool::FreeDeleter::operator()(uint32_t* p) const noexcept { std::free(p); }

HpackPool::HpackPool(uint64_t bytes, size_t max_alloc) {
  top_ = order_of(std::clamp<size_t>(max_alloc, 1, kMaxAllocLimit));
  const uint64_t top_bytes = uint64_t{kMinBlock} << top_;
  const uint64_t blocks = std::max<uint64_t>(1, (bytes + top_bytes - 1) / top_bytes);
  capacity_ = blocks * top_bytes;
  // Not zeroed: a page is touched when a block in it is first handed out.
  region_ = std::make_unique_for_overwrite<std::byte[]>(capacity_ + kMinBlock);
  base_ = region_.get();
  base_ += (kMinBlock - reinterpret_cast<uintptr_t>(base_) % kMinBlock) % kMinBlock;
  tag_.reset(static_cast<uint32_t*>(std::calloc(capacity_ / kMinBlock, sizeof(uint32_t))));
  if (!tag_) throw std::bad_alloc();
  top_blocks_ = blocks;  // none on a list yet: take() starts on them in address order
}

[[gnu::always_inline]] inline void HpackPool::push_free(Node* b, unsigned k) noexcept {
  b->prev = nullptr;
  b->next = buddy_[k];
  if (b->next != nullptr) b->next->prev = b;
  buddy_[k] = b;
  buddy_mask_ |= 1u << k;
  tag_[unit(b)] = kFreeTag | k;
}

[[gnu::always_inline]] inline void HpackPool::unlink_free(Node* b, unsigned k) noexcept {
  if (b->prev != nullptr) {
    b->prev->next = b->next;
  } else {
    buddy_[k] = b->next;
    if (b->next == nullptr) buddy_mask_ &= ~(1u << k);
  }
  if (b->next != nullptr) b->next->prev = b->prev;
  tag_[unit(b)] = 0;
}

HpackPool::Node* HpackPool::take(unsigned k) noexcept {
  const uint32_t avail = buddy_mask_ >> k;
  unsigned j;
  Node* b;
  if (avail != 0) {
    j = k + static_cast<unsigned>(std::countr_zero(avail));
    b = buddy_[j];
    unlink_free(b, j);
  } else if (top_taken_ < top_blocks_) {  // a largest block never used yet
    j = top_;
    b = reinterpret_cast<Node*>(base_ + (top_taken_++ << top_) * kMinBlock);
  } else {
    return nullptr;
  }
  while (j > k) {  // keep the lower half, free the upper
    --j;
    push_free(reinterpret_cast<Node*>(reinterpret_cast<std::byte*>(b) + (kMinBlock << j)), j);
  }
  touched_ = std::max<uint64_t>(touched_, static_cast<uint64_t>(reinterpret_cast<std::byte*>(b) - base_) + (kMinBlock << k));
  return b;
}

void HpackPool::give(Node* b, unsigned k) noexcept {
  size_t off = static_cast<size_t>(reinterpret_cast<std::byte*>(b) - base_);
  for (; k < top_; ++k) {
    const size_t buddy = off ^ (kMinBlock << k);
    if (tag_[buddy / kMinBlock] != (kFreeTag | k)) break;
    unlink_free(reinterpret_cast<Node*>(base_ + buddy), k);
    off &= ~(kMinBlock << k);
  }
  push_free(reinterpret_cast<Node*>(base_ + off), k);
}

bool HpackPool::flush() noexcept {
  if (!any_cached_) return false;
  for (unsigned k = 0; k <= top_; ++k) {
    while (Node* b = cached_[k]) {
      cached_[k] = b->next;
      give(b, k);
    }
  }
  any_cached_ = false;
  return true;
}

void* HpackPool::alloc_slow(size_t n, unsigned k) noexcept {
  Node* b = nullptr;
  if (k > top_ || ((b = take(k)) == nullptr && (!flush() || (b = take(k)) == nullptr))) {
    ++exhausted_;
    return nullptr;
  }
  return hand_out(b, n, k);
}

void* HpackPool::realloc(void* p, size_t n) noexcept {
  const size_t old = size_of(p);
  if (order_of(n) == order_of(old)) {
    tag_[unit(p)] = static_cast<uint32_t>(n);
    return p;
  }
  void* q = alloc(n);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, std::min(old, n));
  free(p);
  return q;
}

uint64_t hpack_pool_default_bytes(uint32_t l7_conns, size_t max_alloc) noexcept {
  return std::max<uint64_t>(uint64_t{l7_conns} * (8 << 10), 4 * HpackPool::block_size(max_alloc));
}

}  // namespace aiqos
