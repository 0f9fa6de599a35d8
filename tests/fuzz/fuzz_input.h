// Helpers shared by the libFuzzer targets: a cursor over the fuzz bytes and a
// check that aborts (with file:line) whatever NDEBUG says, so that the same
// target finds invariant violations under libFuzzer and in the replay driver.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

namespace aiqos::fuzz {

// Reads fixed-size fields from the front of the input; past the end every
// read returns zeros / empty spans, so a target never has to check lengths.
class Input {
 public:
  Input(const uint8_t* data, size_t size) noexcept : p_(data), n_(size) {}

  bool empty() const noexcept { return n_ == 0; }
  size_t size() const noexcept { return n_; }
  uint8_t u8() noexcept {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint16_t u16() noexcept { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() noexcept { return u16() | (uint32_t{u16()} << 16); }
  std::span<const uint8_t> bytes(size_t k) noexcept {
    k = std::min(k, n_);
    std::span<const uint8_t> s{p_, k};
    p_ += k;
    n_ -= k;
    return s;
  }
  std::span<const uint8_t> rest() noexcept { return bytes(n_); }

 private:
  const uint8_t* p_;
  size_t n_;
};

// Reads every byte of a view handed to a callback, so that ASan reports a
// view that points at freed or foreign memory where the callback receives it.
inline uint32_t touch(std::string_view s) noexcept {
  uint32_t h = 0;
  for (char c : s) h = h * 31 + static_cast<uint8_t>(c);
  return h;
}
inline uint32_t touch(std::span<const uint8_t> s) noexcept {
  uint32_t h = 0;
  for (uint8_t c : s) h = h * 31 + c;
  return h;
}

}  // namespace aiqos::fuzz
