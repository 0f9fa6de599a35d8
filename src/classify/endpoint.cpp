#include "classify/endpoint.h"

#include <array>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace aiqos {
namespace {

constexpr std::array<const char*, static_cast<size_t>(Endpoint::count_)> kNames = {
#define X(name) #name,
    AIQOS_ENDPOINTS(X)
#undef X
};

int hex_val(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls f(byte) for each percent-decoded byte of `in`; stops when f returns false.
template <typename F>
bool for_each_decoded(std::string_view in, F&& f) noexcept {
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size() && hex_val(in[i + 1]) >= 0 && hex_val(in[i + 2]) >= 0) {
      c = static_cast<char>(hex_val(in[i + 1]) * 16 + hex_val(in[i + 2]));
      i += 2;
    }
    if (!f(c)) return false;
  }
  return true;
}

// Does the percent-decoded form of `seg` equal `lit`?
bool seg_is(std::string_view seg, std::string_view lit) noexcept {
  // Decoding only shortens, and no literal holds a '%': a segment as long as
  // the literal matches only byte for byte, a shorter one never.
  if (seg.size() <= lit.size()) return seg == lit;
  size_t j = 0;
  bool ok = for_each_decoded(seg, [&](char c) {
    if (j >= lit.size() || lit[j] != c) return false;
    ++j;
    return true;
  });
  return ok && j == lit.size();
}

// The path of a request target: absolute-form reduced to its path, query and
// fragment dropped.
std::string_view path_only(std::string_view target) noexcept {
  auto starts_ci = [&](std::string_view p) {
    if (target.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
      char c = target[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != p[i]) return false;
    }
    return true;
  };
  // (find_first_of with a set calls memchr per byte: plain loops.)
  size_t skip = starts_ci("http://") ? 7 : starts_ci("https://") ? 8 : 0;
  if (skip) {
    size_t slash = skip;
    while (slash < target.size() && target[slash] != '/' && target[slash] != '?' && target[slash] != '#') ++slash;
    if (slash == target.size() || target[slash] != '/') return "/";
    target.remove_prefix(slash);
  }
  size_t q = 0;
#ifdef __SSE2__
  const __m128i qm = _mm_set1_epi8('?'), hs = _mm_set1_epi8('#');
  for (; q + 16 <= target.size(); q += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(target.data() + q));
    const unsigned m = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, qm), _mm_cmpeq_epi8(v, hs))));
    if (m != 0) return target.substr(0, q + static_cast<size_t>(__builtin_ctz(m)));
  }
#endif
  while (q < target.size() && target[q] != '?' && target[q] != '#') ++q;
  return target.substr(0, q);
}

// The first kMaxSegs segments of a path and how many there are in total.
constexpr size_t kMaxSegs = 8;
struct Segments {
  std::array<std::string_view, kMaxSegs> s{};
  size_t n = 0;  // total count, may exceed kMaxSegs
};

Segments split(std::string_view path) noexcept {
  Segments out;
  path.remove_prefix(1);  // leading '/', checked by the caller
  while (true) {
    size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (out.n < kMaxSegs) out.s[out.n] = seg;
    ++out.n;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// The last three segments of a path, last one in [2]; missing ones empty.
std::array<std::string_view, 3> last3(std::string_view path) noexcept {
  std::array<std::string_view, 3> out{};
  for (int k = 2; k >= 0; --k) {
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) break;
    out[k] = path.substr(slash + 1);
    path = path.substr(0, slash);
  }
  return out;
}

Endpoint openai_suffix(std::string_view path) noexcept {
  auto t = last3(path);
  if (seg_is(t[1], "v1")) {
    if (seg_is(t[2], "completions")) return Endpoint::completions;
    if (seg_is(t[2], "embeddings")) return Endpoint::embeddings;
    if (seg_is(t[2], "responses")) return Endpoint::responses;
    if (seg_is(t[2], "messages")) return Endpoint::anthropic_messages;
  }
  if (seg_is(t[0], "v1") && seg_is(t[1], "chat") && seg_is(t[2], "completions"))
    return Endpoint::chat_completions;
  return Endpoint::other;
}

// `/v2/models/{name}[/versions/{v}]/{infer,generate,generate_stream}`.
Endpoint kserve_v2(const Segments& g, EndpointMatch& m) noexcept {
  if (g.n != 4 && g.n != 6) return Endpoint::other;
  if (!seg_is(g.s[0], "v2") || !seg_is(g.s[1], "models") || g.s[2].empty()) return Endpoint::other;
  if (g.n == 6 && (!seg_is(g.s[3], "versions") || g.s[4].empty())) return Endpoint::other;
  std::string_view verb = g.s[g.n - 1];
  Endpoint e = Endpoint::other;
  if (seg_is(verb, "infer"))
    e = Endpoint::kserve_infer;
  else if (seg_is(verb, "generate") || seg_is(verb, "generate_stream"))
    e = Endpoint::triton_generate;
  if (e != Endpoint::other) percent_decode(g.s[2], m.model);
  return e;
}

}  // namespace

const char* endpoint_name(Endpoint e) noexcept {
  auto i = static_cast<size_t>(e);
  return i < kNames.size() ? kNames[i] : "?";
}

std::optional<Endpoint> endpoint_from_name(std::string_view name) noexcept {
  for (size_t i = 0; i < kNames.size(); ++i)
    if (name == kNames[i]) return static_cast<Endpoint>(i);
  return std::nullopt;
}

void percent_decode(std::string_view in, ModelName& out) noexcept {
  for_each_decoded(in, [&](char c) {
    out.push(c);
    return true;
  });
}

EndpointMatch identify_endpoint(std::string_view method, std::string_view target) noexcept {
  EndpointMatch m;
  if (method != "POST") return m;
  std::string_view path = path_only(target);
  if (path.empty() || path[0] != '/') return m;

  m.endpoint = openai_suffix(path);
  if (m.endpoint != Endpoint::other) return m;

  Segments g = split(path);
  if (g.n == 2) {
    if (seg_is(g.s[0], "api")) {
      if (seg_is(g.s[1], "chat")) m.endpoint = Endpoint::ollama_chat;
      if (seg_is(g.s[1], "generate")) m.endpoint = Endpoint::ollama_generate;
    } else if (seg_is(g.s[0], "inference.GRPCInferenceService") &&
               (seg_is(g.s[1], "ModelInfer") || seg_is(g.s[1], "ModelStreamInfer"))) {
      m.endpoint = Endpoint::grpc_model_infer;
    }
  } else if (g.n == 1) {
    if (seg_is(g.s[0], "generate") || seg_is(g.s[0], "generate_stream"))
      m.endpoint = Endpoint::tgi_generate;
  } else {
    m.endpoint = kserve_v2(g, m);
  }
  return m;
}

}  // namespace aiqos
