#include "classify/json_model.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#if __has_include(<nlohmann/json.hpp>)
#include <nlohmann/json.hpp>
#define AIQOS_HAVE_NLOHMANN 1
#endif

namespace aiqos {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Everything observable, for comparing two runs.
struct Outcome {
  JsonStatus status;
  uint64_t offset;  // only compared on error
  uint8_t present, duplicate;
  std::string model;
  bool model_truncated;
  int64_t max_tokens, max_completion_tokens, max_output_tokens, n;
  bool stream;

  bool operator==(const Outcome& o) const {
    auto num = [](const Outcome& x, JsonField f, int64_t v) {
      return (x.present & JsonFields::bit(f)) ? v : -777;
    };
    return status == o.status && (status != JsonStatus::error || offset == o.offset) &&
           present == o.present && duplicate == o.duplicate &&
           (!(present & JsonFields::bit(JsonField::model)) ||
            (model == o.model && model_truncated == o.model_truncated)) &&
           num(*this, JsonField::max_tokens, max_tokens) ==
               num(o, JsonField::max_tokens, o.max_tokens) &&
           num(*this, JsonField::max_completion_tokens, max_completion_tokens) ==
               num(o, JsonField::max_completion_tokens, o.max_completion_tokens) &&
           num(*this, JsonField::max_output_tokens, max_output_tokens) ==
               num(o, JsonField::max_output_tokens, o.max_output_tokens) &&
           num(*this, JsonField::n, n) == num(o, JsonField::n, o.n) &&
           num(*this, JsonField::stream, stream) == num(o, JsonField::stream, o.stream);
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "status=" << int(o.status) << " off=" << o.offset << " present=" << int(o.present)
            << " dup=" << int(o.duplicate) << " model='" << o.model << "'";
}

Outcome outcome(const JsonTopLevel& j) {
  const JsonFields& f = j.fields();
  return {j.status(),
          j.offset(),
          f.present,
          f.duplicate,
          std::string(f.model.view()),
          f.model.truncated,
          f.max_tokens,
          f.max_completion_tokens,
          f.max_output_tokens,
          f.n,
          f.stream};
}

Outcome run_chunks(std::string_view body, const std::vector<size_t>& cuts) {
  JsonTopLevel j;
  size_t pos = 0;
  for (size_t c : cuts) {
    j.feed(bytes(body.substr(pos, c - pos)));
    pos = c;
  }
  j.feed(bytes(body.substr(pos)));
  j.finish();
  return outcome(j);
}

Outcome run(std::string_view body) { return run_chunks(body, {}); }

// The whole body at once, every two-chunk split, three-chunk splits around a
// sliding window, and 1-byte chunks all agree.
Outcome run_all_splits(std::string_view body) {
  Outcome whole = run(body);
  for (size_t i = 0; i <= body.size(); ++i) {
    Outcome o = run_chunks(body, {i});
    EXPECT_EQ(o, whole) << "split at " << i << " of: " << body.substr(0, 200);
    if (!(o == whole)) break;
  }
  for (size_t i = 0; i + 3 <= body.size(); ++i) EXPECT_EQ(run_chunks(body, {i, i + 3}), whole);
  JsonTopLevel j;
  for (char c : body) j.feed(bytes(std::string_view(&c, 1)));
  j.finish();
  EXPECT_EQ(outcome(j), whole) << "1-byte chunks";
  return whole;
}

std::string model_of(std::string_view body) {
  Outcome o = run_all_splits(body);
  EXPECT_EQ(o.status, JsonStatus::done) << body;
  return (o.present & JsonFields::bit(JsonField::model)) ? o.model : "<none>";
}

TEST(JsonModel, Basic) {
  std::string body =
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],)"
      R"("max_tokens":100,"max_completion_tokens":7,"max_output_tokens":9,"n":2,"stream":true})";
  Outcome o = run_all_splits(body);
  EXPECT_EQ(o.status, JsonStatus::done);
  EXPECT_EQ(o.model, "gpt-4o");
  EXPECT_EQ(o.present, 0x7e);
  EXPECT_EQ(o.duplicate, 0);
  EXPECT_EQ(o.max_tokens, 100);
  EXPECT_EQ(o.max_completion_tokens, 7);
  EXPECT_EQ(o.max_output_tokens, 9);
  EXPECT_EQ(o.n, 2);
  EXPECT_TRUE(o.stream);
}

