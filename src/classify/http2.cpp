#include "classify/http2.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace aiqos {
namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRstStream = 0x3, kSettings = 0x4,
                  kPushPromise = 0x5, kPing = 0x6, kGoaway = 0x7, kWindowUpdate = 0x8,
                  kContinuation = 0x9;
constexpr uint8_t kFlagEndStream = 0x1, kFlagAck = 0x1, kFlagEndHeaders = 0x4, kFlagPadded = 0x8,
                  kFlagPriority = 0x20;
constexpr uint16_t kSettingsHeaderTableSize = 0x1;
constexpr uint32_t kDefaultTableSize = 4096;

inline uint32_t rd32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

Http2Connection::Http2Connection(const Http2Config& cfg, RequestEvents& sink) noexcept
    : cfg_(cfg), sink_(sink) {
  side(Dir::c2s).st = St::preface;
  bool ok = req_.init(cfg_.capture);
  streams_ = new (std::nothrow) StreamSlot[cfg_.max_streams + 1]{};
  resp_ctype_ = new (std::nothrow) char[cfg_.capture.max_value_len + 1];
  ok = ok && streams_ && resp_ctype_;
  for (Side& s : sides_) {
    s.mem.cap = cfg_.max_hpack_mem;
    s.mem.pool = cfg_.hpack_pool;
    s.allocator = {&s.mem, mem_malloc, mem_free, mem_calloc, mem_realloc};
    if (!ok || nghttp2_hd_inflate_new2(&s.inflater, &s.allocator) != 0) {
      s.inflater = nullptr;
      ok = false;
      continue;
    }
    if (cfg_.max_hpack_table < kDefaultTableSize) {
      ok = ok && nghttp2_hd_inflate_change_table_size(s.inflater, cfg_.max_hpack_table) == 0;
      s.table_limit = cfg_.max_hpack_table;
    }
  }
  if (!ok) fail(L7Error::hpack_memory);
}

Http2Connection::~Http2Connection() {
  for (Side& s : sides_)
    if (s.inflater) nghttp2_hd_inflate_del(s.inflater);
  delete[] streams_;
  delete[] resp_ctype_;
}

void Http2Connection::fail(L7Error e) noexcept {
  if (error_ != L7Error::none) return;
  error_ = e;
  sink_.on_parse_error(e);
}

void Http2Connection::start_upgraded(std::optional<uint32_t> client_table_size) noexcept {
  if (failed()) return;
  max_client_stream_ = 1;
  if (open_stream(1, kReqEnded)) ++stats_.streams_opened;
  if (client_table_size) apply_table_size(Dir::s2c, *client_table_size);
}

void Http2Connection::start_midstream() noexcept {
  if (failed()) return;
  midstream_ = true;
  side(Dir::c2s).st = St::frame_header;
  // The peers' SETTINGS were missed: allow any table the bound allows.
  for (Side& s : sides_) {
    if (nghttp2_hd_inflate_change_table_size(s.inflater, cfg_.max_hpack_table) != 0)
      return fail(L7Error::hpack_memory);
    s.table_limit = cfg_.max_hpack_table;
  }
}

void Http2Connection::feed(Dir d, std::span<const uint8_t> bytes) noexcept {
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0 && !failed()) {
    size_t k = step(d, p, n);
    p += k;
    n -= k;
    stats_.bytes[static_cast<size_t>(d)] += k;
  }
  stats_.ignored_bytes += n;
}

