#include "classify/json_model.h"

#include <cstring>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace aiqos {
namespace {

bool is_ws(uint8_t c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hex_val(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Non-zero if any byte of v equals b (exact: the classic has-zero-byte test).
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighs = 0x8080808080808080ull;
inline uint64_t has_byte(uint64_t v, uint8_t b) noexcept {
  uint64_t x = v ^ (kOnes * b);
  return (x - kOnes) & ~x & kHighs;
}

JsonField key_field(std::string_view k) noexcept {
  if (k == "model") return JsonField::model;
  if (k == "max_tokens") return JsonField::max_tokens;
  if (k == "max_completion_tokens") return JsonField::max_completion_tokens;
  if (k == "max_output_tokens") return JsonField::max_output_tokens;
  if (k == "n") return JsonField::n;
  if (k == "stream") return JsonField::stream;
  return JsonField::none;
}

// A JSON integer: -?(0|[1-9][0-9]*) within int64. No fraction or exponent:
// a token count of 1.5 or 1e3 is not reported.
bool parse_int(std::string_view s, int64_t& out) noexcept {
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  if (s.empty() || (s[0] == '0' && s.size() > 1)) return false;
  uint64_t v = 0;
  const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

// The first '"' or '\' in [p, end), or end. String contents are the bulk of
// a chat body, so this is the hot loop: 16 bytes a step with SSE2 (x86-64
// baseline), 8 with SWAR elsewhere.
const uint8_t* find_quote_or_backslash(const uint8_t* p, const uint8_t* end) noexcept {
#ifdef __SSE2__
  const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    unsigned m = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs))));
    if (m) return p + __builtin_ctz(m);
    p += 16;
  }
#endif
  while (end - p >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    // The lowest flagged byte is exact (false positives only sit above a
    // true match); little-endian byte order assumed, as on every target.
    uint64_t m = has_byte(v, '"') | has_byte(v, '\\');
    if (m) return p + (__builtin_ctzll(m) >> 3);
    p += 8;
  }
  while (p < end && *p != '"' && *p != '\\') ++p;
  return p;
}

}  // namespace

// Inside a string we do not decode: only '"' and '\' matter.
const uint8_t* JsonTopLevel::skip_string(const uint8_t* p, const uint8_t* end) noexcept {
  while (p < end) {
    if (esc_) {
      esc_ = 0;
      ++p;
      continue;
    }
    p = find_quote_or_backslash(p, end);
    if (p == end) break;
    uint8_t c = *p++;
    if (c == '\\') {
      esc_ = 1;
    } else if (c == '"') {
      st_ = depth_ == 1 ? St::comma_or_end : St::nested;
      return p;
    }
  }
  return p;
}

// Inside a nested container, outside strings: count brackets.
const uint8_t* JsonTopLevel::skip_nested(const uint8_t* p, const uint8_t* end) noexcept {
  while (p < end) {
    uint8_t c = *p++;
    if (c == '"') {
      st_ = St::str_skip;
      return p;
    }
    if (c == '{' || c == '[') {
      if (++depth_ > kMaxDepth) {
        fail();
        return p - 1;  // offset_ ends on the offending byte
      }
    } else if (c == '}' || c == ']') {
      if (--depth_ == 1) {
        st_ = St::comma_or_end;
        return p;
      }
    }
  }
  return p;
}

JsonStatus JsonTopLevel::feed(std::span<const uint8_t> chunk) noexcept {
  if (status_ != JsonStatus::in_progress && status_ != JsonStatus::done) return status_;
  const uint8_t* p = chunk.data();
  const uint8_t* const end = p + chunk.size();
  // offset_ tracks the position of p; error paths leave it on the bad byte.
  while (p < end) {
    const uint8_t* before = p;
    if (st_ == St::str_skip) {
      p = skip_string(p, end);
    } else if (st_ == St::nested) {
      p = skip_nested(p, end);
    } else if (esc_ == 0 && (st_ == St::key || (st_ == St::str_capture && hi_ == 0)) && *p != '"' && *p != '\\') {
      // A run of plain bytes of a key or of the model: what decoded_byte() would
      // do with each (put_raw; no surrogate pending), in one copy.
      const uint8_t* q = find_quote_or_backslash(p, end);
      const std::string_view run(reinterpret_cast<const char*>(p), static_cast<size_t>(q - p));
      if (st_ == St::key) {
        key_.append(run);
      } else {
        f_.model.append(run);
      }
      p = q;
    } else {
      step(*p);
      if (status_ == JsonStatus::in_progress || status_ == JsonStatus::done) ++p;
    }
    offset_ += static_cast<uint64_t>(p - before);
    if (status_ == JsonStatus::error || status_ == JsonStatus::not_object) break;
  }
  return status_;
}