TEST(JsonModel, WhitespaceEverywhere) {
  EXPECT_EQ(model_of(" \r\n\t{ \n\"model\" \t:\r \"m\" , \"n\" : 3 \n} \n "), "m");
  EXPECT_EQ(run(" { \"n\" : 3 } ").n, 3);
  EXPECT_EQ(model_of("\xef\xbb\xbf{\"model\":\"bom\"}"), "bom");
  EXPECT_EQ(model_of("{}"), "<none>");
}

std::string big_messages(size_t target) {
  // Content with every trap: quotes, escaped quotes and backslashes, nested
  // objects with "model" keys, braces inside strings, unicode escapes.
  std::string msgs = "[";
  int i = 0;
  while (msgs.size() < target) {
    if (i) msgs += ',';
    msgs += R"({"role":"user","content":"say \"model\": \"evil\" {[ ]} \\ \\\" \u0022model\u0022 )";
    msgs += std::string(200 + (i * 37) % 500, 'x');
    msgs +=
        R"(","model":"nested-)" + std::to_string(i) + R"(","meta":{"model":["a",{"model":1}]}})";
    ++i;
  }
  return msgs + "]";
}

TEST(JsonModel, ModelAfterAndBefore100KBMessages) {
  std::string msgs = big_messages(100 * 1024);
  ASSERT_GE(msgs.size(), 100u * 1024);
  std::string after = R"({"messages":)" + msgs + R"(,"model":"llama-3.1-8b","stream":false})";
  std::string before = R"({"model":"llama-3.1-8b","messages":)" + msgs + R"(,"stream":false})";
  for (const std::string& body : {after, before}) {
    Outcome whole = run(body);
    EXPECT_EQ(whole.status, JsonStatus::done);
    EXPECT_EQ(whole.model, "llama-3.1-8b");
    EXPECT_TRUE(whole.present & JsonFields::bit(JsonField::stream));
    EXPECT_FALSE(whole.stream);
    // Two-chunk splits at a stride (every offset would be 10^10 steps), plus
    // every offset near the model key.
    for (size_t i = 0; i <= body.size(); i += 997) EXPECT_EQ(run_chunks(body, {i}), whole);
    size_t k = body.rfind("\"model\"");
    for (size_t i = k - 40; i < std::min(k + 40, body.size()); ++i)
      EXPECT_EQ(run_chunks(body, {i}), whole);
    // MTU-ish and odd chunk sizes.
    for (size_t step : {1u, 7u, 1448u, 4096u}) {
      JsonTopLevel j;
      for (size_t p = 0; p < body.size(); p += step)
        j.feed(bytes(std::string_view(body).substr(p, step)));
      j.finish();
      EXPECT_EQ(outcome(j), whole) << "step " << step;
    }
  }
}

TEST(JsonModel, NestedAndInStringModelIgnored) {
  EXPECT_EQ(model_of(R"({"messages":[{"model":"bad"}],"metadata":{"model":"bad2"}})"), "<none>");
  EXPECT_EQ(model_of(R"({"a":{"b":{"model":"x"}},"model":"good"})"), "good");
  EXPECT_EQ(model_of(R"({"a":[[["model"]]],"model":"good"})"), "good");
  EXPECT_EQ(model_of(R"({"prompt":"\"model\": \"evil\"","model":"good"})"), "good");
  EXPECT_EQ(model_of(R"({"prompt":"\"model\": \"evil\""})"), "<none>");
  EXPECT_EQ(model_of(R"({"prompt":"\\","model":"good"})"), "good");
  EXPECT_EQ(model_of(R"({"prompt":"\\\"model\\\":\"x","model":"good"})"), "good");
  EXPECT_EQ(model_of(R"({"prompt":"a\\\\","model":"good"})"), "good");
  EXPECT_EQ(model_of(R"({"x":"model","y":"\"model\":\"z\""})"), "<none>");
  // A key whose value is "model" is not the model key.
  EXPECT_EQ(model_of(R"({"name":"model","model":"m"})"), "m");
  EXPECT_EQ(model_of(R"({"models":"a","model_":"b","Model":"c","xmodel":"d"})"), "<none>");
  EXPECT_EQ(model_of(R"({"a":"{","model":"m","b":"}"})"), "m");
  EXPECT_EQ(model_of(R"({"a":"[","b":["]",{"}":"{"}],"model":"m"})"), "m");
}