size_t Http2Connection::step(Dir d, const uint8_t* p, size_t n) noexcept {
  Side& s = side(d);
  switch (s.st) {
    case St::preface: {
      size_t k = 0;
      while (k < n && s.preface_have < kPreface.size()) {
        if (p[k] != kPreface[s.preface_have]) {
          fail(L7Error::bad_preface);
          return k;
        }
        ++k;
        ++s.preface_have;
      }
      if (s.preface_have == kPreface.size()) s.st = St::frame_header;
      return k;
    }
    case St::frame_header: {
      if (s.hdr_have == 0 && n >= s.hdr.size()) {  // the whole header at hand: a fixed-size copy
        // A whole unpadded DATA frame at hand (a streamed token, a body
        // chunk) outside a header block: in one go.
        const uint32_t len = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
        if (p[3] == kData && !(p[4] & kFlagPadded) && !s.in_block && len <= cfg_.max_frame_size &&
            n - s.hdr.size() >= len && (rd32(p + 5) & 0x7fffffffu) != 0)
          return whole_data_frame(d, p, len);
        std::memcpy(s.hdr.data(), p, s.hdr.size());
        on_frame_header(d);
        return s.hdr.size();
      }
      size_t k = std::min<size_t>(n, s.hdr.size() - s.hdr_have);
      std::memcpy(s.hdr.data() + s.hdr_have, p, k);
      s.hdr_have = static_cast<uint8_t>(s.hdr_have + k);
      if (s.hdr_have == s.hdr.size()) {
        s.hdr_have = 0;
        on_frame_header(d);
      }
      return k;
    }
    case St::pad_len:
      s.pad_len = p[0];
      if (s.pad_len > s.len - 1 - s.fix_need) {
        fail(L7Error::bad_frame);
        return 1;
      }
      s.body_left = s.len - 1 - s.fix_need - s.pad_len;
      if (s.fix_need) {
        s.st = St::prefix;
      } else {
        begin_payload(d);
      }
      return 1;
    case St::prefix: {
      size_t k = std::min<size_t>(n, s.fix_need - s.fix_have);
      std::memcpy(s.fix.data() + s.fix_have, p, k);
      s.fix_have = static_cast<uint8_t>(s.fix_have + k);
      if (s.fix_have == s.fix_need) {
        s.fix_have = 0;
        on_prefix(d);
        if (!failed()) begin_payload(d);
      }
      return k;
    }
    case St::body: {
      size_t k = std::min<size_t>(n, s.body_left);
      s.body_left -= static_cast<uint32_t>(k);
      bool last = s.body_left == 0;
      on_body(d, p, k, last);
      if (last && !failed()) {
        if (s.pad_len) {
          s.st = St::padding;
          s.left = s.pad_len;
        } else {
          on_frame_end(d);
        }
      }
      return k;
    }
    case St::padding: {
      size_t k = std::min<size_t>(n, s.left);
      s.left -= static_cast<uint32_t>(k);
      if (s.left == 0) on_frame_end(d);
      return k;
    }
  }
  return n;
}

// A frame starts: its 9-byte header at `h`, whose length field reads `len`
// (no padding or prefix read yet).
void Http2Connection::start_frame(Side& s, Dir d, const uint8_t* h, uint32_t len) noexcept {
  s.len = len;
  s.type = h[3];
  s.flags = h[4];
  s.stream = rd32(h + 5) & 0x7fffffffu;
  s.pad_len = 0;
  s.fix_need = 0;
  s.fix_have = 0;
  ++stats_.frames[static_cast<size_t>(d)];
}

void Http2Connection::on_frame_header(Dir d) noexcept {
  Side& s = side(d);
  const uint8_t* h = s.hdr.data();
  start_frame(s, d, h, (uint32_t{h[0]} << 16) | (uint32_t{h[1]} << 8) | h[2]);

  if (s.len > cfg_.max_frame_size) return fail(L7Error::frame_too_large);
  if (s.in_block && (s.type != kContinuation || s.stream != s.block_stream))
    return fail(L7Error::continuation_expected);

  bool padded = false;
  bool need_stream = true;  // false: must be on stream 0
  bool ok = true;
  switch (s.type) {
    case kData:
      padded = s.flags & kFlagPadded;
      break;
    case kHeaders:
      padded = s.flags & kFlagPadded;
      s.fix_need = (s.flags & kFlagPriority) ? 5 : 0;
      break;
    case kPriority:
      ok = s.len == 5;
      s.fix_need = 5;
      break;
    case kRstStream:
      ok = s.len == 4;
      s.fix_need = 4;
      break;
    case kSettings:
      need_stream = false;
      ok = (s.flags & kFlagAck) ? s.len == 0 : s.len % 6 == 0;
      break;
    case kPushPromise:
      ok = d == Dir::s2c;
      padded = s.flags & kFlagPadded;
      s.fix_need = 4;
      break;
    case kPing:
      need_stream = false;
      ok = s.len == 8;
      s.fix_need = 8;
      break;
    case kGoaway:
      need_stream = false;
      ok = s.len >= 8;
      s.fix_need = 8;
      break;
    case kWindowUpdate:
      ok = s.len == 4;
      s.fix_need = 4;
      break;
    case kContinuation:
      ok = s.in_block;
      break;
    default:
      ++stats_.unknown_frames;
      break;
  }
  bool known = s.type <= kContinuation;
  if (known && s.type != kWindowUpdate && (s.stream != 0) != need_stream) ok = false;
  if (!ok || s.len < uint32_t{padded} + s.fix_need) return fail(L7Error::bad_frame);

  if (padded) {
    s.st = St::pad_len;
  } else {
    s.body_left = s.len - s.fix_need;
    if (s.fix_need) {
      s.st = St::prefix;
    } else {
      begin_payload(d);
    }
  }
}

