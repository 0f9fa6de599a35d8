// The HPACK inflaters' pool: size classes, reuse, splitting and merging, exhaustion.
#include "classify/hpack_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace aiqos {
namespace {

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % HpackPool::kMinBlock == 0; }

TEST(HpackPool, SizeClassesAlignedAndDisjoint) {
  HpackPool pool(1 << 20, 256 << 10);
  EXPECT_EQ(pool.capacity(), 1u << 20);
  EXPECT_EQ(pool.max_alloc(), 256u << 10);
  const std::vector<size_t> sizes = {0, 1, 40, 64, 65, 97, 128, 240, 1024, 1025, 16384, 131113, 256 << 10};
  std::vector<uint8_t*> got;
  uint64_t blocks = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto* p = static_cast<uint8_t*>(pool.alloc(sizes[i]));
    ASSERT_NE(p, nullptr) << sizes[i];
    EXPECT_TRUE(aligned(p)) << sizes[i];
    EXPECT_EQ(pool.size_of(p), sizes[i]);
    std::memset(p, static_cast<int>(i + 1), sizes[i]);
    got.push_back(p);
    blocks += HpackPool::block_size(sizes[i]);
  }
  EXPECT_EQ(HpackPool::block_size(1), 64u);
  EXPECT_EQ(HpackPool::block_size(65), 128u);
  EXPECT_EQ(HpackPool::block_size(1024), 1024u);
  EXPECT_EQ(HpackPool::block_size(131113), 256u << 10);
  EXPECT_EQ(pool.in_use(), blocks);
  // No block overwrote another.
  for (size_t i = 0; i < sizes.size(); ++i)
    for (size_t j = 0; j < sizes[i]; ++j) ASSERT_EQ(got[i][j], i + 1) << sizes[i] << " at " << j;
  for (uint8_t* p : got) pool.free(p);
  pool.free(nullptr);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.exhausted(), 0u);
  // Wherever the region lands (the heap aligns it to 16 only): blocks aligned to 64.
  for (size_t kib : {4, 12, 40, 100, 300, 1000, 3000, 9000}) {
    HpackPool other(kib << 10, 4096);
    void* a = other.alloc(1);
    void* b = other.alloc(4096);
    EXPECT_TRUE(aligned(a) && aligned(b)) << kib;
  }
}

TEST(HpackPool, FreedBlocksAreReused) {
  HpackPool pool(1 << 20, 64 << 10);
  void* a = pool.alloc(53);
  void* b = pool.alloc(1024);
  pool.free(a);
  pool.free(b);
  EXPECT_EQ(pool.alloc(60), a) << "same class, same block";
  EXPECT_EQ(pool.alloc(1000), b);
  pool.free(a);
  pool.free(b);
  // A header's worth of buffers, again and again: the pool never holds more than the first time.
  const std::vector<size_t> header = {42, 53, 69, 80, 97, 99, 240, 1024};
  std::vector<void*> live;
  for (int round = 0; round < 1000; ++round) {
    for (size_t n : header) live.push_back(pool.alloc(n + round % 7));
    for (void* p : live) ASSERT_NE(p, nullptr);
    for (void* p : live) pool.free(p);
    live.clear();
    if (round == 0) {
      EXPECT_GT(pool.peak(), 0u);
    }
  }
  uint64_t one = 0;
  for (size_t n : header) one += HpackPool::block_size(n + 6);
  EXPECT_LE(pool.peak(), one);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(HpackPool, ExhaustionIsDeniedAndCounted) {
  HpackPool pool(0, 4096);  // one block of 4096
  EXPECT_EQ(pool.capacity(), 4096u);
  void* big = pool.alloc(4096);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(pool.alloc(1), nullptr);
  EXPECT_EQ(pool.exhausted(), 1u);
  EXPECT_EQ(pool.alloc(4097), nullptr) << "above the largest block";
  EXPECT_EQ(pool.exhausted(), 2u);
  pool.free(big);
  EXPECT_NE(pool.alloc(1), nullptr) << "free again after the free";
}

TEST(HpackPool, SmallBlocksMergeBackForALargeOne) {
  HpackPool pool(0, 4096);
  std::vector<void*> small;
  for (int i = 0; i < 64; ++i) small.push_back(pool.alloc(64));
  for (void* p : small) ASSERT_NE(p, nullptr);
  EXPECT_EQ(pool.alloc(64), nullptr);
  EXPECT_EQ(pool.exhausted(), 1u);
  // Freed in a scattered order: once all are free, they merge into the whole region again.
  for (size_t i = 0; i < small.size(); i += 2) pool.free(small[i]);
  EXPECT_EQ(pool.alloc(128), nullptr) << "no two free buddies yet";
  for (size_t i = 1; i < small.size(); i += 2) pool.free(small[i]);
  void* all = pool.alloc(4096);
  EXPECT_NE(all, nullptr);
  EXPECT_EQ(pool.exhausted(), 2u);
  pool.free(all);
  // A larger free block is split for a smaller class.
  void* half = pool.alloc(2048);
  void* q1 = pool.alloc(1024);
  void* q2 = pool.alloc(1000);
  EXPECT_NE(half, nullptr);
  EXPECT_NE(q1, nullptr);
  EXPECT_NE(q2, nullptr);
  EXPECT_EQ(pool.in_use(), 4096u);
}

TEST(HpackPool, ReallocInPlaceOrMoved) {
  HpackPool pool(0, 4096);
  auto* p = static_cast<uint8_t*>(pool.alloc(100));
  std::memset(p, 7, 100);
  EXPECT_EQ(pool.realloc(p, 128), p) << "same block size: in place";
  EXPECT_EQ(pool.size_of(p), 128u);
  auto* q = static_cast<uint8_t*>(pool.realloc(p, 1500));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);
  EXPECT_EQ(pool.size_of(q), 1500u);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(q[i], 7);
  EXPECT_EQ(pool.in_use(), 2048u) << "the old block was freed";
  auto* r = static_cast<uint8_t*>(pool.realloc(q, 10));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r[9], 7);
  EXPECT_EQ(pool.in_use(), 64u);
  // No room to move: denied, counted, the block left as it was.
  void* rest = pool.alloc(2048);
  void* rest2 = pool.alloc(1024);
  ASSERT_NE(rest, nullptr);
  ASSERT_NE(rest2, nullptr);
  EXPECT_EQ(pool.realloc(r, 1024), nullptr);
  EXPECT_EQ(pool.exhausted(), 1u);
  EXPECT_EQ(pool.size_of(r), 10u);
  EXPECT_EQ(r[9], 7);
}

TEST(HpackPool, DefaultSize) {
  EXPECT_EQ(hpack_pool_default_bytes(16384, 192 << 10), uint64_t{128} << 20);
  EXPECT_EQ(hpack_pool_default_bytes(16, 192 << 10), uint64_t{1} << 20) << "four of the largest blocks";
}

}  // namespace
}  // namespace aiqos
