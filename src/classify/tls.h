// TLS ClientHello parser over the client's first bytes, fed as they arrive
// (one ClientHello may span several TCP segments and several TLS records;
// a post-quantum key share makes it ~1.8 KB, over one segment).
//
// The handshake message is reassembled from records into a buffer owned by
// the parser, sized once at construction (default 16 KB) and reused across
// reset(); a ClientHello larger than the buffer is reported as too_large,
// never grown. Once complete it is parsed with bounds checks on every length:
// SNI host_name, ALPN protocol names, whether TLS 1.3 and ECH are offered.
// GREASE values (RFC 8701) are counted and otherwise ignored, like any
// unknown extension. String views in TlsClientHello point into the buffer:
// valid until reset() or destruction.
//
// Not TLS: the first byte decides (0x16 handshake record or not). An SSLv2
// compatible ClientHello (first byte with the high bit set, message type 1)
// is reported as sslv2 and not parsed: it carries no extensions, so no SNI.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace aiqos {

#define AIQOS_TLS_STATUS(X)                                   \
  X(need_more, "ClientHello incomplete; feed more bytes")     \
  X(done, "ClientHello parsed")                               \
  X(not_tls, "first bytes are not a TLS handshake record")    \
  X(sslv2, "SSLv2-compatible ClientHello (no extensions)")    \
  X(too_large, "ClientHello larger than the parser's buffer") \
  X(error, "malformed record or ClientHello")

enum class TlsStatus : uint8_t {
#define X(name, desc) name,
  AIQOS_TLS_STATUS(X)
#undef X
      count_
};
const char* tls_status_name(TlsStatus s) noexcept;

inline constexpr size_t kMaxAlpn = 8;

struct TlsClientHello {
  uint16_t record_version = 0;  // of the first record (0x0301 from most clients)
  uint16_t legacy_version = 0;  // ClientHello.legacy_version (0x0303 for TLS 1.2/1.3)
  std::string_view sni;         // first host_name of server_name, as sent
  std::array<std::string_view, kMaxAlpn> alpn{};  // in the client's order, GREASE dropped
  uint8_t n_alpn = 0;
  bool alpn_truncated = false;  // more than kMaxAlpn protocols offered
  bool has_sni = false;
  bool has_alpn = false;
  bool offers_tls13 = false;  // supported_versions lists 0x0304
  bool has_ech = false;       // encrypted_client_hello: sni is the outer, public name
  uint16_t n_extensions = 0;
  uint16_t n_grease = 0;  // GREASE values in ciphers, extensions, groups, versions, ALPN

  std::span<const std::string_view> alpn_list() const noexcept { return {alpn.data(), n_alpn}; }
  bool offers_alpn(std::string_view proto) const noexcept {
    for (std::string_view p : alpn_list())
      if (p == proto) return true;
    return false;
  }
};

// Per-connection (client direction) state. Allocates its buffer once in the
// constructor; feed() never allocates.
class TlsClientHelloParser {
 public:
  static constexpr size_t kDefaultCapacity = 16 * 1024;
  explicit TlsClientHelloParser(size_t capacity = kDefaultCapacity);

  // Feeds the next in-order client bytes. Once the status is not need_more it
  // is final and further input is ignored; bytes after the ClientHello (the
  // rest of a record, early data) are never looked at.
  TlsStatus feed(std::span<const uint8_t> in) noexcept;
  TlsStatus status() const noexcept { return status_; }
  // Valid when status() == done.
  const TlsClientHello& hello() const noexcept { return hello_; }
  // Bytes consumed from the stream up to the end of the ClientHello message.
  uint64_t consumed() const noexcept { return consumed_; }
  void reset() noexcept;

 private:
  TlsStatus parse_hello() noexcept;

  std::unique_ptr<uint8_t[]> buf_;  // the handshake message, from its 4-byte header
  uint32_t cap_;
  uint32_t len_ = 0;
  uint32_t need_ = 0;  // full handshake length once its header is in, else 0
  uint64_t consumed_ = 0;
  uint16_t rec_left_ = 0;  // bytes left in the current record
  uint8_t hdr_[5] = {};
  uint8_t hdr_n_ = 0;
  TlsStatus status_ = TlsStatus::need_more;
  TlsClientHello hello_;
};

}  // namespace aiqos
