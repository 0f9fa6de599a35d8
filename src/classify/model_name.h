// A model name copied out of untrusted traffic (URL path, JSON body, protobuf
// field) into fixed storage: no allocation, bounded length, and a flag saying
// whether bytes were dropped. Shared by endpoint, json_model and grpc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace aiqos {

// N bytes of storage; what does not fit is dropped and flagged.
template <std::size_t N>
struct BoundedString {
  static_assert(N < 65536);
  std::array<char, N> buf{};
  uint16_t len = 0;
  bool truncated = false;  // the source was longer than N bytes

  std::string_view view() const noexcept { return {buf.data(), len}; }
  bool empty() const noexcept { return len == 0 && !truncated; }
  void clear() noexcept {
    len = 0;
    truncated = false;
  }
  void push(char c) noexcept {
    if (len < N)
      buf[len++] = c;
    else
      truncated = true;
  }
  // The same as push() of each byte, in one copy.
  void append(std::string_view s) noexcept {
    const std::size_t room = N - len;
    const std::size_t k = s.size() < room ? s.size() : room;
    // GCC 12 at -O3 (release) bounds `s` by the temporary it was built from
    // when inlined into a caller and warns past it: k <= s.size() always.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overread"
    if (k != 0) std::memcpy(buf.data() + len, s.data(), k);
#pragma GCC diagnostic pop
    len = static_cast<uint16_t>(len + k);
    if (k < s.size()) truncated = true;
  }
  // Appends `cp` as UTF-8 (the caller maps invalid code points to U+FFFD).
  void push_utf8(uint32_t cp) noexcept {
    if (cp < 0x80) {
      push(static_cast<char>(cp));
    } else if (cp < 0x800) {
      push(static_cast<char>(0xc0 | (cp >> 6)));
      push(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      push(static_cast<char>(0xe0 | (cp >> 12)));
      push(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      push(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      push(static_cast<char>(0xf0 | (cp >> 18)));
      push(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      push(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      push(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
};

inline constexpr std::size_t kMaxModelName = 256;
using ModelName = BoundedString<kMaxModelName>;

}  // namespace aiqos
