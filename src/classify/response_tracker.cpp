#include "classify/response_tracker.h"

#include <array>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace aiqos {

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

// Keys the scanner knows. Anything else is K::other.
namespace ky {
constexpr uint8_t other = 0;
constexpr uint8_t root = 1;
constexpr uint8_t elem = 2;
constexpr uint8_t usage = 3;
constexpr uint8_t prompt_tokens = 4;
constexpr uint8_t completion_tokens = 5;
constexpr uint8_t input_tokens = 6;
constexpr uint8_t output_tokens = 7;
constexpr uint8_t model = 8;
constexpr uint8_t choices = 9;
constexpr uint8_t delta = 10;
constexpr uint8_t content = 11;
constexpr uint8_t reasoning_content = 12;
constexpr uint8_t reasoning = 13;
constexpr uint8_t refusal = 14;
constexpr uint8_t tool_calls = 15;
constexpr uint8_t text = 16;
constexpr uint8_t message = 17;
constexpr uint8_t response = 18;
constexpr uint8_t type = 19;
constexpr uint8_t prompt_eval_count = 20;
constexpr uint8_t eval_count = 21;
constexpr uint8_t done = 22;
constexpr uint8_t token = 23;
constexpr uint8_t details = 24;
constexpr uint8_t generated_tokens = 25;
constexpr uint8_t error = 26;
constexpr uint8_t thinking = 27;
constexpr uint8_t text_output = 28;
}  // namespace ky

constexpr uint32_t kFnvBasis = 2166136261u;
constexpr uint32_t kFnvPrime = 16777619u;
constexpr uint8_t kMaxKey = 32;  // longer keys (and escaped ones) are K::other

constexpr uint32_t fnv(std::string_view s) {
  uint32_t h = kFnvBasis;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * kFnvPrime;
  return h;
}

struct KeyName {
  uint32_t hash;
  uint8_t len;
  uint8_t id;
};
constexpr KeyName kn(std::string_view s, uint8_t id) {
  return {fnv(s), static_cast<uint8_t>(s.size()), id};
}
constexpr std::array kKeys = {
    kn("usage", ky::usage),
    kn("prompt_tokens", ky::prompt_tokens),
    kn("completion_tokens", ky::completion_tokens),
    kn("input_tokens", ky::input_tokens),
    kn("output_tokens", ky::output_tokens),
    kn("model", ky::model),
    kn("choices", ky::choices),
    kn("delta", ky::delta),
    kn("content", ky::content),
    kn("reasoning_content", ky::reasoning_content),
    kn("reasoning", ky::reasoning),
    kn("refusal", ky::refusal),
    kn("tool_calls", ky::tool_calls),
    kn("text", ky::text),
    kn("message", ky::message),
    kn("response", ky::response),
    kn("type", ky::type),
    kn("prompt_eval_count", ky::prompt_eval_count),
    kn("eval_count", ky::eval_count),
    kn("done", ky::done),
    kn("token", ky::token),
    kn("details", ky::details),
    kn("generated_tokens", ky::generated_tokens),
    kn("error", ky::error),
    kn("thinking", ky::thinking),
    kn("text_output", ky::text_output),
};
constexpr uint64_t key_lengths() {
  uint64_t m = 0;
  for (const KeyName& k : kKeys) m |= uint64_t{1} << k.len;
  return m;
}
constexpr uint64_t kKeyLengths = key_lengths();

uint8_t key_id(uint32_t h, uint8_t len) noexcept {
  if (len > kMaxKey || !((kKeyLengths >> len) & 1)) return ky::other;
  for (const KeyName& k : kKeys)
    if (k.hash == h && k.len == len) return k.id;
  return ky::other;
}

// Values of a top-level "type" that matter (Anthropic messages, OpenAI responses).
constexpr uint32_t kTypeContentDelta = fnv("content_block_delta");
constexpr uint32_t kTypeMessageStop = fnv("message_stop");
constexpr uint32_t kTypeError = fnv("error");
constexpr uint32_t kTypeRespCompleted = fnv("response.completed");
constexpr uint32_t kTypeRespFailed = fnv("response.failed");

// Scanner states.
enum J : uint8_t { j_value, j_key_or_end, j_key_start, j_key, j_key_esc, j_colon, j_after, j_str, j_str_esc, j_str_u, j_num, j_lit };
// Per-value flags.
constexpr uint8_t kVfNonEmpty = 1, kVfModel = 2, kVfType = 4, kVfIn = 8, kVfOut = 16, kVfBad = 32, kVfTrue = 64;
// Per-document flags.
constexpr uint8_t kDocContent = 1, kDocError = 2, kDocDone = 4;
// SSE line states.
enum L : uint8_t { l_start, l_name, l_space, l_done, l_data, l_skip };

