// The response tracker's framings (response_tracker.h): the body split into
// JSON documents by its format (SSE data lines, NDJSON lines, gRPC messages),
// and line templates (a token line like the last ones counted without a scan).
// The JSON scanner the documents go to is in response_json.cpp.
#include "classify/response_tracker.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "classify/response_scan.h"

namespace aiqos {
using namespace resp;

const char* provider_name(GenAiProvider p) noexcept {
  switch (p) {
    case GenAiProvider::openai: return "openai";
    case GenAiProvider::anthropic: return "anthropic";
    case GenAiProvider::ollama: return "ollama";
    case GenAiProvider::tgi: return "tgi";
    case GenAiProvider::kserve: return "kserve";
    default: return "";
  }
}

GenAiProvider provider_of(Endpoint e) noexcept {
  switch (e) {
    case Endpoint::chat_completions:
    case Endpoint::completions:
    case Endpoint::embeddings:
    case Endpoint::responses: return GenAiProvider::openai;
    case Endpoint::anthropic_messages: return GenAiProvider::anthropic;
    case Endpoint::ollama_chat:
    case Endpoint::ollama_generate: return GenAiProvider::ollama;
    case Endpoint::tgi_generate: return GenAiProvider::tgi;
    case Endpoint::kserve_infer:
    case Endpoint::triton_generate:
    case Endpoint::grpc_model_infer: return GenAiProvider::kserve;
    default: return GenAiProvider::none;
  }
}

const char* token_source_name(TokenSource s) noexcept {
  switch (s) {
    case TokenSource::usage: return "usage";
    case TokenSource::counted: return "counted";
    default: return "estimated";
  }
}

namespace {

// SSE line states.
enum L : uint8_t { l_start, l_name, l_space, l_done, l_data, l_skip };

// Line templates: a cheap 64-bit hash of a byte run (8 bytes a step).
uint64_t load8(const uint8_t* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
[[gnu::always_inline]] inline uint64_t run_hash(const uint8_t* p, size_t n) noexcept {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  uint64_t last = 0;
  if (n >= 8) {
    constexpr uint64_t k = 0xff51afd7ed558ccdULL;
    size_t i = 0;
    for (; i + 32 < n; i += 32) {  // four words a step: less loop per byte
      h = (h ^ load8(p + i)) * k;
      h = (h ^ load8(p + i + 8)) * k;
      h = (h ^ load8(p + i + 16)) * k;
      h = (h ^ load8(p + i + 24)) * k;
    }
    for (; i + 8 < n; i += 8) h = (h ^ load8(p + i)) * k;
    last = load8(p + n - 8);  // the last 8 bytes, overlapping the previous word
  } else {
    for (size_t i = 0; i < n; ++i) last = last << 8 | p[i];
  }
  h = (h ^ last) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 32);
}

// Hash of the last `suf` bytes of a line of `n`: one load when they fit in a word.
[[gnu::always_inline]] inline uint64_t tail_hash(const uint8_t* line, size_t n, size_t suf) noexcept {
  if (suf == 0 || suf > 8 || n < 8) return run_hash(line + n - suf, suf);
  uint64_t h = (load8(line + n - 8) >> (64 - 8 * suf)) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 32) ^ suf;
}

// Bytes of w that are a quote, a backslash or a newline: 0x80 in each, exact up to the first
// (the borrow of the zero-byte test only reaches bytes above a hit).
uint64_t stop_mask(uint64_t w) noexcept {
  constexpr uint64_t k01 = 0x0101010101010101ULL, k80 = 0x8080808080808080ULL;
  const uint64_t q = w ^ (k01 * '"'), b = w ^ (k01 * '\\'), l = w ^ (k01 * '\n');
  return (((q - k01) & ~q) | ((b - k01) & ~b) | ((l - k01) & ~l)) & k80;
}

// Index of the first quote, backslash or newline in [from, to] of p (to < avail); to + 1 if none.
// Reads words up to `avail` bytes of p, past `to` where they fit.
[[gnu::always_inline]] inline size_t first_stop(const uint8_t* p, size_t from, size_t to, size_t avail) noexcept {
  size_t i = from;
#if defined(__SSE2__)
  const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\'), vl = _mm_set1_epi8('\n');
  for (; i + 16 <= avail; i += 16) {
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const unsigned m = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, vq), _mm_cmpeq_epi8(w, vb)), _mm_cmpeq_epi8(w, vl))));
    if (m != 0) {
      i += static_cast<size_t>(__builtin_ctz(m));
      return i <= to ? i : to + 1;
    }
    if (i + 16 > to) return to + 1;
  }
  if (i <= to && avail >= 16) {  // the last bytes: the 16 that end at avail, those before i left out
    const size_t b = avail - 16;
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b));
    const unsigned m = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, vq), _mm_cmpeq_epi8(w, vb)), _mm_cmpeq_epi8(w, vl)))) >> (i - b);
    if (m == 0) return to + 1;
    i += static_cast<size_t>(__builtin_ctz(m));
    return i <= to ? i : to + 1;
  }