JsonStatus JsonTopLevel::finish() noexcept {
  if (status_ == JsonStatus::in_progress) {
    // An empty (or whitespace-only) body is not an object either.
    status_ = st_ == St::start ? JsonStatus::not_object : JsonStatus::error;
  }
  return status_;
}

void JsonTopLevel::step(uint8_t c) noexcept {
  switch (st_) {
    case St::start:
      if (is_ws(c)) return;
      if (c == 0xef && offset_ == 0) {
        st_ = St::bom1;
      } else if (c == '{') {
        depth_ = 1;
        st_ = St::key_or_end;
      } else {
        status_ = JsonStatus::not_object;
      }
      return;
    case St::bom1:
    case St::bom2:
      // The rest of the UTF-8 byte order mark, ef bb bf.
      if (c == (st_ == St::bom1 ? 0xbb : 0xbf))
        st_ = st_ == St::bom1 ? St::bom2 : St::start;
      else
        status_ = JsonStatus::not_object;
      return;
    case St::key_or_end:
    case St::key_next:
      if (is_ws(c)) return;
      if (c == '"') {
        key_.clear();
        st_ = St::key;
      } else if (c == '}' && st_ == St::key_or_end) {
        end_object();
      } else {
        fail();
      }
      return;
    case St::key:
    case St::str_capture:
      decoded_byte(c);
      return;
    case St::colon:
      if (is_ws(c)) return;
      if (c == ':')
        st_ = St::value;
      else
        fail();
      return;
    case St::value:
      if (!is_ws(c)) begin_value(c);
      return;
    case St::scalar:
      if (is_ws(c) || c == ',' || c == '}') {
        end_scalar();
        if (status_ == JsonStatus::error) return;
        st_ = St::comma_or_end;
        step(c);
      } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '.' || c == '+' || c == '-') {
        scalar_.push(static_cast<char>(c));
      } else {
        fail();
      }
      return;
    case St::comma_or_end:
      if (is_ws(c)) return;
      if (c == ',') {
        st_ = St::key_next;
      } else if (c == '}') {
        end_object();
      } else {
        fail();
      }
      return;
    case St::trailing:
      if (!is_ws(c)) fail();
      return;
    case St::str_skip:
    case St::nested:
      return;  // handled by the fast loops in feed()
  }
}

void JsonTopLevel::begin_value(uint8_t c) noexcept {
  const uint8_t b = JsonFields::bit(field_);
  // Whatever this value turns out to be, it replaces any earlier one.
  f_.present &= static_cast<uint8_t>(~b);
  if (field_ == JsonField::model) f_.model.clear();
  if (c == '"') {
    if (field_ == JsonField::model) {
      hi_ = 0;
      st_ = St::str_capture;
    } else {
      st_ = St::str_skip;
    }
  } else if (c == '{' || c == '[') {
    depth_ = 2;
    st_ = St::nested;
  } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
    scalar_.clear();
    scalar_.push(static_cast<char>(c));
    st_ = St::scalar;
  } else {
    fail();
  }
}

void JsonTopLevel::end_scalar() noexcept {
  // A long number (pi to 40 digits) is valid JSON, just not a token count.
  std::string_view s = scalar_.view();
  bool literal = !scalar_.truncated && (s == "true" || s == "false" || s == "null");
  if (!literal && (s.empty() || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))) {
    fail();  // "tru", "nul", "x": not JSON
    return;
  }
  int64_t v = 0;
  int64_t* num = nullptr;
  switch (field_) {
    case JsonField::max_tokens:
      num = &f_.max_tokens;
      break;
    case JsonField::max_completion_tokens:
      num = &f_.max_completion_tokens;
      break;
    case JsonField::max_output_tokens:
      num = &f_.max_output_tokens;
      break;
    case JsonField::n:
      num = &f_.n;
      break;
    case JsonField::stream:
      if (s == "true" || s == "false") {
        f_.stream = s == "true";
        f_.present |= JsonFields::bit(field_);
      }
      return;
    default:
      return;
  }
  if (!literal && !scalar_.truncated && parse_int(s, v)) {
    *num = v;
    f_.present |= JsonFields::bit(field_);
  }
}

void JsonTopLevel::end_key() noexcept {
  field_ = key_.truncated ? JsonField::none : key_field(key_.view());
  if (field_ != JsonField::none) {
    const uint8_t b = JsonFields::bit(field_);
    if (seen_ & b) f_.duplicate |= b;
    seen_ |= b;
  }
  st_ = St::colon;
}

