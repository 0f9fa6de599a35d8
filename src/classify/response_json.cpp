// The response tracker's JSON scanner (response_tracker.h): a stream of JSON
// values, scanned byte by byte for a handful of keys at known depths. The
// framings that feed it (SSE, NDJSON, gRPC, line templates) are in
// response_tracker.cpp.
#include <array>
#include <cstring>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "classify/response_scan.h"

namespace aiqos {
using namespace resp;

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

// kKeys by hash, open addressing (1 + index into kKeys, 0: empty): a key that is none of them
// usually meets an empty slot at the first probe, instead of being compared with every name.
constexpr size_t kKeySlots = 128;
constexpr std::array<uint8_t, kKeySlots> key_slots() {
  std::array<uint8_t, kKeySlots> t{};
  for (size_t k = 0; k < kKeys.size(); ++k) {
    size_t i = kKeys[k].hash & (kKeySlots - 1);
    while (t[i] != 0) i = (i + 1) & (kKeySlots - 1);
    t[i] = static_cast<uint8_t>(k + 1);
  }
  return t;
}
constexpr std::array<uint8_t, kKeySlots> kKeySlot = key_slots();
static_assert(kKeys.size() < kKeySlots / 2);

uint8_t key_id(uint32_t h, uint8_t len) noexcept {
  if (len > kMaxKey || !((kKeyLengths >> len) & 1)) return ky::other;
  for (size_t i = h & (kKeySlots - 1); kKeySlot[i] != 0; i = (i + 1) & (kKeySlots - 1)) {
    const KeyName& k = kKeys[kKeySlot[i] - 1];
    if (k.hash == h && k.len == len) return k.id;
  }
  return ky::other;
}

// Values of a top-level "type" that matter (Anthropic messages, OpenAI responses).
constexpr uint32_t kTypeContentDelta = fnv("content_block_delta");
constexpr uint32_t kTypeMessageStop = fnv("message_stop");
constexpr uint32_t kTypeError = fnv("error");
constexpr uint32_t kTypeRespCompleted = fnv("response.completed");
constexpr uint32_t kTypeRespFailed = fnv("response.failed");

// Per-value flags.
constexpr uint8_t kVfNonEmpty = 1, kVfModel = 2, kVfType = 4, kVfIn = 8, kVfOut = 16, kVfBad = 32, kVfTrue = 64;
constexpr uint64_t kMaxUsage = 1'000'000'000'000ULL;  // larger usage numbers are garbage

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

// A byte that goes on a number (digits, sign, fraction, exponent).
inline bool num_byte(uint8_t c) noexcept {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

bool is_ws(uint8_t c) noexcept { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

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
        if (klen_ == 0) {
          // At the key's first byte with its closing quote in this chunk (and no escape): hash it
          // in one pass, only when a known key has its length. The byte loop below gives the same.
          const size_t j = string_run(p, i, n);
          if (j < n && p[j] == '"') {
            const size_t len = j - i;
            uint8_t id = ky::other;
            if (len <= kMaxKey && ((kKeyLengths >> len) & 1)) {
              uint32_t h = kFnvBasis;
              for (size_t q = i; q < j; ++q) h = (h ^ p[q]) * kFnvPrime;
              id = key_id(h, static_cast<uint8_t>(len));
            }
            key_ = id;
            js_ = j_colon;
            i = j + 1;
            break;
          }
        }
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

}  // namespace aiqos