TEST(JsonModel, Escapes) {
  EXPECT_EQ(model_of(R"({"m\u006fdel":"x"})"), "x");
  EXPECT_EQ(model_of(R"({"\u006D\u006F\u0044\u0045\u004c":"x"})"), "<none>");  // "moDEL"
  EXPECT_EQ(model_of(R"({"mod\u0065l":"x"})"), "x");
  EXPECT_EQ(model_of(R"({"model\u0000":"x"})"), "<none>");
  EXPECT_EQ(model_of(R"({"model":"gpt\u002d4\/o \"q\" \\ \t"})"), "gpt-4/o \"q\" \\ \t");
  EXPECT_EQ(model_of(R"({"model":"\u00e9\u4e2d"})"), "\xc3\xa9\xe4\xb8\xad");
  EXPECT_EQ(model_of(R"({"model":"\ud83d\ude00!"})"), "\xf0\x9f\x98\x80!");
  EXPECT_EQ(model_of(R"({"model":"\ud83dx"})"), "\xef\xbf\xbdx");  // lone high
  EXPECT_EQ(model_of(R"({"model":"\ude00"})"), "\xef\xbf\xbd");    // lone low
  EXPECT_EQ(model_of(R"({"model":"\ud83d"})"), "\xef\xbf\xbd");    // high at end
  EXPECT_EQ(model_of(R"({"model":"\ud83d\u0041"})"),
            "\xef\xbf\xbd"
            "A");
  EXPECT_EQ(model_of("{\"model\":\"caf\xc3\xa9\"}"), "caf\xc3\xa9");  // raw UTF-8 kept
}

TEST(JsonModel, DuplicatesLastWins) {
  Outcome o = run_all_splits(R"({"model":"a","x":1,"model":"b"})");
  EXPECT_EQ(o.model, "b");
  EXPECT_EQ(o.duplicate, JsonFields::bit(JsonField::model));
  o = run_all_splits(R"({"model":"a","model":5})");
  EXPECT_FALSE(o.present & JsonFields::bit(JsonField::model));
  o = run_all_splits(R"({"model":"a","model":{"x":"y"}})");
  EXPECT_FALSE(o.present & JsonFields::bit(JsonField::model));
  o = run_all_splits(R"({"model":"a","model":null})");
  EXPECT_FALSE(o.present & JsonFields::bit(JsonField::model));
  o = run_all_splits(R"({"max_tokens":5,"max_tokens":"7"})");
  EXPECT_FALSE(o.present & JsonFields::bit(JsonField::max_tokens));
  EXPECT_EQ(o.duplicate, JsonFields::bit(JsonField::max_tokens));
  o = run_all_splits(R"({"n":5,"n":6})");
  EXPECT_EQ(o.n, 6);
}

