// HTTP/2 header blocks (http2.h): HPACK inflation under a per-direction
// memory budget (nghttp2_mem hooks that count every byte, over the worker's
// HpackPool or the heap), header fields into
// the request head or the response's status / content-type, and a block's end
// as request or response events. The frame layer is in http2.cpp.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "classify/hpack_pool.h"
#include "classify/http2.h"

namespace aiqos {
namespace {

std::string_view sv(const uint8_t* p, size_t n) noexcept {
  return {reinterpret_cast<const char*>(p), n};
}

// Non-negative decimal of at most 5 digits, else -1.
int parse_small_uint(std::string_view v) noexcept {
  if (v.empty() || v.size() > 5) return -1;
  int x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    x = x * 10 + (c - '0');
  }
  return x;
}

// The budget counts each allocation with a header of this size (what the
// heap path puts in front of it to know its size when it is freed; the pool
// keeps sizes beside its region), so its cap means the same either way.
constexpr size_t kAllocHdr = alignof(std::max_align_t);

std::atomic<uint64_t> heap_allocs{0};

// Whether `size` more bytes stay within the cap of budget `b` (else it says denied).
bool admit(auto& b, size_t size) noexcept {
  if (size > b.cap || b.used + size + kAllocHdr > b.cap) {
    b.denied = true;
    return false;
  }
  return true;
}

size_t alloc_size(const void* ptr, const HpackPool* pool) noexcept {
  if (pool != nullptr) return pool->size_of(ptr);
  size_t size;
  std::memcpy(&size, static_cast<const unsigned char*>(ptr) - kAllocHdr, sizeof(size));
  return size;
}

}  // namespace

uint64_t Http2Connection::heap_allocations() noexcept { return heap_allocs.load(std::memory_order_relaxed); }

void* Http2Connection::mem_malloc(size_t size, void* ud) {
  auto* b = static_cast<MemBudget*>(ud);
  if (!admit(*b, size)) return nullptr;
  void* p;
  if (b->pool != nullptr) {
    p = b->pool->alloc(size);
    if (p == nullptr) {  // counted by the pool
      b->denied = true;
      return nullptr;
    }
  } else {
    heap_allocs.fetch_add(1, std::memory_order_relaxed);
    auto* base = static_cast<unsigned char*>(std::malloc(size + kAllocHdr));
    if (!base) return nullptr;
    std::memcpy(base, &size, sizeof(size));
    p = base + kAllocHdr;
  }
  b->used += size + kAllocHdr;
  b->peak = std::max(b->peak, b->used);
  return p;
}

void Http2Connection::mem_free(void* ptr, void* ud) {
  if (!ptr) return;
  auto* b = static_cast<MemBudget*>(ud);
  if (b->pool != nullptr) {
    b->used -= b->pool->free(ptr) + kAllocHdr;
  } else {
    b->used -= alloc_size(ptr, nullptr) + kAllocHdr;
    std::free(static_cast<unsigned char*>(ptr) - kAllocHdr);
  }
}

void* Http2Connection::mem_calloc(size_t nmemb, size_t size, void* ud) {
  if (size != 0 && nmemb > SIZE_MAX / size) return nullptr;
  void* p = mem_malloc(nmemb * size, ud);
  if (p) std::memset(p, 0, nmemb * size);
  return p;
}

// Counted as a new allocation beside the old one, then the old one freed,
// whether the pool moves the block or not.
void* Http2Connection::mem_realloc(void* ptr, size_t size, void* ud) {
  if (!ptr) return mem_malloc(size, ud);
  if (size == 0) {
    mem_free(ptr, ud);
    return nullptr;
  }
  auto* b = static_cast<MemBudget*>(ud);
  const size_t old = alloc_size(ptr, b->pool);
  if (b->pool == nullptr) {
    void* p = mem_malloc(size, ud);
    if (!p) return nullptr;
    std::memcpy(p, ptr, std::min(old, size));
    mem_free(ptr, ud);
    return p;
  }
  if (!admit(*b, size)) return nullptr;
  void* p = b->pool->realloc(ptr, size);
  if (p == nullptr) {
    b->denied = true;
    return nullptr;
  }
  b->peak = std::max(b->peak, b->used + size + kAllocHdr);
  b->used = b->used + size - old;
  return p;
}

// A fresh inflater with the side's table limit: the dynamic table starts
// empty, so an index past what it holds fails rather than decodes wrongly.
bool Http2Connection::reset_inflater(Side& s) noexcept {
  if (s.inflater) nghttp2_hd_inflate_del(s.inflater);
  s.inflater = nullptr;
  if (nghttp2_hd_inflate_new2(&s.inflater, &s.allocator) != 0) {
    s.inflater = nullptr;
    return false;
  }
  return nghttp2_hd_inflate_change_table_size(s.inflater, s.table_limit) == 0;
}

