#include "classify/response_tracker.h"

#include <array>

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

void ResponseTracker::start(Endpoint ep, std::string_view ctype, bool encoded, bool streaming_rpc) noexcept {
  reset();
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
  switch (fmt_) {
    case RespFormat::sse: return feed_sse(b.data(), b.size());
    case RespFormat::ndjson: return feed_json(b.data(), b.size());
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
void ResponseTracker::content() noexcept {
  if (u_.first_ns == 0) u_.first_ns = now_;
  u_.last_ns = now_;
  ++u_.events;
}

void ResponseTracker::doc_end() noexcept {
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
      if (c) doc_ |= kDocContent;
      if (depth_ == 1 && key_ == ky::error) doc_ |= kDocError;  // {"error": "..."}
    }
  } else if (js_ == j_num) {
    if (vflags_ & (kVfIn | kVfOut)) {
      if (vflags_ & kVfBad) return fail();  // a negative or fractional usage figure: garbage
      if (vflags_ & kVfIn) u_.input = static_cast<int64_t>(num_);
      if (vflags_ & kVfOut) u_.output = static_cast<int64_t>(num_);
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
          size_t j = i;
          while (j < n && p[j] != '"' && p[j] != '\\') ++j;
          if (j > i) vflags_ |= kVfNonEmpty;
          i = j;
          if (i == n) break;
        }
        while (i < n) {
          const uint8_t s = p[i++];
          if (s == '"') {
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

// SSE (WHATWG): only `data:` lines matter; their payloads, concatenated, are
// the JSON documents. `data: [DONE]` (OpenAI) ends the stream.
void ResponseTracker::feed_sse(const uint8_t* p, size_t n) noexcept {
  static constexpr char kData[] = "data";
  static constexpr char kDone[] = "[DONE]";
  size_t i = 0;
  while (i < n && !failed_) {
    const uint8_t c = p[i];
    switch (ls_) {
      case l_start:
        lpos_ = 0;
        ls_ = l_name;
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
        size_t j = i;
        while (j < n && p[j] != '\n') ++j;
        feed_json(p + i, j - i);
        if (j < n) {
          ls_ = l_start;
          ++j;
        }
        i = j;
        break;
      }
      case l_skip:
        while (i < n && p[i] != '\n') ++i;
        if (i < n) {
          ls_ = l_start;
          ++i;
        }
        break;
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