#endif
  for (; i + 8 <= avail; i += 8) {
    const uint64_t h = stop_mask(load8(p + i));
    if (h != 0) {
      i += static_cast<size_t>(__builtin_ctzll(h) >> 3);
      return i <= to ? i : to + 1;
    }
    if (i + 8 > to) return to + 1;
  }
  for (; i <= to; ++i)
    if (p[i] == '"' || p[i] == '\\' || p[i] == '\n') return i;
  return to + 1;
}

// a[0, n) == b[0, n): short runs (a suffix) in two overlapping loads, longer ones by memcmp.
inline bool same_bytes(const uint8_t* a, const uint8_t* b, size_t n) noexcept {
#if defined(__SSE2__)
  if (n >= 16 && n <= 32) {
    const auto eq16 = [](const uint8_t* x, const uint8_t* y) {
      return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)),
                                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(y)))) == 0xffff;
    };
    return eq16(a, b) && eq16(a + n - 16, b + n - 16);
  }
#endif
  if (n >= 8 && n <= 16) return load8(a) == load8(b) && load8(a + n - 8) == load8(b + n - 8);
  if (n < 8) {
    bool eq = true;
    for (size_t i = 0; i < n; ++i) eq &= a[i] == b[i];
    return eq;
  }
  return std::memcmp(a, b, n) == 0;
}

bool prefix_ci(std::string_view s, std::string_view p) noexcept {
  if (s.size() < p.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != p[i]) return false;
  }
  return true;
}

}  // namespace

void ResponseTracker::start(Endpoint ep, std::string_view ctype, bool encoded, bool streaming_rpc,
                            ResponseTemplate* tpl) noexcept {
  reset();
  tb_ = tpl;
  provider_ = provider_of(ep);
  encoded_ = encoded;
  if (encoded) return;  // compressed bodies are not decoded
  while (!ctype.empty() && (ctype.front() == ' ' || ctype.front() == '\t')) ctype.remove_prefix(1);
  if (prefix_ci(ctype, "text/event-stream")) {
    fmt_ = RespFormat::sse;
    return;
  }
  // The rest are application/...: that prefix compared once, then the subtypes in the same order.
  if (!prefix_ci(ctype, "application/")) return;
  const std::string_view sub = ctype.substr(12);
  if (prefix_ci(sub, "x-ndjson") || prefix_ci(sub, "ndjson") || prefix_ci(sub, "jsonl") || prefix_ci(sub, "x-jsonl")) {
    fmt_ = RespFormat::ndjson;
  } else if (prefix_ci(sub, "grpc")) {
    fmt_ = RespFormat::grpc;
    grpc_stream_ = streaming_rpc;
  } else if (prefix_ci(sub, "json") && provider_ != GenAiProvider::none) {
    fmt_ = RespFormat::json;  // an unknown endpoint's JSON is not an LLM response: not scanned
  }
}

bool ResponseTracker::streamed() const noexcept {
  return fmt_ == RespFormat::sse || fmt_ == RespFormat::ndjson || (fmt_ == RespFormat::grpc && grpc_stream_);
}