TEST(JsonModel, PartialModelNeverReported) {
  JsonTopLevel j;
  j.feed(bytes(R"({"model":"first","model":"sec)"));
  EXPECT_EQ(j.status(), JsonStatus::in_progress);
  EXPECT_FALSE(j.fields().has(JsonField::model));
  j.feed(bytes(R"(ond"})"));
  EXPECT_EQ(j.status(), JsonStatus::done);
  EXPECT_TRUE(j.fields().has(JsonField::model));
  EXPECT_EQ(j.fields().model.view(), "second");
  // First model known early, before the rest of the body.
  JsonTopLevel k;
  k.feed(bytes(R"({"model":"early","messages":[)"));
  EXPECT_TRUE(k.fields().has(JsonField::model));
  EXPECT_EQ(k.fields().model.view(), "early");
}

TEST(JsonModel, LongModelTruncated) {
  std::string name(300, 'q');
  Outcome o = run_all_splits(R"({"model":")" + name + R"(","n":1})");
  EXPECT_EQ(o.status, JsonStatus::done);
  EXPECT_TRUE(o.present & JsonFields::bit(JsonField::model));
  EXPECT_EQ(o.model, std::string(kMaxModelName, 'q'));
  EXPECT_TRUE(o.model_truncated);
  EXPECT_EQ(o.n, 1);
  o = run(R"({"model":")" + std::string(kMaxModelName, 'q') + R"("})");
  EXPECT_FALSE(o.model_truncated);
  // Long keys never match, even with a wanted key as prefix.
  EXPECT_EQ(model_of(R"({"model_with_a_very_long_key_name_here":"x"})"), "<none>");
  EXPECT_EQ(model_of(R"({")" + std::string(1000, 'k') + R"(":"x","model":"m"})"), "m");
}

TEST(JsonModel, Numbers) {
  struct C {
    const char* v;
    bool present;
    int64_t want;
  } cases[] = {
      {"0", true, 0},
      {"-1", true, -1},
      {"4096", true, 4096},
      {"9223372036854775807", true, INT64_MAX},
      {"-9223372036854775808", true, INT64_MIN},
      {"9223372036854775808", false, 0},
      {"-9223372036854775809", false, 0},
      {"99999999999999999999999999", false, 0},
      {"3.14159265358979323846264338327950288", false, 0},
      {"1.5", false, 0},
      {"1e3", false, 0},
      {"1E3", false, 0},
      {"100.0", false, 0},
      {"01", false, 0},
      {"-", false, 0},
      {"null", false, 0},
      {"true", false, 0},
      {"\"5\"", false, 0},
      {"[5]", false, 0},
      {"{\"a\":5}", false, 0},
  };
  for (const C& c : cases) {
    for (const char* key : {"max_tokens", "max_completion_tokens", "max_output_tokens", "n"}) {
      std::string body = std::string(R"({")") + key + R"(":)" + c.v + "}";
      SCOPED_TRACE(body);
      JsonTopLevel j;
      j.feed(bytes(body));
      EXPECT_EQ(j.status(), JsonStatus::done);
      auto f = key == std::string_view("n")                   ? JsonField::n
               : key == std::string_view("max_tokens")        ? JsonField::max_tokens
               : key == std::string_view("max_output_tokens") ? JsonField::max_output_tokens
                                                              : JsonField::max_completion_tokens;
      EXPECT_EQ(j.fields().has(f), c.present);
      if (c.present) {
        int64_t got = f == JsonField::n                   ? j.fields().n
                      : f == JsonField::max_tokens        ? j.fields().max_tokens
                      : f == JsonField::max_output_tokens ? j.fields().max_output_tokens
                                                          : j.fields().max_completion_tokens;
        EXPECT_EQ(got, c.want);
      }
    }
  }
  run_all_splits(R"({"max_tokens":-9223372036854775808,"n":12345})");
}

TEST(JsonModel, Stream) {
  EXPECT_TRUE(run(R"({"stream":true})").stream);
  Outcome o = run(R"({"stream":false})");
  EXPECT_TRUE(o.present & JsonFields::bit(JsonField::stream));
  EXPECT_FALSE(o.stream);
  for (const char* v : {"null", "\"true\"", "1", "0", "[true]"}) {
    o = run(std::string(R"({"stream":)") + v + "}");
    EXPECT_EQ(o.status, JsonStatus::done) << v;
    EXPECT_FALSE(o.present & JsonFields::bit(JsonField::stream)) << v;
  }
}

TEST(JsonModel, NotObject) {
  for (const char* b : {"[{\"model\":\"x\"}]", "\"model\"", "null", "x", "\xef\xbb{}",
                        " \xef\xbb\xbf{}", "model=x", "<html>"}) {
    Outcome o = run_all_splits(b);
    EXPECT_EQ(o.status, JsonStatus::not_object) << b;
    EXPECT_EQ(o.present, 0) << b;
  }
  EXPECT_EQ(run("").status, JsonStatus::not_object);
  EXPECT_EQ(run("  \n").status, JsonStatus::not_object);
}

TEST(JsonModel, Errors) {
  struct C {
    const char* body;
    uint64_t offset;
  } cases[] = {
      {R"({"model" "x"})", 9},   {R"({"model":"x",})", 13}, {R"({"model":"x"} x)", 14},
      {R"({"model":"x"}})", 13}, {R"({"model":"\x"})", 11}, {R"({"model":"\u12G4"})", 14},
      {R"({"m\q":1})", 4},       {R"({"a":tru})", 8},       {R"({"a":1]})", 6},
      {R"({"a":})", 5},          {R"({"a":,})", 5},         {R"({,})", 1},
      {R"({"a"})", 4},           {R"({"a":1 "b":2})", 7},
  };
  // Nested brackets are only counted, not matched: documented leniency (the
  // server rejects such a body, so whatever we report is never used).
  EXPECT_EQ(run_all_splits(R"({"a":[1,2}})").status, JsonStatus::done);
  for (const C& c : cases) {
    Outcome o = run_all_splits(c.body);
    EXPECT_EQ(o.status, JsonStatus::error) << c.body;
    EXPECT_EQ(o.offset, c.offset) << c.body;
  }
  // Truncated bodies: error at finish(), model seen so far kept but the
  // status says the body was incomplete.
  Outcome o = run(R"({"model":"x","messages":[)");
  EXPECT_EQ(o.status, JsonStatus::error);
  // Errors are sticky.
  JsonTopLevel j;
  j.feed(bytes(R"({"a" "model":"x"})"));
  EXPECT_EQ(j.status(), JsonStatus::error);
  j.feed(bytes(R"({"model":"y"})"));
  EXPECT_EQ(j.status(), JsonStatus::error);
  EXPECT_FALSE(j.fields().has(JsonField::model));
}

TEST(JsonModel, ResetReuses) {
  JsonTopLevel j;
  j.feed(bytes(R"({"model":"a"})"));
  j.reset();
  EXPECT_EQ(j.status(), JsonStatus::in_progress);
  EXPECT_FALSE(j.fields().has(JsonField::model));
  j.feed(bytes(R"({"model":"b"})"));
  EXPECT_EQ(j.fields().model.view(), "b");
}

#ifdef AIQOS_HAVE_NLOHMANN
// Differential check against a full JSON parser: whenever it accepts a
// mutated body as an object, we must agree on every field.
void check_against_reference(const std::string& body) {
  Outcome o = run(body);
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return;
  ASSERT_EQ(o.status, JsonStatus::done) << body;
  auto it = j.find("model");
  bool has = it != j.end() && it->is_string();
  ASSERT_EQ(bool(o.present & JsonFields::bit(JsonField::model)), has) << body;
  if (has) {
    std::string want = it->get<std::string>();
    if (want.size() > kMaxModelName) want.resize(kMaxModelName);
    ASSERT_EQ(o.model, want) << body;
  }
  it = j.find("max_tokens");
  bool num = it != j.end() && it->is_number_integer() &&
             !(it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX));
  ASSERT_EQ(bool(o.present & JsonFields::bit(JsonField::max_tokens)), num) << body;
  if (num) {
    ASSERT_EQ(o.max_tokens, it->get<int64_t>()) << body;
  }
  it = j.find("stream");
  bool b = it != j.end() && it->is_boolean();
  ASSERT_EQ(bool(o.present & JsonFields::bit(JsonField::stream)), b) << body;
  if (b) {
    ASSERT_EQ(o.stream, it->get<bool>()) << body;
  }
}
#endif

TEST(JsonModel, MutationsNeverCrashAndAgreeWithReference) {
  const std::string seed =
      R"({"messages":[{"role":"user","content":"a\"model\":\"b\" \\ \u00e9"},{"model":"n"}],)"
      R"("model":"m\u0031","max_tokens":12,"stream":true,"x":[1.5,-2e3,null,false]})";
  std::mt19937 rng(42);
  const char alphabet[] = "{}[]\":,\\ u0123456789aeflmnorstx.-+\xc3\xa9";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string b = seed;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % b.size();
      switch (rng() % 4) {
        case 0:
          b[pos] = static_cast<char>(b[pos] ^ (1 << (rng() % 8)));
          break;
        case 1:
          b[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
          break;
        case 2:
          b.erase(pos, 1);
          break;
        case 3:
          b.insert(pos, 1, alphabet[rng() % (sizeof(alphabet) - 1)]);
          break;
      }
    }
    Outcome whole = run(b);
    EXPECT_EQ(run_chunks(b, {rng() % (b.size() + 1)}), whole) << b;