// A byte inside a string we decode (a key, or the model value).
void JsonTopLevel::decoded_byte(uint8_t c) noexcept {
  if (esc_ == 0) {
    if (c == '"') {
      if (st_ == St::key) {
        end_key();
      } else {
        flush_surrogate();
        f_.present |= JsonFields::bit(JsonField::model);
        st_ = St::comma_or_end;
      }
    } else if (c == '\\') {
      esc_ = 1;
    } else {
      put_raw(c);
    }
    return;
  }
  if (esc_ == 1) {
    esc_ = 0;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        put_cp(c);
        return;
      case 'b':
        put_cp('\b');
        return;
      case 'f':
        put_cp('\f');
        return;
      case 'n':
        put_cp('\n');
        return;
      case 'r':
        put_cp('\r');
        return;
      case 't':
        put_cp('\t');
        return;
      case 'u':
        esc_ = 2;
        u_ = 0;
        return;
      default:
        fail();
        return;
    }
  }
  int h = hex_val(c);
  if (h < 0) {
    fail();
    return;
  }
  u_ = u_ * 16 + static_cast<uint32_t>(h);
  if (++esc_ == 6) {
    esc_ = 0;
    put_cp(u_);
  }
}

void JsonTopLevel::flush_surrogate() noexcept {
  if (hi_) {
    hi_ = 0;
    f_.model.push_utf8(0xfffd);
  }
}

void JsonTopLevel::put_raw(uint8_t c) noexcept {
  if (st_ == St::key) {
    key_.push(static_cast<char>(c));
  } else {
    flush_surrogate();
    f_.model.push(static_cast<char>(c));
  }
}

// An escaped code unit; surrogate pairs are joined (model only: a non-ASCII
// key never matches, so keys just get some non-ASCII bytes).
void JsonTopLevel::put_cp(uint32_t cp) noexcept {
  if (st_ == St::key) {
    key_.push_utf8(cp);
    return;
  }
  if (cp >= 0xdc00 && cp <= 0xdfff) {
    if (hi_) {
      cp = 0x10000 + ((uint32_t{hi_} - 0xd800) << 10) + (cp - 0xdc00);
      hi_ = 0;
    } else {
      cp = 0xfffd;  // lone low surrogate
    }
  } else {
    flush_surrogate();
    if (cp >= 0xd800 && cp <= 0xdbff) {
      hi_ = static_cast<uint16_t>(cp);
      return;
    }
  }
  f_.model.push_utf8(cp);
}

// ---------------------------------------------------------------------------

std::unique_ptr<BodyMatcher> BodyMatcher::compile(std::span<const HsPattern> patterns,
                                                  HsCompileError& err) {
  err = {};
  auto m = std::unique_ptr<BodyMatcher>(new BodyMatcher());
  if (!patterns.empty()) {
    m->db_ = HsDatabase::compile(patterns, HsDatabase::Mode::stream, err);
    if (!m->db_) return nullptr;
  }
  return m;
}

BodyStream::~BodyStream() {
  if (hs_) hs_close_stream(hs_, nullptr, nullptr, nullptr);
}

bool BodyStream::open(const BodyMatcher* m) noexcept {
  if (hs_) hs_close_stream(hs_, nullptr, nullptr, nullptr);
  hs_ = nullptr;
  json_.reset();
  mask_ = 0;
  hs_failed_ = false;
  db_ = m ? m->database() : nullptr;
  if (db_ && hs_open_stream(db_->get(), 0, &hs_) != HS_SUCCESS) {
    hs_ = nullptr;
    hs_failed_ = true;
  }
  return !hs_failed_;
}

void BodyStream::feed(std::span<const uint8_t> chunk, BodyScratch& scratch) noexcept {
  json_.feed(chunk);
  if (hs_ && !chunk.empty()) {
    if (hs_scan_stream(hs_, reinterpret_cast<const char*>(chunk.data()),
                       static_cast<unsigned>(chunk.size()), 0, scratch.get(), hs_collect_mask,
                       &mask_) != HS_SUCCESS) {
      // Bad scratch or a corrupt stream: stop matching, keep the JSON result.
      hs_close_stream(hs_, nullptr, nullptr, nullptr);
      hs_ = nullptr;
      hs_failed_ = true;
    }
  }
}

void BodyStream::close(BodyScratch& scratch) noexcept {
  json_.finish();
  if (hs_) {
    hs_close_stream(hs_, scratch.get(), hs_collect_mask, &mask_);
    hs_ = nullptr;
  }
}

}  // namespace aiqos