void ResponseTracker::feed(std::span<const uint8_t> b, uint64_t now_ns) noexcept {
  if (!active() || b.empty()) return;
  now_ = now_ns;
  if (fmt_ == RespFormat::sse) return feed_sse(b.data(), b.size());  // the usual one, before the switch
  switch (fmt_) {
    case RespFormat::sse: return feed_sse(b.data(), b.size());
    case RespFormat::ndjson: return feed_ndjson(b.data(), b.size());
    case RespFormat::json:
      // Not streamed: the content is there with the first body byte.
      if (u_.first_ns == 0) u_.first_ns = now_ns;
      u_.last_ns = now_ns;
      return feed_json(b.data(), b.size());
    case RespFormat::grpc:
      if (!grpc_stream_) {
        if (u_.first_ns == 0) u_.first_ns = now_ns;
        u_.last_ns = now_ns;
        return;
      }
      return feed_grpc(b.data(), b.size());
    default: return;
  }
}

void ResponseTracker::finish(uint64_t now_ns) noexcept {
  if (!active()) return;
  now_ = now_ns;
  // An NDJSON line or a JSON body whose last value is a bare number or
  // literal ends with the body.
  if (js_ == j_num || js_ == j_lit) scalar_end();
  // A value still open at the end is an incomplete document: its usage (if
  // any was read) stands, its content flags are lost.
}

// One complete line [p, p+n) whose document starts at p (no newline in it): counted from the
// template when it matches, else scanned exactly, and made the template when it qualifies.
uint64_t ResponseTracker::prefix_hash(const uint8_t* p, uint16_t len, uint8_t holes) const noexcept {
  uint64_t h = 0;
  uint16_t at = 0;
  for (uint8_t k = 0; k < holes; ++k) {
    h = (h ^ run_hash(p + at, hole_[k][0] - at)) * 0x9ddfea08eb382d69ULL;
    at = hole_[k][1];
  }
  return h ^ run_hash(p + at, len - at);
}

// A line at p like the template: its prefix (hash; the holes in it free of quote, backslash and
// newline), a non-empty token text free of them, its suffix (hash) from the closing quote on.
// Reads at most `avail` bytes; returns the line's length (the suffix's end), 0 if it does not
// match. A match holds no newline: a line ends at the first one after it, if any. The token text
// is found by its closing quote, so no newline search comes first.
[[gnu::always_inline]] inline size_t ResponseTracker::tpl_match(const uint8_t* p, size_t avail) const noexcept {
  const size_t pre = tpl_pre_, suf = tpl_suf_;
  if (avail <= pre + suf) return 0;
  const size_t q = first_stop(p, pre, avail - suf, avail);  // the closing quote, at most at avail - suf
  if (q == pre || q > avail - suf || p[q] != '"') return 0;
  if (tpl_bytes_) {
    const uint8_t* t = tb_->b;
    if (!same_bytes(p + q, t + pre, suf)) return 0;
    if (tpl_holes_ == 0) return std::memcmp(p, t, pre) == 0 ? q + suf : 0;
    size_t at = 0;
    for (uint8_t k = 0; k < tpl_holes_; ++k) {
      const size_t hb = hole_[k][0], he = hole_[k][1];
      if (std::memcmp(p + at, t + at, hb - at) != 0 || (he > hb && first_stop(p, hb, he - 1, avail) != he)) return 0;
      at = he;
    }
    return std::memcmp(p + at, t + at, pre - at) == 0 ? q + suf : 0;
  }
  for (uint8_t k = 0; k < tpl_holes_; ++k) {
    const size_t hb = hole_[k][0], he = hole_[k][1];
    if (he > hb && first_stop(p, hb, he - 1, avail) != he) return 0;
  }
  if (tail_hash(p, q + suf, suf) != tpl_suf_h_) return 0;
  if ((tpl_holes_ == 0 ? run_hash(p, pre) : prefix_hash(p, tpl_pre_, tpl_holes_)) != tpl_pre_h_) return 0;
  return q + suf;
}

