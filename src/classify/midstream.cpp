#include "classify/midstream.h"

#include <cstring>
#include <string_view>

namespace aiqos {
namespace {

constexpr size_t kMaxMethod = 7;  // OPTIONS, CONNECT
constexpr size_t kMaxTarget = 8192;

bool is_method_char(uint8_t c) noexcept { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }
bool is_target_char(uint8_t c) noexcept { return c > 0x20 && c < 0x7f; }
bool is_digit(uint8_t c) noexcept { return c >= '0' && c <= '9'; }

// `HTTP/1.x` at b[i]: yes, no, or need_more.
Resync http_version_at(std::span<const uint8_t> b, size_t i) noexcept {
  static constexpr char kV[] = "HTTP/1.";
  for (size_t k = 0; k < 8; ++k) {
    if (i + k >= b.size()) return Resync::need_more;
    uint8_t c = b[i + k];
    if (k < 7 ? c != static_cast<uint8_t>(kV[k]) : (c != '0' && c != '1')) return Resync::no;
  }
  return Resync::yes;
}

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRstStream = 0x3, kSettings = 0x4,
                  kPushPromise = 0x5, kPing = 0x6, kGoaway = 0x7, kWindowUpdate = 0x8,
                  kContinuation = 0x9;

struct FrameHdr {
  uint32_t len;
  uint8_t type, flags;
  uint32_t stream;
};

FrameHdr read_hdr(const uint8_t* h) noexcept {
  return FrameHdr{.len = (uint32_t{h[0]} << 16) | (uint32_t{h[1]} << 8) | h[2],
                  .type = h[3],
                  .flags = h[4],
                  .stream = (uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]};
}

// Every rule a frame header alone can be checked against (RFC 9113 section 6).
bool frame_ok(const FrameHdr& f, uint32_t max_frame_size) noexcept {
  if (f.len > max_frame_size || (f.stream & 0x80000000u)) return false;
  const bool s0 = f.stream == 0;
  switch (f.type) {
    case kData:  // an empty DATA frame without END_STREAM is legal, but nobody sends one
      return !s0 && (f.flags & ~0x09) == 0 && f.len >= ((f.flags & 0x08) ? 1u : 0u) &&
             (f.len > 0 || (f.flags & 0x01));
    case kHeaders:
      return !s0 && (f.flags & ~0x2d) == 0 &&
             f.len > ((f.flags & 0x08) ? 1u : 0u) + ((f.flags & 0x20) ? 5u : 0u);
    case kPriority: return !s0 && f.flags == 0 && f.len == 5;
    case kRstStream: return !s0 && f.flags == 0 && f.len == 4;
    case kSettings: return s0 && (f.flags & ~0x01) == 0 && ((f.flags & 0x01) ? f.len == 0 : f.len % 6 == 0);
    case kPushPromise: return !s0 && (f.flags & ~0x0c) == 0 && f.len >= 4;
    case kPing: return s0 && (f.flags & ~0x01) == 0 && f.len == 8;
    case kGoaway: return s0 && f.flags == 0 && f.len >= 8;
    case kWindowUpdate: return f.flags == 0 && f.len == 4;
    case kContinuation: return !s0 && (f.flags & ~0x04) == 0;
    default: return false;  // extension frames are legal, but prove nothing
  }
}

// The role a header block's first field shows: request pseudo-headers are
// static entries 1-7, :status is 8-14.
H2Role role_of_field(uint8_t idx) noexcept {
  if (idx >= 1 && idx <= 7) return H2Role::client;
  if (idx >= 8 && idx <= 14) return H2Role::server;
  return H2Role::unknown;
}

H2Role block_role(std::span<const uint8_t> blk) noexcept {
  size_t i = 0;
  // Dynamic table size updates (001xxxxx, 5-bit prefix integer) may lead.
  while (i < blk.size() && (blk[i] & 0xe0) == 0x20) {
    if ((blk[i] & 0x1f) != 0x1f) {
      ++i;
      continue;
    }
    ++i;
    while (i < blk.size() && (blk[i] & 0x80)) ++i;
    ++i;
  }
  if (i >= blk.size()) return H2Role::unknown;
  uint8_t c = blk[i];
  if (c & 0x80) return role_of_field(c & 0x7f);           // indexed
  if ((c & 0xc0) == 0x40) return role_of_field(c & 0x3f);  // literal, incremental indexing
  if ((c & 0xe0) == 0x00) return role_of_field(c & 0x0f);  // literal, without / never indexed
  return H2Role::unknown;
}

}  // namespace

// Only the registered methods: a point picked at random in a stream must not
// pass for a request line (the tail "T /v1/..." of "POST /v1/...").
static bool first_of_method(uint8_t c) noexcept {
  return c == 'G' || c == 'P' || c == 'D' || c == 'H' || c == 'O' || c == 'C' || c == 'T';
}

static bool known_method(std::span<const uint8_t> m) noexcept {
  static constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD",
                                                  "OPTIONS", "PATCH", "CONNECT", "TRACE"};
  std::string_view v(reinterpret_cast<const char*>(m.data()), m.size());
  for (std::string_view k : kMethods)
    if (v == k) return true;
  return false;
}