void Http2Connection::on_prefix(Dir d) noexcept {
  Side& s = side(d);
  const uint8_t* f = s.fix.data();
  switch (s.type) {
    case kRstStream:
      if (StreamSlot* st = find_stream(s.stream)) {
        uint32_t id = st->id;
        st->id = 0;
        --n_open_;
        sink_.on_stream_reset(id, rd32(f), d);
      } else {
        ++stats_.stray_frames;
      }
      break;
    case kGoaway:
      sink_.on_goaway(d, rd32(f) & 0x7fffffffu, rd32(f + 4));
      break;
    default:  // PRIORITY fields, PING data, WINDOW_UPDATE increment, promised id
      break;
  }
}

// Entered once the pad length and fixed prefix are read: the frame's body
// length is known, so header block caps are checked here, whatever the split.
void Http2Connection::begin_payload(Dir d) noexcept {
  Side& s = side(d);
  switch (s.type) {
    case kHeaders: {
      Block kind = Block::ignored;
      if (d == Dir::c2s) {
        // A client stream id above every one seen opens a stream (it cannot
        // be open yet: no lookup); a lower one can only be trailers.
        if ((s.stream & 1) && s.stream > max_client_stream_) {
          max_client_stream_ = s.stream;
          if (open_stream(s.stream, 0)) {
            ++stats_.streams_opened;
            kind = Block::request;
          } else {
            ++stats_.streams_dropped;
          }
        } else if (StreamSlot* st = find_stream(s.stream)) {
          kind = (st->flags & kReqEnded) ? Block::ignored : Block::req_trailers;
        } else {
          ++stats_.stray_frames;
        }
      } else if (StreamSlot* st = find_stream(s.stream)) {
        kind = (st->flags & kRespFinal) ? Block::resp_trailers : Block::response;
      } else {
        ++stats_.stray_frames;
      }
      begin_block(d, kind);
      break;
    }
    case kPushPromise:
      ++stats_.push_promises;
      begin_block(d, Block::push);
      break;
    default:
      break;
  }
  if (s.type == kHeaders || s.type == kPushPromise || s.type == kContinuation) {
    if (s.body_left > cfg_.max_header_block - s.block_bytes) return fail(L7Error::header_block_too_large);
    s.block_bytes += s.body_left;
  }
  if (s.body_left > 0) {
    s.st = St::body;
    return;
  }
  on_body(d, nullptr, 0, true);
  if (failed()) return;
  if (s.pad_len) {
    s.st = St::padding;
    s.left = s.pad_len;
  } else {
    on_frame_end(d);
  }
}

void Http2Connection::begin_block(Dir d, Block kind) noexcept {
  Side& s = side(d);
  s.block = kind;
  s.in_block = true;
  s.block_end_stream = s.type == kHeaders && (s.flags & kFlagEndStream);
  s.block_stream = s.stream;
  s.block_lost = false;
  s.block_bytes = 0;
  s.list_bytes = 0;
  s.status = 0;
  s.grpc_status = -1;
  s.ctype_len = 0;
  s.encoded = false;
  if (kind == Block::request) req_.reset();
}

void Http2Connection::on_body(Dir d, const uint8_t* p, size_t n, bool last) noexcept {
  Side& s = side(d);
  switch (s.type) {
    case kData: {
      if (n == 0) return;
      StreamSlot* st = find_stream(s.stream);
      if (!st) {
        if (last) ++stats_.stray_frames;
        return;
      }
      data_body(d, *st, p, n);
      return;
    }
    case kHeaders:
    case kPushPromise:
    case kContinuation: {
      bool final = last && (s.flags & kFlagEndHeaders);
      if (n > 0 || final) inflate(d, p, n, final);
      return;
    }
    case kSettings:
      while (n > 0) {
        size_t k = std::min<size_t>(n, 6 - s.fix_have);
        std::memcpy(s.fix.data() + s.fix_have, p, k);
        s.fix_have = static_cast<uint8_t>(s.fix_have + k);
        p += k;
        n -= k;
        if (s.fix_have == 6) {
          s.fix_have = 0;
          on_settings_entry(d);
        }
      }
      return;
    default:  // GOAWAY debug data, unknown frame types
      return;
  }
}

// DATA bytes of a tracked stream: to the request or the response while that
// side is open (a response only once its final headers came).
void Http2Connection::data_body(Dir d, StreamSlot& st, const uint8_t* p, size_t n) noexcept {
  if (d == Dir::c2s && !(st.flags & kReqEnded)) {
    sink_.on_request_body(st.id, {p, n});
  } else if (d == Dir::s2c && (st.flags & kRespFinal) && !(st.flags & kRespEnded)) {
    sink_.on_response_body(st.id, {p, n});
  }
}

// END_STREAM on a DATA frame of a tracked stream.
void Http2Connection::data_end(Dir d, StreamSlot* st) noexcept {
  if (d == Dir::c2s && !(st->flags & kReqEnded)) {
    st->flags |= kReqEnded;
    sink_.on_request_end(st->id);
    maybe_close(st);
  } else if (d == Dir::s2c && (st->flags & kRespFinal) && !(st->flags & kRespEnded)) {
    st->flags |= kRespEnded;
    sink_.on_response_end(st->id);
    maybe_close(st);
  }
}