#ifdef AIQOS_HAVE_NLOHMANN
    check_against_reference(b);
    if (HasFatalFailure()) return;
#endif
  }
  // Truncations at every length.
  for (size_t n = 0; n <= seed.size(); ++n) {
    Outcome o = run(std::string_view(seed).substr(0, n));
    if (n < seed.size()) {
      EXPECT_NE(o.status, JsonStatus::done);
    }
  }
}

TEST(JsonModel, DeepNestingBounded) {
  std::string b =
      R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + R"(,"model":"m"})";
  EXPECT_EQ(run(b).model, "m");
  std::string deep = R"({"a":)" + std::string((1u << 20) + 5, '[');
  Outcome o = run(deep);
  EXPECT_EQ(o.status, JsonStatus::error);
  EXPECT_EQ(o.offset, 5u + (1u << 20) - 1);
}

// ---------------------------------------------------------------------------
// Hyperscan wrappers

TEST(HsDatabase, BlockMatchMaskAndFirst) {
  std::vector<HsPattern> pats = {
      {.id = 1, .expression = "^/v1/chat/completions", .flags = 0},
      {.id = 5, .expression = "openai\\.com$", .flags = HS_FLAG_CASELESS},
      {.id = 63, .expression = "gpt-4", .flags = 0},
  };
  HsCompileError err;
  auto db = HsDatabase::compile(pats, HsDatabase::Mode::block, err);
  ASSERT_TRUE(db) << err.describe(pats);
  EXPECT_EQ(db->stream_size(), 0u);
  EXPECT_GT(db->database_size(), 0u);
  HsScratch proto;
  ASSERT_TRUE(proto.reserve(db->get()));
  HsScratch s = proto.clone();
  ASSERT_TRUE(s.valid());
  EXPECT_EQ(db->match("/v1/chat/completions?gpt-4", s), (1ull << 1) | (1ull << 63));
  EXPECT_EQ(db->match("API.OPENAI.COM", s), 1ull << 5);
  EXPECT_EQ(db->match("", s), 0u);
  EXPECT_EQ(db->match("nothing", s), 0u);
  EXPECT_EQ(db->first_match("x gpt-4 /v1/chat/completions", s), 63);
  EXPECT_EQ(db->first_match("/v1/chat/completions gpt-4", s), 1);
  EXPECT_EQ(db->first_match("none", s), -1);
  HsScratch empty;
  EXPECT_EQ(db->match("gpt-4", empty), 0u);
}

