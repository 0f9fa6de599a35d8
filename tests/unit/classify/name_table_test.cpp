// The worker's table of kept names (classify/name_table.h): one slot per
// distinct name however many holders, slots reused once their last holder
// goes, bounded probing, names it cannot keep refused.
#include "classify/name_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace aiqos {
namespace {

TEST(NameTable, OneSlotPerDistinctName) {
  NameTable t(64);
  uint32_t a = t.acquire("api.openai.com");
  uint32_t b = t.acquire("api.openai.com");
  uint32_t c = t.acquire("api.anthropic.com");
  ASSERT_NE(a, NameTable::kNone);
  ASSERT_NE(c, NameTable::kNone);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(t.refs(a), 2u);
  EXPECT_EQ(t.in_use(), 2u);
  EXPECT_EQ(t.name(a), "api.openai.com");
  EXPECT_EQ(t.name(c), "api.anthropic.com");
  t.release(a);
  EXPECT_EQ(t.in_use(), 2u);
  t.release(b);
  EXPECT_EQ(t.in_use(), 1u);
  t.release(b);  // one release too many: ignored
  EXPECT_EQ(t.refs(a), 0u);
  EXPECT_EQ(t.acquire("api.openai.com"), a) << "a free slot keeps its name until taken";
  uint32_t e = t.acquire("");
  ASSERT_NE(e, NameTable::kNone) << "no server name is a name too";
  EXPECT_EQ(t.name(e), "");
}

// Every slot held: a new name is refused, a held one still found; a slot
// freed is taken by the next new name.
TEST(NameTable, FullTableRefusesNewNamesUntilASlotIsFree) {
  NameTable t(8);
  uint32_t idx[8];
  for (int i = 0; i < 8; ++i) {
    idx[i] = t.acquire("host" + std::to_string(i) + ".example");
    ASSERT_NE(idx[i], NameTable::kNone) << i;
  }
  EXPECT_EQ(t.in_use(), 8u);
  EXPECT_EQ(t.acquire("one.more.example"), NameTable::kNone);
  EXPECT_EQ(t.acquire("host3.example"), idx[3]);
  t.release(idx[5]);
  uint32_t n = t.acquire("one.more.example");
  EXPECT_EQ(n, idx[5]);
  EXPECT_EQ(t.name(n), "one.more.example");
  EXPECT_EQ(t.name(idx[3]), "host3.example");
}

// Names beyond 255 bytes and a table of no slots keep nothing.
TEST(NameTable, RefusesWhatItCannotHold) {
  NameTable t(16);
  EXPECT_EQ(t.acquire(std::string(NameTable::kMaxName + 1, 'a')), NameTable::kNone);
  EXPECT_NE(t.acquire(std::string(NameTable::kMaxName, 'a')), NameTable::kNone);
  NameTable none(0);
  EXPECT_EQ(none.acquire("x"), NameTable::kNone);
  EXPECT_EQ(none.name(0), "");
  EXPECT_EQ(none.memory_bytes(), 0u);
}

// Many names through a larger table: each found again where it was put,
// however the probing went, while held; none lost.
TEST(NameTable, ManyNamesFoundAgain) {
  NameTable t(4096);
  std::vector<uint32_t> at;
  for (int i = 0; i < 2048; ++i) {
    at.push_back(t.acquire("h" + std::to_string(i * 7919) + ".svc"));
    ASSERT_NE(at.back(), NameTable::kNone) << i;
  }
  for (int i = 0; i < 2048; ++i) {
    std::string name = "h" + std::to_string(i * 7919) + ".svc";
    EXPECT_EQ(t.acquire(name), at[i]) << i;
    EXPECT_EQ(t.name(at[i]), name);
  }
  EXPECT_EQ(t.in_use(), 2048u);
}

}  // namespace
}  // namespace aiqos