constexpr uint64_t kMaxUsage = 1'000'000'000'000ULL;  // larger usage numbers are garbage

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

// Index of the first quote or backslash in [i, n) of p; n if none (the bulk of a string's text).
inline size_t string_run(const uint8_t* p, size_t i, size_t n) noexcept {
#if defined(__SSE2__)
  const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const unsigned m = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(w, vq), _mm_cmpeq_epi8(w, vb))));
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(m));
  }
#endif
  while (i < n && p[i] != '"' && p[i] != '\\') ++i;
  return i;
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

// A byte that goes on a number (digits, sign, fraction, exponent).
inline bool num_byte(uint8_t c) noexcept {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

bool is_ws(uint8_t c) noexcept { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

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
  } else if (prefix_ci(ctype, "application/x-ndjson") || prefix_ci(ctype, "application/ndjson") ||
             prefix_ci(ctype, "application/jsonl") || prefix_ci(ctype, "application/x-jsonl")) {
    fmt_ = RespFormat::ndjson;
  } else if (prefix_ci(ctype, "application/grpc")) {
    fmt_ = RespFormat::grpc;
    grpc_stream_ = streaming_rpc;
  } else if (prefix_ci(ctype, "application/json") && provider_ != GenAiProvider::none) {
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

// One content-bearing event: the first token's time, the last one's, a count.
inline void ResponseTracker::content() noexcept {
  if (u_.first_ns == 0) u_.first_ns = now_;
  u_.last_ns = now_;
  ++u_.events;
}

void ResponseTracker::doc_end() noexcept {
  if (line_mode_) {
    ++line_docs_;
    line_flags_ = doc_;
  }
  if (fmt_ != RespFormat::json && (doc_ & kDocContent)) content();
  if (doc_ & kDocError) u_.stream_error = true;
  if (doc_ & kDocDone) u_.done = true;
  doc_ = 0;
  key_ = ky::other;
  js_ = j_value;
}

void ResponseTracker::value_start(uint8_t c) noexcept {
  const uint8_t ck = depth_ == 0 ? ky::other : depth_ <= kKeyDepth ? keys_[depth_ - 1] : ky::other;
  switch (c) {
    case '{':
    case '[':
      if (depth_ >= kMaxDepth) return fail();
      if (key_ == ky::tool_calls && ck == ky::delta) doc_ |= kDocContent;  // OpenAI tool call deltas
      if (depth_ == 1 && key_ == ky::token) doc_ |= kDocContent;       // TGI token event
      if (depth_ == 1 && key_ == ky::error) doc_ |= kDocError;         // {"error": {...}}
      if (depth_ < kKeyDepth) keys_[depth_] = depth_ == 0 ? ky::root : key_;
      if (c == '[') {
        arrays_ |= uint64_t{1} << depth_;
        key_ = ky::elem;
        js_ = j_value;
      } else {
        arrays_ &= ~(uint64_t{1} << depth_);
        js_ = j_key_or_end;
      }
      ++depth_;
      return;
    case '"':
      vflags_ = 0;
      if (key_ == ky::model && u_.model.empty() && (depth_ == 1 || (depth_ == 2 && (ck == ky::message || ck == ky::response))))
        vflags_ |= kVfModel;
      if (key_ == ky::type && depth_ == 1) {
        vflags_ |= kVfType;
        khash_ = kFnvBasis;
        klen_ = 0;
      }
      js_ = j_str;
      return;
    case '-':
    case '0' ... '9':
      vflags_ = 0;
      if (ck == ky::usage) {
        if (key_ == ky::prompt_tokens || key_ == ky::input_tokens) vflags_ |= kVfIn;
        if (key_ == ky::completion_tokens || key_ == ky::output_tokens) vflags_ |= kVfOut;
      } else if (depth_ == 1) {
        if (key_ == ky::prompt_eval_count) vflags_ |= kVfIn;
        if (key_ == ky::eval_count) vflags_ |= kVfOut;
      } else if (key_ == ky::generated_tokens && ck == ky::details) {
        vflags_ |= kVfOut;
      }
      num_ = 0;
      if (c == '-') {
        vflags_ |= kVfBad;
      } else {
        num_ = static_cast<uint64_t>(c - '0');
      }
      js_ = j_num;
      return;
    case 't':
    case 'f':
    case 'n':
      vflags_ = c == 't' ? kVfTrue : 0;
      js_ = j_lit;
      return;
    default:
      return fail();
  }
}

// A string, number or literal ended; js_ still says which.
void ResponseTracker::scalar_end() noexcept {
  const uint8_t ck = depth_ == 0 ? ky::other : depth_ <= kKeyDepth ? keys_[depth_ - 1] : ky::other;
  if (js_ == j_str) {
    if (vflags_ & kVfType) {
      if (khash_ == kTypeContentDelta) doc_ |= kDocContent;
      if (khash_ == kTypeError || khash_ == kTypeRespFailed) doc_ |= kDocError;
      if (khash_ == kTypeMessageStop || khash_ == kTypeRespCompleted) doc_ |= kDocDone;
    }
    if (vflags_ & kVfNonEmpty) {
      const uint8_t gk = depth_ >= 2 && depth_ - 2 < kKeyDepth ? keys_[depth_ - 2] : ky::other;
      bool c = false;
      // OpenAI chat (and vLLM, TGI's messages API...): choices[].delta.content & co.
      c |= ck == ky::delta && (key_ == ky::content || key_ == ky::reasoning_content || key_ == ky::reasoning || key_ == ky::refusal ||
                           key_ == ky::text);
      c |= key_ == ky::text && ck == ky::elem && gk == ky::choices;      // OpenAI completions
      c |= depth_ == 1 && key_ == ky::delta;                     // OpenAI responses: response.*.delta
      c |= depth_ == 1 && key_ == ky::response;                  // Ollama generate
      c |= depth_ == 2 && ck == ky::message && (key_ == ky::content || key_ == ky::thinking);  // Ollama chat
      c |= depth_ == 1 && key_ == ky::text_output;               // Triton generate_stream
      if (!c && line_mode_ && key_ == ky::other && line_holes_ < kHoles && str_end_ <= 0xffff) {
        hole_[line_holes_][0] = static_cast<uint16_t>(str_beg_);  // ignored by the scan: may vary
        hole_[line_holes_][1] = static_cast<uint16_t>(str_end_);
        ++line_holes_;
      }
      if (c) {
        doc_ |= kDocContent;
        if (line_mode_) {  // this string is the line's variable part
          str_rec_ = true;
          rec_beg_ = str_beg_;
          rec_end_ = str_end_;
        }
      }
      if (depth_ == 1 && key_ == ky::error) doc_ |= kDocError;  // {"error": "..."}
    }
  } else if (js_ == j_num) {
    if (vflags_ & (kVfIn | kVfOut)) {
      if (vflags_ & kVfBad) return fail();  // a negative or fractional usage figure: garbage
      if (vflags_ & kVfIn) u_.input = static_cast<int64_t>(num_);
      if (vflags_ & kVfOut) u_.output = static_cast<int64_t>(num_);
      line_usage_ = line_mode_;
    }
  } else if (js_ == j_lit) {
    if ((vflags_ & kVfTrue) && depth_ == 1 && key_ == ky::done) doc_ |= kDocDone;  // Ollama
  }
  if (depth_ == 0) return doc_end();
  js_ = j_after;
}

void ResponseTracker::feed_json(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
  while (i < n) {
    if (failed_) return;
    const uint8_t c = p[i];
    switch (js_) {
      case j_value:
        ++i;
        if (is_ws(c)) break;
        if (c == ']' && depth_ > 0 && (arrays_ >> (depth_ - 1) & 1)) goto close;  // "[]"
        str_beg_ = static_cast<uint32_t>(i);
        value_start(c);
        break;
      case j_key_or_end:
      case j_key_start:
        ++i;
        if (is_ws(c)) break;
        if (c == '"') {
          js_ = j_key;
          khash_ = kFnvBasis;
          klen_ = 0;
          break;
        }
        if (c == '}') goto close;
        fail();
        break;
      case j_key:
        while (i < n) {
          const uint8_t k = p[i++];
          if (k == '"') {
            key_ = key_id(khash_, klen_);
            js_ = j_colon;
            break;
          }
          if (k == '\\') {
            klen_ = kMaxKey + 1;  // escaped keys are never ours
            js_ = j_key_esc;
            break;
          }
          if (klen_ < kMaxKey) {
            khash_ = (khash_ ^ k) * kFnvPrime;
            ++klen_;
          } else {
            klen_ = kMaxKey + 1;
          }
        }
        break;
      case j_key_esc:
        ++i;
        js_ = j_key;
        break;
      case j_colon:
        ++i;
        if (is_ws(c)) break;
        if (c == ':') {
          js_ = j_value;
          break;
        }
        fail();
        break;
      case j_after:
        ++i;
        if (is_ws(c)) break;
        if (c == ',') {
          if (arrays_ >> (depth_ - 1) & 1) {
            key_ = ky::elem;
            js_ = j_value;
          } else {
            js_ = j_key_start;
          }
          break;
        }
        if (c == '}' || c == ']') {
          if ((c == ']') != bool(arrays_ >> (depth_ - 1) & 1)) {
            fail();
            break;
          }
          goto close;
        }
        fail();
        break;
      case j_str:
        if ((vflags_ & (kVfModel | kVfType)) == 0) {
          // The bulk of a response is text inside strings: skip it quickly.
          const size_t j = string_run(p, i, n);
          if (j > i) vflags_ |= kVfNonEmpty;
          i = j;
          if (i == n) break;
        }
        while (i < n) {
          const uint8_t s = p[i++];
          if (s == '"') {
            str_end_ = static_cast<uint32_t>(i - 1);
            scalar_end();
            break;
          }
          vflags_ |= kVfNonEmpty;
          if (s == '\\') {
            js_ = j_str_esc;
            break;
          }
          if (vflags_ & kVfModel) u_.model.push(static_cast<char>(s));
          if ((vflags_ & kVfType) && klen_ <= kMaxKey) {
            khash_ = (khash_ ^ s) * kFnvPrime;
            ++klen_;
          }
        }
        break;
      case j_str_esc:
        ++i;
        if (c == 'u') {
          esc_ = 4;
          js_ = j_str_u;
          break;
        }
        if (vflags_ & kVfModel) u_.model.push(c == 'n' ? '\n' : c == 't' ? '\t' : static_cast<char>(c));
        js_ = j_str;
        break;
      case j_str_u:
        ++i;
        if (--esc_ == 0) js_ = j_str;
        break;
      case j_num:
        if ((vflags_ & (kVfIn | kVfOut)) == 0 && depth_ > 0) {
          // Not a usage figure: its bytes matter to nothing. Skip them, and in an array of numbers
          // (embeddings) the next ones: for such a number scalar_end() only moves to j_after, and
          // `,` then a number in an array starts one more without flags (key elem).
          const bool in_array = arrays_ >> (depth_ - 1) & 1;
          for (;;) {
#if defined(__SSE2__)
            // 16 bytes a step while they are numbers and commas, each comma followed by a digit or
            // '-' in the same 16 (in an array): what the byte loop below would do with them.
            if (in_array) {
              const __m128i k2c = _mm_set1_epi8(0x2c), k0e = _mm_set1_epi8(0x0e), kSl = _mm_set1_epi8('/');
              const __m128i kDot = _mm_set1_epi8('.'), kCm = _mm_set1_epi8(',');
              while (i + 16 <= n) {
                const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
                // Bytes 0x2c..0x39 (',' '-' '.' '/' digits) by a signed compare of w - 0x2c (0..13).
                const __m128i d = _mm_sub_epi8(w, k2c);
                const unsigned in = static_cast<unsigned>(_mm_movemask_epi8(
                    _mm_and_si128(_mm_cmpgt_epi8(d, _mm_set1_epi8(-1)), _mm_cmplt_epi8(d, k0e))));
                const unsigned sl = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(w, kSl)));
                const unsigned cm = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(w, kCm)));
                const unsigned dot = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(w, kDot)));
                // A comma's next byte: a digit or '-' (not ',' '.' '/'); no comma last.
                if (in != 0xffff || sl != 0 || (cm & 0x8000) != 0 || ((cm << 1) & (cm | dot)) != 0) break;
                if (cm != 0) {
                  key_ = ky::elem;
                  vflags_ = 0;
                  str_beg_ = static_cast<uint32_t>(i + 31 - __builtin_clz(cm) + 2);
                }
                i += 16;
              }
            }
#endif
            while (i < n && num_byte(p[i])) ++i;
            if (i + 1 < n && p[i] == ',' && in_array && ((p[i + 1] >= '0' && p[i + 1] <= '9') || p[i + 1] == '-')) {
              key_ = ky::elem;
              vflags_ = 0;
              str_beg_ = static_cast<uint32_t>(i + 2);
              i += 2;
              continue;
            }
            break;
          }
          if (i < n) scalar_end();  // p[i] is looked at again in the next state
          break;
        }
        if (c >= '0' && c <= '9') {
          ++i;
          if (vflags_ & (kVfIn | kVfOut)) {
            num_ = num_ * 10 + static_cast<uint64_t>(c - '0');
            if (num_ > kMaxUsage) fail();  // an overflowing usage number: give up
          }
        } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
          ++i;
          vflags_ |= kVfBad;
        } else {
          scalar_end();  // c is looked at again in the next state
        }
        break;
      case j_lit:
        if (c >= 'a' && c <= 'z') {
          ++i;
        } else {
          scalar_end();
        }
        break;
      default:
        fail();
        break;
    }
    continue;
  close:
    --depth_;
    if (depth_ == 0) {
      doc_end();
    } else {
      key_ = ky::other;
      js_ = j_after;
    }
  }
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