TEST(HsDatabase, CompileErrorsNameThePattern) {
  std::vector<HsPattern> pats = {
      {.id = 0, .expression = "ok", .flags = 0},
      {.id = 1, .expression = "fine.*", .flags = 0},
      {.id = 2, .expression = "a(b", .flags = 0},
  };
  HsCompileError err;
  EXPECT_FALSE(HsDatabase::compile(pats, HsDatabase::Mode::block, err));
  EXPECT_EQ(err.expression, 2);
  EXPECT_FALSE(err.message.empty());
  EXPECT_NE(err.describe(pats).find("pattern 2 (id 2, \"a(b\")"), std::string::npos)
      << err.describe(pats);

  pats = {{.id = 0, .expression = "ok", .flags = 0}, {.id = 64, .expression = "x", .flags = 0}};
  EXPECT_FALSE(HsDatabase::compile(pats, HsDatabase::Mode::block, err));
  EXPECT_EQ(err.expression, 1);
  EXPECT_NE(err.message.find("out of range"), std::string::npos);

  EXPECT_FALSE(HsDatabase::compile({}, HsDatabase::Mode::block, err));
  EXPECT_EQ(err.expression, -1);

  pats = {{.id = 3, .expression = "\\bfoo(?=bar)", .flags = 0}};  // lookahead: unsupported
  EXPECT_FALSE(HsDatabase::compile(pats, HsDatabase::Mode::stream, err));
  EXPECT_EQ(err.expression, 0);
}