// The same steps as on_frame_header -> begin_payload -> on_body -> on_frame_end
// for a DATA frame without padding whose header and `len` payload bytes are
// all at `p` (the caller checked the frame is valid there): one stream lookup.
size_t Http2Connection::whole_data_frame(Dir d, const uint8_t* p, uint32_t len) noexcept {
  Side& s = side(d);
  start_frame(s, d, p, len);
  if (len == 0 && !(s.flags & kFlagEndStream)) return s.hdr.size();
  StreamSlot* st = find_stream(s.stream);
  if (st == nullptr) {
    if (len > 0) ++stats_.stray_frames;
    return s.hdr.size() + len;
  }
  if (len > 0) data_body(d, *st, p + s.hdr.size(), len);
  if (failed()) return s.hdr.size() + len;
  if (s.flags & kFlagEndStream) data_end(d, st);
  return s.hdr.size() + len;
}

void Http2Connection::on_settings_entry(Dir d) noexcept {
  Side& s = side(d);
  const uint8_t* f = s.fix.data();
  uint16_t id = static_cast<uint16_t>((f[0] << 8) | f[1]);
  if (id != kSettingsHeaderTableSize) return;
  // One pending entry per SETTINGS frame; the entry is pushed at frame start
  // (see on_frame_end for the non-ACK case) so record into the newest slot.
  s.pending[s.n_pending].table_size = rd32(f + 2);
  s.pending[s.n_pending].has_table_size = true;
}

void Http2Connection::on_frame_end(Dir d) noexcept {
  Side& s = side(d);
  s.st = St::frame_header;
  switch (s.type) {
    case kData:
      if (s.flags & kFlagEndStream) {
        if (StreamSlot* st = find_stream(s.stream)) data_end(d, st);
      }
      break;
    case kSettings:
      if (s.flags & kFlagAck) {
        // The peer's SETTINGS are now in force on this side's encoder.
        Side& peer = side(opposite(d));
        if (peer.n_pending == 0) {
          ++stats_.stray_settings_acks;
          break;
        }
        PendingSettings ps = peer.pending[0];
        // Shift the queue, including the slot of a SETTINGS frame still
        // being read in the peer's direction.
        std::copy(peer.pending.begin() + 1, peer.pending.begin() + peer.n_pending + 1,
                  peer.pending.begin());
        --peer.n_pending;
        peer.pending[peer.n_pending + 1] = {};
        if (ps.has_table_size) apply_table_size(d, ps.table_size);
      } else {
        if (size_t{s.n_pending} + 1 >= kMaxPendingSettings) return fail(L7Error::settings_backlog);
        ++s.n_pending;  // the slot filled by on_settings_entry becomes pending
        s.pending[s.n_pending] = {};
      }
      break;
    default:
      break;
  }
}

// A stream lives at its home slot ((id >> 1) mod max_streams) unless that was
// taken when it opened; then at the next free one after it. Lookups start at
// the home slot and stop once every open stream has been seen, so the common
// case is one probe and a miss never scans more than the open streams' range.
uint32_t Http2Connection::home_slot(uint32_t id) const noexcept { return (id >> 1) % cfg_.max_streams; }

Http2Connection::StreamSlot* Http2Connection::find_stream(uint32_t id) noexcept {
  if (id == 0 || !streams_ || cfg_.max_streams == 0) return nullptr;
  uint32_t i = home_slot(id), live = 0;
  for (uint32_t k = 0; k < cfg_.max_streams && live < n_open_; ++k) {
    StreamSlot& st = streams_[i];
    if (st.id == id) return &st;
    if (st.id != 0) ++live;
    if (++i == cfg_.max_streams) i = 0;
  }
  return nullptr;
}

Http2Connection::StreamSlot* Http2Connection::open_stream(uint32_t id, uint8_t flags) noexcept {
  if (!streams_ || n_open_ >= cfg_.max_streams) return nullptr;  // also max_streams == 0
  uint32_t i = home_slot(id);
  for (uint32_t k = 0; k < cfg_.max_streams; ++k) {
    if (streams_[i].id == 0) {
      streams_[i] = {id, flags};
      ++n_open_;
      return &streams_[i];
    }
    if (++i == cfg_.max_streams) i = 0;
  }
  return nullptr;
}

void Http2Connection::maybe_close(StreamSlot* st) noexcept {
  if ((st->flags & kReqEnded) && (st->flags & kRespEnded)) {
    st->id = 0;
    --n_open_;
  }
}

}  // namespace aiqos