void ResponseTracker::feed_line(const uint8_t* p, size_t n) noexcept {
  if (tpl_pre_ != 0 && tpl_match(p, n) == n) {
    content();
    return;
  }
  // The template's holes are kept until a new template replaces them.
  uint16_t saved[kHoles][2];
  std::memcpy(saved, hole_, sizeof saved);
  line_holes_ = 0;
  line_mode_ = true;
  line_docs_ = 0;
  line_flags_ = 0;
  str_rec_ = line_usage_ = false;
  feed_json(p, n);
  line_mode_ = false;
  // One whole document, content-bearing through one string and nothing else (no usage, no
  // error, no end): the lines that differ only in that string's text mean the same.
  if (failed_ || line_docs_ != 1 || line_flags_ != kDocContent || !str_rec_ || line_usage_ || js_ != j_value ||
      depth_ != 0 || rec_beg_ == 0 || rec_end_ < rec_beg_ || rec_end_ >= n || n - rec_end_ > 0xffff ||
      rec_beg_ > 0xffff)
  {
    std::memcpy(hole_, saved, sizeof saved);
    return;
  }
  const uint16_t pre = static_cast<uint16_t>(rec_beg_), suf = static_cast<uint16_t>(n - rec_end_);
  const bool bytes = tb_ != nullptr && size_t{pre} + suf <= ResponseTemplate::kBytes;
  const uint64_t suf_h = bytes ? 0 : tail_hash(p, n, suf);
  // The same shape, another prefix: the stream varies strings the scan ignores (Ollama's
  // created_at): from now on its templates leave them out (cost only: exact either way).
  if (tpl_pre_ == pre && tpl_suf_ == suf && tpl_bytes_ == bytes &&
      (bytes ? std::memcmp(tb_->b + pre, p + n - suf, suf) == 0 : tpl_suf_h_ == suf_h))
    holes_on_ = true;
  tpl_pre_ = pre;
  tpl_suf_ = suf;
  tpl_bytes_ = bytes;
  tpl_holes_ = 0;
  while (holes_on_ && tpl_holes_ < line_holes_ && hole_[tpl_holes_][1] < tpl_pre_) ++tpl_holes_;  // in the prefix
  if (bytes) {
    std::memcpy(tb_->b, p, pre);
    std::memcpy(tb_->b + pre, p + n - suf, suf);
  } else {
    tpl_pre_h_ = prefix_hash(p, tpl_pre_, tpl_holes_);
    tpl_suf_h_ = suf_h;
  }
}

// NDJSON: a document a line, usually; a document that spans lines is scanned as it comes.
void ResponseTracker::feed_ndjson(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
  while (i < n && !failed_) {
    if (tpl_pre_ != 0 && js_ == j_value && depth_ == 0) {  // a line like the last ones: no newline search, no scan
      const size_t e = tpl_match(p + i, n - i);
      if (e != 0 && i + e < n && p[i + e] == '\n') {
        content();
        i += e + 1;
        continue;
      }
    }
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i));
    if (nl == nullptr) return feed_json(p + i, n - i);
    const size_t len = static_cast<size_t>(nl - (p + i));
    if (js_ == j_value && depth_ == 0 && len > 0) {
      feed_line(p + i, len);
    } else {
      feed_json(p + i, len);
    }
    i += len + 1;  // the newline is whitespace to the scanner: nothing to feed
    if (js_ == j_num || js_ == j_lit) scalar_end();  // a bare scalar ends at the newline
  }
}