TEST(BodyStream, PatternsAcrossChunksAndJson) {
  std::vector<HsPattern> pats = {
      {.id = 0, .expression = "ignore (all|previous) instructions", .flags = HS_FLAG_CASELESS},
      {.id = 7, .expression = "\"tools\"\\s*:", .flags = 0},
      {.id = 9, .expression = "\\}\\s*$", .flags = 0},
  };
  HsCompileError err;
  auto m = BodyMatcher::compile(pats, err);
  ASSERT_TRUE(m) << err.describe(pats);
  ASSERT_GT(m->stream_size(), 0u);
  HsScratch proto;
  ASSERT_TRUE(m->reserve(proto));
  BodyScratch scratch = proto.clone();

  std::string body = R"({"model":"m","messages":[{"content":"Please IGNORE ALL instructions"}],)"
                     R"("tools" : []})";
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    BodyStream bs;
    ASSERT_TRUE(bs.open(m.get()));
    bs.feed(bytes(std::string_view(body).substr(0, cut)), scratch);
    bs.feed(bytes(std::string_view(body).substr(cut)), scratch);
    bs.close(scratch);
    EXPECT_EQ(bs.pattern_mask(), (1ull << 0) | (1ull << 7) | (1ull << 9)) << cut;
    EXPECT_EQ(bs.json().status(), JsonStatus::done);
    EXPECT_EQ(bs.json().fields().model.view(), "m");
  }
  // Reopen for the next request on the same object; no match this time.
  BodyStream bs;
  bs.open(m.get());
  bs.feed(bytes(R"({"model":"x"} trailing)"), scratch);
  bs.open(m.get());
  bs.feed(bytes(R"({"model":"y")"), scratch);
  bs.close(scratch);
  EXPECT_EQ(bs.pattern_mask(), 0u);
  EXPECT_EQ(bs.json().status(), JsonStatus::error);  // unclosed
}

TEST(BodyStream, NoPatternsJsonOnly) {
  HsCompileError err;
  auto m = BodyMatcher::compile({}, err);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->database(), nullptr);
  EXPECT_EQ(m->stream_size(), 0u);
  HsScratch proto;
  EXPECT_TRUE(m->reserve(proto));
  BodyStream bs;
  EXPECT_TRUE(bs.open(m.get()));
  bs.feed(bytes(R"({"model":"only-json"})"), proto);
  bs.close(proto);
  EXPECT_EQ(bs.json().fields().model.view(), "only-json");
  BodyStream none;
  EXPECT_TRUE(none.open(nullptr));

  std::vector<HsPattern> bad = {{.id = 0, .expression = "(", .flags = 0}};
  EXPECT_FALSE(BodyMatcher::compile(bad, err));
  EXPECT_EQ(err.expression, 0);
}

TEST(BodyStream, Sizes) {
  std::vector<HsPattern> pats = {
      {.id = 0, .expression = "ignore (all|previous) instructions", .flags = HS_FLAG_CASELESS},
      {.id = 1, .expression = "\"tools\"\\s*:", .flags = 0},
  };
  HsCompileError err;
  auto m = BodyMatcher::compile(pats, err);
  ASSERT_TRUE(m);
  std::printf("sizeof(JsonTopLevel)=%zu sizeof(BodyStream)=%zu hs_stream_size=%zu\n",
              sizeof(JsonTopLevel), sizeof(BodyStream), m->stream_size());
  EXPECT_LE(sizeof(JsonTopLevel), 384u);
}

}  // namespace
}  // namespace aiqos