void Http2Connection::apply_table_size(Dir d, uint32_t v) noexcept {
  Side& s = side(d);
  uint32_t lim = v;
  if (v > cfg_.max_hpack_table) {
    lim = cfg_.max_hpack_table;
    s.clipped = true;
    ++stats_.settings_clipped;
  }
  if (nghttp2_hd_inflate_change_table_size(s.inflater, lim) != 0)
    return fail(s.mem.denied ? L7Error::hpack_memory : L7Error::hpack_error);
  s.table_limit = lim;
}

void Http2Connection::inflate(Dir d, const uint8_t* p, size_t n, bool final) noexcept {
  Side& s = side(d);
  if (s.block_lost) {
    if (final) end_block(d);
    return;
  }
  for (;;) {
    nghttp2_nv nv;
    int fl = 0;
    ssize_t rv = nghttp2_hd_inflate_hd2(s.inflater, &nv, &fl, p, n, final ? 1 : 0);
    if (rv < 0) {
      if (s.mem.denied || rv == NGHTTP2_ERR_NOMEM) return fail(L7Error::hpack_memory);
      if (midstream_ && stats_.hpack_resets < kMaxHpackResets) {
        // A field from the table we never saw: keep what was decoded, skip
        // the rest of this block, and decode the next one with a fresh table.
        ++stats_.hpack_resets;
        s.block_lost = true;
        s.mem.denied = false;
        if (!reset_inflater(s)) return fail(L7Error::hpack_memory);
        if (final) end_block(d);
        return;
      }
      return fail(s.clipped ? L7Error::hpack_table_cap : L7Error::hpack_error);
    }
    p += rv;
    n -= static_cast<size_t>(rv);
    if (fl & NGHTTP2_HD_INFLATE_EMIT) {
      on_header(d, nv);
      if (failed()) return;
    }
    if (fl & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(s.inflater);
      return end_block(d);
    }
    if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0) return;
  }
}

void Http2Connection::on_header(Dir d, const nghttp2_nv& nv) noexcept {
  Side& s = side(d);
  size_t sz = nv.namelen + nv.valuelen + 32;
  if (sz > cfg_.max_header_list - s.list_bytes || s.list_bytes > cfg_.max_header_list)
    return fail(L7Error::header_list_too_large);
  s.list_bytes += static_cast<uint32_t>(sz);
  std::string_view name = sv(nv.name, nv.namelen);
  std::string_view value = sv(nv.value, nv.valuelen);
  switch (s.block) {
    case Block::request:
      req_.set(req_.slot_for(name), value);
      break;
    case Block::response:
    case Block::resp_trailers:
      if (name == ":status") {
        int v = parse_small_uint(value);
        s.status = static_cast<uint16_t>(v < 0 || v > 999 ? 0 : v);
      } else if (name == "grpc-status") {
        int v = parse_small_uint(value);
        s.grpc_status = static_cast<int16_t>(v < 0 || v > 32767 ? -1 : v);
      } else if (name == "content-type" && s.ctype_len == 0) {
        size_t k = std::min<size_t>(value.size(), cfg_.capture.max_value_len);
        std::memcpy(resp_ctype_, value.data(), k);
        s.ctype_len = static_cast<uint16_t>(k);
      } else if (name == "content-encoding") {
        s.encoded = s.encoded || !(value.empty() || value == "identity");
      }
      break;
    default:
      break;
  }
}

void Http2Connection::end_block(Dir d) noexcept {
  Side& s = side(d);
  s.in_block = false;
  Block kind = s.block;
  s.block = Block::none;
  StreamSlot* st = find_stream(s.block_stream);
  if (!st) return;  // reset meanwhile, or never tracked
  switch (kind) {
    case Block::request: {
      RequestHead h;
      h.stream_id = st->id;
      req_.fill(h);
      h.end_stream = s.block_end_stream;
      h.partial = s.block_lost;
      sink_.on_request_headers(h);
      [[fallthrough]];
    }
    case Block::req_trailers:
      if (s.block_end_stream) {
        st->flags |= kReqEnded;
        sink_.on_request_end(st->id);
        maybe_close(st);
      }
      break;
    case Block::response: {
      if (s.status >= 100 && s.status < 200) {
        ++stats_.interim_responses;
        break;
      }
      st->flags |= kRespFinal;
      ResponseHead h;
      h.stream_id = st->id;
      h.status = s.status;
      h.grpc_status = s.grpc_status;
      h.content_type = {resp_ctype_, s.ctype_len};
      h.encoded = s.encoded;
      h.end_stream = s.block_end_stream;
      sink_.on_response_headers(h);
      if (s.block_end_stream) {
        st->flags |= kRespEnded;
        sink_.on_response_end(st->id);
        maybe_close(st);
      }
      break;
    }
    case Block::resp_trailers:
      sink_.on_response_trailers(st->id, s.grpc_status);
      if (s.block_end_stream) {
        st->flags |= kRespEnded;
        sink_.on_response_end(st->id);
        maybe_close(st);
      }
      break;
    default:
      break;
  }
}

}  // namespace aiqos