Resync h1_request_line_at(std::span<const uint8_t> b) noexcept {
  size_t i = 0;
  while (i < b.size() && i <= kMaxMethod && is_method_char(b[i])) ++i;
  if (i == b.size()) return i <= kMaxMethod ? Resync::need_more : Resync::no;
  if (i == 0 || i > kMaxMethod || b[i] != ' ' || !known_method(b.first(i))) return Resync::no;
  size_t t = ++i;
  if (t == b.size()) return Resync::need_more;
  if (b[t] != '/' && b[t] != '*' && !((b[t] | 0x20) >= 'a' && (b[t] | 0x20) <= 'z')) return Resync::no;
  while (i < b.size() && i - t <= kMaxTarget && is_target_char(b[i])) ++i;
  if (i == b.size()) return i - t <= kMaxTarget ? Resync::need_more : Resync::no;
  if (b[i] != ' ' || i - t > kMaxTarget) return Resync::no;
  Resync v = http_version_at(b, i + 1);
  if (v != Resync::yes) return v;
  i += 9;
  if (i >= b.size()) return Resync::need_more;
  if (b[i] == '\n') return Resync::yes;
  if (b[i] != '\r') return Resync::no;
  if (i + 1 >= b.size()) return Resync::need_more;
  return b[i + 1] == '\n' ? Resync::yes : Resync::no;
}

Resync h1_status_line_at(std::span<const uint8_t> b) noexcept {
  Resync v = http_version_at(b, 0);
  if (v != Resync::yes) return v;
  for (size_t k = 8; k < 13; ++k) {
    if (k >= b.size()) return Resync::need_more;
    bool ok = (k == 8 || k == 12) ? b[k] == ' ' || (k == 12 && b[k] == '\r') : is_digit(b[k]);
    if (!ok) return Resync::no;
  }
  return (b[9] >= '1' && b[9] <= '5') ? Resync::yes : Resync::no;
}

H2Chain h2_chain_at(std::span<const uint8_t> b, uint32_t max_frame_size) noexcept {
  H2Chain c;
  size_t pos = 0;
  bool in_block = false;
  uint32_t block_stream = 0;
  for (;;) {
    if (pos + 9 > b.size()) {
      // Two frames that end where the bytes end: enough when one of them is
      // a header block that reads as a request or a response.
      const bool enough = pos == b.size() && c.frames >= 2 && c.role != H2Role::unknown;
      c.found = enough ? Resync::yes : Resync::need_more;
      return c;
    }
    FrameHdr f = read_hdr(b.data() + pos);
    if (!frame_ok(f, max_frame_size)) return c;
    if (in_block != (f.type == kContinuation)) return c;  // a block must go on, and only a block
    if (in_block && f.stream != block_stream) return c;
    if (f.type == kHeaders || f.type == kPushPromise || f.type == kContinuation) {
      in_block = !(f.flags & 0x04);
      block_stream = f.stream;
    }
    if (f.type == kPushPromise) c.role = H2Role::server;
    if (f.type == kHeaders && c.role == H2Role::unknown) {
      size_t skip = ((f.flags & 0x08) ? 1u : 0u) + ((f.flags & 0x20) ? 5u : 0u);
      size_t at = pos + 9 + skip;
      size_t end = pos + 9 + f.len;
      if (end > b.size()) end = b.size();
      if (at < end) c.role = block_role(b.subspan(at, end - at));
    }
    ++c.frames;
    if (c.frames == 3) {
      c.found = Resync::yes;
      return c;
    }
    pos += 9 + size_t{f.len};
  }
}

ResyncPoint find_resync(std::span<const uint8_t> b, size_t from, ResyncKind kind,
                        uint32_t max_frame_size) noexcept {
  ResyncPoint r;
  bool have_resume = false;
  for (size_t i = from; i < b.size(); ++i) {
    // HTTP/1: a message may start anywhere (after a body delimited by its
    // length, not by a line end); only its first letters are worth a look.
    if (kind == ResyncKind::h1_request && !first_of_method(b[i])) continue;
    if (kind == ResyncKind::h1_status && b[i] != 'H') continue;
    Resync found;
    H2Role role = H2Role::unknown;
    std::span<const uint8_t> rest = b.subspan(i);
    if (kind == ResyncKind::h1_request) {
      found = h1_request_line_at(rest);
    } else if (kind == ResyncKind::h1_status) {
      found = h1_status_line_at(rest);
    } else {
      H2Chain c = h2_chain_at(rest, max_frame_size);
      found = c.found;
      role = c.role;
    }
    if (found == Resync::yes) {
      r.found = Resync::yes;
      r.offset = i;
      r.role = role;
      r.resume = have_resume ? r.resume : i;
      return r;
    }
    if (found == Resync::need_more && !have_resume) {
      have_resume = true;
      r.resume = i;
      r.found = Resync::need_more;
    }
  }
  // Nothing pending: the next candidate is at or after the end (for HTTP/1,
  // the next line start, which the check above finds from there).
  if (!have_resume) r.resume = b.size() < from ? from : b.size();
  return r;
}

}  // namespace aiqos