// SSE (WHATWG): only `data:` lines matter; their payloads, concatenated, are
// the JSON documents. `data: [DONE]` (OpenAI) ends the stream.
void ResponseTracker::feed_sse(const uint8_t* p, size_t n) noexcept {
  static constexpr char kData[] = "data";
  static constexpr char kDone[] = "[DONE]";
  size_t i = 0;
  // Token events like the last ones, back to back (usually one a feed): the template alone, no
  // state steps. (feed() checked failed_; nothing here changes ls_, js_ or depth_.)
  if (ls_ == l_start && tpl_pre_ != 0 && js_ == j_value && depth_ == 0) {
    while (n - i > 6) {
      if (std::memcmp(p + i, "data: ", 6) != 0) {
        if (p[i] == 'd' || p[i] == '\n') break;
        // `event:` & co (l_name -> l_skip): skipped to the newline
        const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i));
        if (nl == nullptr) break;
        i = static_cast<size_t>(nl - p) + 1;
        continue;
      }
      if (p[i + 6] == '[') break;
      const size_t e = tpl_match(p + i + 6, n - i - 6);
      if (e == 0 || i + 6 + e >= n || p[i + 6 + e] != '\n') break;
      content();
      i += 6 + e + 1;
      if (i < n && p[i] == '\n') ++i;  // the blank line that ends the event
    }
    if (i == n) return;
  }
  while (i < n && !failed_) {
    if (ls_ == l_start) {
      // The usual line, whole in this feed: `data: ` and one document (cost: no state steps).
      if (n - i > 6 && std::memcmp(p + i, "data: ", 6) == 0 && p[i + 6] != '[' && js_ == j_value && depth_ == 0) {
        if (tpl_pre_ != 0) {  // a token line like the last ones: no newline search, no scan
          const size_t e = tpl_match(p + i + 6, n - i - 6);
          if (e != 0 && i + 6 + e < n && p[i + 6 + e] == '\n') {
            content();
            i += 6 + e + 1;
            if (i < n && p[i] == '\n') ++i;  // the blank line that ends the event
            continue;
          }
        }
        const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p + i + 6, '\n', n - i - 6));
        if (nl != nullptr) {
          const size_t j = static_cast<size_t>(nl - p);
          if (j > i + 6) feed_line(p + i + 6, j - i - 6);
          i = j + 1;
          continue;
        }
      }
      if (p[i] == '\n') {  // the blank line that ends an event
        ++i;
        continue;
      }
    }
    const uint8_t c = p[i];
    switch (ls_) {
      case l_start:
        lpos_ = 0;
        ls_ = l_name;
        if (n - i >= 6 && std::memcmp(p + i, "data: ", 6) == 0) {  // the usual line, at once
          i += 6;
          ls_ = l_done;
          break;
        }
        [[fallthrough]];
      case l_name:
        if (lpos_ < 4 && c == kData[lpos_]) {
          ++lpos_;
          ++i;
        } else if (lpos_ == 4 && c == ':') {
          ls_ = l_space;
          ++i;
        } else if (c == '\n') {
          ls_ = l_start;
          ++i;
        } else {
          ls_ = l_skip;  // event:, id:, retry:, comments, blank \r
        }
        break;
      case l_space:
        if (c == ' ') ++i;
        lpos_ = 0;
        ls_ = l_done;
        break;
      case l_done:
        if (lpos_ == 0 && c != '[') {
          ls_ = l_data;
          break;
        }
        if (lpos_ < 6 && c == kDone[lpos_]) {
          ++lpos_;
          ++i;
          break;
        }
        if (lpos_ == 6 && (c == '\r' || c == '\n')) {
          u_.done = true;
          ls_ = l_skip;
          break;
        }
        if (lpos_ > 0) feed_json(reinterpret_cast<const uint8_t*>(kDone), lpos_);
        ls_ = l_data;
        break;
      case l_data: {
        const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i));
        const size_t j = nl ? static_cast<size_t>(nl - p) : n;
        // A whole data line starting a document: the template path; else scan as it comes.
        if (nl != nullptr && lpos_ == 0 && js_ == j_value && depth_ == 0 && j > i) {
          feed_line(p + i, j - i);
        } else {
          feed_json(p + i, j - i);
        }
        lpos_ = 0;
        if (nl != nullptr) {
          ls_ = l_start;
          i = j + 1;
        } else {
          lpos_ = 1;  // the line goes on in the next feed
          i = n;
        }
        break;
      }
      case l_skip: {
        const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i));
        if (nl == nullptr) return;
        ls_ = l_start;
        i = static_cast<size_t>(nl - p) + 1;
        break;
      }
      default:
        fail();
        break;
    }
  }
}

// gRPC: 5-byte prefix (flag, 32-bit length) per message. In a server stream
// (ModelStreamInfer) every response message is one step: one token.
void ResponseTracker::feed_grpc(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
  while (i < n) {
    if (ghdr_ < 5) {
      if (ghdr_ == 0) {
        gleft_ = 0;
        content();  // a message starts
      } else {
        gleft_ = (gleft_ << 8) | p[i];
      }
      ++ghdr_;
      ++i;
      if (ghdr_ == 5 && gleft_ == 0) ghdr_ = 0;
      continue;
    }
    size_t k = gleft_ < n - i ? gleft_ : n - i;
    gleft_ -= static_cast<uint32_t>(k);
    i += k;
    if (gleft_ == 0) ghdr_ = 0;
  }
}

}  // namespace aiqos
