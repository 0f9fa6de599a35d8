#include "classify/tls.h"

#include <algorithm>
#include <cstring>

namespace aiqos {
namespace {

constexpr std::array<const char*, static_cast<size_t>(TlsStatus::count_)> kStatusNames = {
#define X(name, desc) #name,
    AIQOS_TLS_STATUS(X)
#undef X
};

constexpr uint8_t kHandshake = 22;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kMaxRecord = 16384;  // plaintext record limit, RFC 8446 5.1

enum : uint16_t {
  kExtServerName = 0,
  kExtSupportedGroups = 10,
  kExtAlpn = 16,
  kExtSupportedVersions = 43,
  kExtEch = 0xfe0d,
};

// RFC 8701: 0x0A0A, 0x1A1A, ..., 0xFAFA.
bool is_grease(uint16_t v) noexcept { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

// Bounds-checked reader over a complete message: any short read sets `bad`
// and yields zeros/empty spans, so parsing code checks once per structure.
struct Reader {
  const uint8_t* p;
  size_t n;
  bool bad = false;

  size_t left() const noexcept { return n; }
  bool take(size_t k, const uint8_t*& out) noexcept {
    if (bad || k > n) {
      bad = true;
      return false;
    }
    out = p;
    p += k;
    n -= k;
    return true;
  }
  uint32_t u(size_t k) noexcept {
    const uint8_t* q;
    if (!take(k, q)) return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < k; ++i) v = v << 8 | q[i];
    return v;
  }
  // A length-prefixed sub-block (prefix of `k` bytes).
  Reader sub(size_t k) noexcept {
    size_t len = u(k);
    const uint8_t* q = nullptr;
    if (!take(len, q)) return Reader{nullptr, 0, true};
    return Reader{q, len};
  }
};

std::string_view sv(const uint8_t* p, size_t n) noexcept {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace

const char* tls_status_name(TlsStatus s) noexcept {
  auto i = static_cast<size_t>(s);
  return i < kStatusNames.size() ? kStatusNames[i] : "?";
}

TlsClientHelloParser::TlsClientHelloParser(size_t capacity)
    : buf_(new uint8_t[std::max<size_t>(capacity, 64)]),
      cap_(static_cast<uint32_t>(std::min<size_t>(std::max<size_t>(capacity, 64), 1u << 24))) {}

void TlsClientHelloParser::reset() noexcept {
  len_ = need_ = 0;
  consumed_ = 0;
  rec_left_ = 0;
  hdr_n_ = 0;
  status_ = TlsStatus::need_more;
  hello_ = {};
}

TlsStatus TlsClientHelloParser::feed(std::span<const uint8_t> in) noexcept {
  const uint8_t* p = in.data();
  const uint8_t* const end = p + in.size();
  while (p < end && status_ == TlsStatus::need_more) {
    if (rec_left_ == 0) {
      // Record header, checked byte by byte so that garbage is refused on
      // its first byte.
      const uint8_t c = *p++;
      ++consumed_;
      hdr_[hdr_n_++] = c;
      const bool first = consumed_ == hdr_n_;  // the stream's first record
      if (hdr_n_ == 1 && c != kHandshake) {
        status_ = first && (c & 0x80) ? TlsStatus::need_more : TlsStatus::not_tls;
        if (!first) status_ = TlsStatus::error;  // a non-handshake record mid-ClientHello
        continue;
      }
      if (hdr_[0] != kHandshake) {  // SSLv2 candidate: 2-byte length, then type
        if (hdr_n_ == 3) status_ = c == kClientHello ? TlsStatus::sslv2 : TlsStatus::not_tls;
        continue;
      }
      if (hdr_n_ == 2 && c != 3) status_ = first ? TlsStatus::not_tls : TlsStatus::error;
      if (hdr_n_ == 3 && c > 4) status_ = first ? TlsStatus::not_tls : TlsStatus::error;
      if (hdr_n_ < 5) continue;
      hdr_n_ = 0;
      const uint16_t rec_len = static_cast<uint16_t>(hdr_[3] << 8 | hdr_[4]);
      if (rec_len == 0 || rec_len > kMaxRecord) {
        status_ = TlsStatus::error;
        continue;
      }
      if (first) hello_.record_version = static_cast<uint16_t>(hdr_[1] << 8 | hdr_[2]);
      rec_left_ = rec_len;
      continue;
    }
    // Record payload: append to the handshake message, no further than it.
    size_t want = need_ ? need_ - len_ : 4 - len_;
    size_t n = std::min<size_t>({want, rec_left_, static_cast<size_t>(end - p)});
    if (len_ + n > cap_) {
      status_ = TlsStatus::too_large;
      continue;
    }
    std::memcpy(buf_.get() + len_, p, n);
    p += n;
    len_ += static_cast<uint32_t>(n);
    rec_left_ = static_cast<uint16_t>(rec_left_ - n);
    consumed_ += n;
    if (!need_ && len_ == 4) {
      if (buf_[0] != kClientHello) {
        status_ = TlsStatus::error;
        continue;
      }
      const uint32_t body = uint32_t{buf_[1]} << 16 | uint32_t{buf_[2]} << 8 | buf_[3];
      if (uint64_t{body} + 4 > cap_) {
        status_ = TlsStatus::too_large;
        continue;
      }
      need_ = body + 4;
    }
    if (need_ && len_ == need_) status_ = parse_hello();
  }
  return status_;
}

TlsStatus TlsClientHelloParser::parse_hello() noexcept {
  TlsClientHello& h = hello_;
  Reader r{buf_.get() + 4, len_ - 4};
  h.legacy_version = static_cast<uint16_t>(r.u(2));
  const uint8_t* random;
  r.take(32, random);
  Reader session = r.sub(1);
  if (session.left() > 32) return TlsStatus::error;
  Reader ciphers = r.sub(2);
  if (ciphers.left() < 2 || ciphers.left() % 2) return TlsStatus::error;
  while (ciphers.left())
    if (is_grease(static_cast<uint16_t>(ciphers.u(2)))) ++h.n_grease;
  Reader comp = r.sub(1);
  if (r.bad || comp.left() < 1) return TlsStatus::error;
  if (r.left() == 0) return TlsStatus::done;  // no extensions (pre-TLS 1.2 clients)

  Reader exts = r.sub(2);
  if (r.bad || r.left() != 0) return TlsStatus::error;
  uint32_t seen = 0;  // known extensions, to refuse duplicates (RFC 8446 4.2)
  while (exts.left()) {
    const auto type = static_cast<uint16_t>(exts.u(2));
    Reader e = exts.sub(2);
    if (exts.bad) return TlsStatus::error;
    ++h.n_extensions;
    if (is_grease(type)) {
      ++h.n_grease;
      continue;
    }
    const uint32_t bit = type == kExtServerName          ? 1
                         : type == kExtAlpn              ? 2
                         : type == kExtSupportedVersions ? 4
                         : type == kExtSupportedGroups   ? 8
                         : type == kExtEch               ? 16
                                                         : 0;
    if (seen & bit) return TlsStatus::error;
    seen |= bit;
    switch (type) {
      case kExtServerName: {
        Reader list = e.sub(2);
        if (e.bad || e.left() || list.left() == 0) return TlsStatus::error;
        while (list.left()) {
          const uint32_t name_type = list.u(1);
          Reader name = list.sub(2);
          if (list.bad) return TlsStatus::error;
          if (name_type == 0 && !h.has_sni) {
            if (name.left() == 0) return TlsStatus::error;
            h.sni = sv(name.p, name.left());
            h.has_sni = true;
          }
        }
        break;
      }
      case kExtAlpn: {
        Reader list = e.sub(2);
        if (e.bad || e.left() || list.left() == 0) return TlsStatus::error;
        h.has_alpn = true;
        while (list.left()) {
          Reader proto = list.sub(1);
          if (list.bad || proto.left() == 0) return TlsStatus::error;
          if (proto.left() == 2 && is_grease(static_cast<uint16_t>(proto.p[0] << 8 | proto.p[1]))) {
            ++h.n_grease;
          } else if (h.n_alpn < kMaxAlpn) {
            h.alpn[h.n_alpn++] = sv(proto.p, proto.left());
          } else {
            h.alpn_truncated = true;
          }
        }
        break;
      }
      case kExtSupportedVersions: {
        Reader list = e.sub(1);
        if (e.bad || e.left() || list.left() % 2) return TlsStatus::error;
        while (list.left()) {
          const auto v = static_cast<uint16_t>(list.u(2));
          if (v == 0x0304) h.offers_tls13 = true;
          if (is_grease(v)) ++h.n_grease;
        }
        break;
      }
      case kExtSupportedGroups: {
        Reader list = e.sub(2);
        if (e.bad || e.left() || list.left() % 2) return TlsStatus::error;
        while (list.left())
          if (is_grease(static_cast<uint16_t>(list.u(2)))) ++h.n_grease;
        break;
      }
      case kExtEch:
        h.has_ech = true;
        break;
      default:
        break;  // unknown: skipped by its length
    }
  }
  return TlsStatus::done;
}

}  // namespace aiqos
