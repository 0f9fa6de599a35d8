#include "classify/grpc.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace aiqos {
namespace {

// --- protobuf by hand -------------------------------------------------------
using Bytes = std::string;

Bytes varint(uint64_t v) {
  Bytes b;
  do {
    uint8_t c = v & 0x7f;
    v >>= 7;
    if (v) c |= 0x80;
    b.push_back(static_cast<char>(c));
  } while (v);
  return b;
}
Bytes tag(uint32_t field, uint8_t wt) { return varint(uint64_t{field} << 3 | wt); }
Bytes f_varint(uint32_t field, uint64_t v) { return tag(field, 0) + varint(v); }
Bytes f_len(uint32_t field, const Bytes& v) { return tag(field, 2) + varint(v.size()) + v; }
Bytes f_i64(uint32_t field, uint64_t v) {
  Bytes b = tag(field, 1);
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
  return b;
}
Bytes f_i32(uint32_t field, uint32_t v) {
  Bytes b = tag(field, 5);
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
  return b;
}
Bytes f_group(uint32_t field, const Bytes& inner) { return tag(field, 3) + inner + tag(field, 4); }

Bytes frame(const Bytes& msg, uint8_t flag = 0) {
  Bytes b;
  b.push_back(static_cast<char>(flag));
  uint32_t n = static_cast<uint32_t>(msg.size());
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>(n >> s));
  return b + msg;
}

// A realistic KServe v2 ModelInferRequest minus model_name: version, id,
// parameters map, an input tensor (whose own field 1 is its name), raw
// contents.
Bytes infer_body_fields(size_t raw_size = 64) {
  Bytes shape;
  for (uint64_t d : {1, 3, 224, 224}) shape += varint(d);
  Bytes input = f_len(1, "INPUT0") + f_len(2, "FP32") + f_len(3, shape);
  Bytes param = f_len(1, "priority") + f_len(2, f_varint(3, 5));  // map entry
  return f_len(2, "1") + f_len(3, "req-42") + f_len(4, param) + f_len(5, input) +
         f_len(7, Bytes(raw_size, '\x7f'));
}

// --- running the decoder ----------------------------------------------------
struct Msg {
  std::string model;
  bool has_model, compressed, duplicate, truncated;
  uint32_t length;
  bool operator==(const Msg&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Msg& m) {
  return os << "{model='" << m.model << "' has=" << m.has_model << " comp=" << m.compressed
            << " dup=" << m.duplicate << " trunc=" << m.truncated << " len=" << m.length << "}";
}
struct Decoded {
  std::vector<Msg> msgs;
  GrpcError err;
  bool operator==(const Decoded&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Decoded& r) {
  os << grpc_error_name(r.err) << " [";
  for (const Msg& m : r.msgs) os << m << ' ';
  return os << "]";
}

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Decoded run_chunks(std::string_view in, const std::vector<size_t>& cuts) {
  GrpcModelDecoder d;
  Decoded r;
  auto on = [&](const GrpcMessage& m) {
    r.msgs.push_back({std::string(m.model.view()), m.has_model, m.compressed, m.duplicate_model,
                      m.model.truncated, m.length});
  };
  size_t pos = 0;
  for (size_t c : cuts) {
    d.feed_all(bytes(in.substr(pos, c - pos)), on);
    pos = c;
  }
  d.feed_all(bytes(in.substr(pos)), on);
  r.err = d.finish();
  EXPECT_EQ(d.messages(), r.msgs.size());
  return r;
}

Decoded run_all_splits(std::string_view in) {
  Decoded whole = run_chunks(in, {});
  for (size_t i = 0; i <= in.size(); ++i) {
    Decoded r = run_chunks(in, {i});
    EXPECT_EQ(r, whole) << "split at " << i;
    if (!(r == whole)) break;
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < in.size(); ++i) every.push_back(i);
  EXPECT_EQ(run_chunks(in, every), whole) << "1-byte chunks";
  return whole;
}

Msg model_msg(std::string m, uint32_t len, bool dup = false) {
  return {std::move(m), true, false, dup, false, len};
}

// --- paths --------------------------------------------------------------------
TEST(GrpcPath, Parse) {
  auto p = parse_grpc_path("/inference.GRPCInferenceService/ModelInfer");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->service, "inference.GRPCInferenceService");
  EXPECT_EQ(p->method, "ModelInfer");
  EXPECT_EQ(p->package(), "inference");
  p = parse_grpc_path("/a.b.c.Svc/M");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->package(), "a.b.c");
  p = parse_grpc_path("/Svc/M");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->package(), "");
  for (const char* bad : {"", "/", "//", "/a/", "//b", "/a", "a/b", "/a/b/c", "/a//b", "x/a/b"})
    EXPECT_FALSE(parse_grpc_path(bad)) << bad;
}

// --- model_name ---------------------------------------------------------------
TEST(GrpcModel, FirstMiddleLast) {
  Bytes rest = infer_body_fields();
  Bytes name = f_len(1, "resnet50");
  Bytes first = name + rest;
  Bytes middle = f_len(2, "1") + f_len(3, "req-42") + name + f_len(5, f_len(1, "INPUT0"));
  Bytes last = rest + name;
  for (const Bytes& m : {first, middle, last}) {
    Decoded r = run_all_splits(frame(m));
    EXPECT_EQ(r.err, GrpcError::none);
    ASSERT_EQ(r.msgs.size(), 1u);
    EXPECT_EQ(r.msgs[0], model_msg("resnet50", static_cast<uint32_t>(m.size())));
  }
}

TEST(GrpcModel, UnknownFieldsOfEveryWireType) {
  Bytes unknown = f_varint(9, 0) + f_varint(10, UINT64_MAX) /* 10-byte varint */ +
                  f_i64(11, 0x0102030405060708) + f_i32(12, 0xffffffff) +
                  f_len(13,
                        "\x0a\x03"
                        "bad") /* bytes that look like field 1 */
                  + f_group(14, f_len(1, "in-group") + f_varint(2, 7) + f_group(3, f_i32(1, 1))) +
                  f_len(536870911, "max field number") + f_len(15, "");
  Bytes m = unknown + f_len(1, "llama") + unknown;
  Decoded r = run_all_splits(frame(m));
  EXPECT_EQ(r.err, GrpcError::none);
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(r.msgs[0], model_msg("llama", static_cast<uint32_t>(m.size())));
}

TEST(GrpcModel, NestedField1IsNotTheModel) {
  // inputs { name: "INPUT0" } only; field 1 with a non-LEN wire type.
  Bytes m = f_len(5, f_len(1, "INPUT0")) + f_varint(1, 42) + f_i32(1, 7);
  Decoded r = run_all_splits(frame(m));
  EXPECT_EQ(r.err, GrpcError::none);
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_FALSE(r.msgs[0].has_model);
  EXPECT_EQ(r.msgs[0].model, "");
}

TEST(GrpcModel, StreamInferManyMessages) {
  Bytes s = frame(f_len(1, "a") + infer_body_fields()) + frame("") +
            frame(infer_body_fields() + f_len(1, "bbb")) + frame(f_len(1, "zzz"), 1) +
            frame(f_len(1, "ccc"));
  Decoded r = run_all_splits(s);
  EXPECT_EQ(r.err, GrpcError::none);
  ASSERT_EQ(r.msgs.size(), 5u);
  EXPECT_EQ(r.msgs[0].model, "a");
  EXPECT_FALSE(r.msgs[1].has_model);
  EXPECT_EQ(r.msgs[1].length, 0u);
  EXPECT_EQ(r.msgs[2].model, "bbb");
  EXPECT_TRUE(r.msgs[3].compressed);
  EXPECT_FALSE(r.msgs[3].has_model);
  EXPECT_EQ(r.msgs[3].model, "");
  EXPECT_EQ(r.msgs[4], model_msg("ccc", 5));
}

TEST(GrpcModel, FeedStopsAtEachMessage) {
  Bytes s = frame(f_len(1, "one")) + frame(f_len(1, "two"));
  GrpcModelDecoder d;
  auto in = bytes(s);
  auto r = d.feed(in);
  EXPECT_TRUE(r.message_done);
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(d.message().model.view(), "one");
  in = in.subspan(r.consumed);
  r = d.feed(in);
  EXPECT_TRUE(r.message_done);
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(d.message().model.view(), "two");
  EXPECT_EQ(d.finish(), GrpcError::none);
  EXPECT_EQ(d.messages(), 2u);
}

TEST(GrpcModel, DuplicateLastWins) {
  Bytes m = f_len(1, "first") + f_len(3, "id") + f_len(1, "second");
  Decoded r = run_all_splits(frame(m));
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(r.msgs[0], model_msg("second", static_cast<uint32_t>(m.size()), true));
  // An empty model_name is explicit and complete.
  r = run_all_splits(frame(f_len(1, "")));
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_TRUE(r.msgs[0].has_model);
  EXPECT_EQ(r.msgs[0].model, "");
}

TEST(GrpcModel, LongNameTruncatedAndBigTensorSkipped) {
  Bytes m = f_len(1, Bytes(1000, 'n')) + f_len(7, Bytes(1 << 20, 'x'));
  Decoded r = run_chunks(frame(m), {3, 500, 4000, 70000});
  EXPECT_EQ(r.err, GrpcError::none);
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(r.msgs[0].model, Bytes(kMaxModelName, 'n'));
  EXPECT_TRUE(r.msgs[0].truncated);
  EXPECT_TRUE(r.msgs[0].has_model);
  // Exactly at the bound: not truncated.
  r = run_chunks(frame(f_len(1, Bytes(kMaxModelName, 'n'))), {});
  EXPECT_FALSE(r.msgs.at(0).truncated);
}

TEST(GrpcModel, PartialModelNotReported) {
  GrpcModelDecoder d;
  Bytes s = frame(f_len(1, "partial-name"));
  auto r = d.feed(bytes(std::string_view(s).substr(0, 10)));
  EXPECT_FALSE(r.message_done);
  EXPECT_FALSE(d.message().has_model);
  EXPECT_EQ(d.finish(), GrpcError::truncated);
}

struct ErrCase {
  const char* name;
  Bytes in;
  GrpcError want;
};

TEST(GrpcModel, Malformed) {
  const ErrCase cases[] = {
      {"flag 2", frame(f_len(1, "m"), 2), GrpcError::bad_flag},
      {"flag 0x80", frame("", 0x80), GrpcError::bad_flag},
      {"11-byte varint", frame(tag(2, 0) + Bytes(10, '\xff') + "\x01"), GrpcError::bad_varint},
      {"6-byte tag", frame(Bytes(5, '\x88') + "\x01"), GrpcError::bad_varint},
      {"tag > 32 bits", frame(Bytes(4, '\xff') + "\x7f" + "\x00"), GrpcError::bad_varint},
      {"field 0", frame(tag(0, 0) + "\x01"), GrpcError::bad_tag},
      {"wire type 6", frame(tag(2, 6) + "\x01"), GrpcError::bad_tag},
      {"wire type 7", frame(tag(2, 7) + "\x01"), GrpcError::bad_tag},
      {"len past message", frame(tag(1, 2) + varint(100) + "abc"), GrpcError::bad_length},
      {"huge len", frame(tag(3, 2) + varint(UINT64_MAX)), GrpcError::bad_length},
      {"i64 past message", frame(tag(2, 1) + "1234"), GrpcError::bad_length},
      {"i32 past message", frame(tag(2, 5) + "12"), GrpcError::bad_length},
      {"varint past message", frame(tag(2, 0) + "\x80") + frame(""), GrpcError::bad_length},
      {"tag then end", frame(tag(2, 0)) + frame(""), GrpcError::bad_length},
      {"len tag then end", frame(tag(1, 2)) + frame(""), GrpcError::bad_length},
      {"tag varint past message", frame("\x80") + frame(""), GrpcError::bad_length},
      {"egroup alone", frame(tag(4, 4)), GrpcError::bad_group},
      {"unclosed group", frame(tag(4, 3) + f_varint(1, 1)), GrpcError::bad_group},
      {"deep groups", frame([] {
         Bytes b;
         for (int i = 0; i < 65; ++i) b += tag(4, 3);
         return b;
       }()),
       GrpcError::bad_group},
      {"truncated header", Bytes("\x00\x00\x00", 3), GrpcError::truncated},
      {"truncated body", frame(f_len(1, "model")).substr(0, 9), GrpcError::truncated},
      {"truncated compressed", frame("abcdef", 1).substr(0, 8), GrpcError::truncated},
  };
  for (const ErrCase& c : cases) {
    Decoded r = run_all_splits(c.in);
    EXPECT_EQ(r.err, c.want) << c.name << ": " << r;
  }
  // Sticky: later valid input is dropped, and reported consumed.
  GrpcModelDecoder d;
  Bytes bad = frame("", 7);
  d.feed(bytes(bad));
  EXPECT_TRUE(d.failed());
  Bytes good = frame(f_len(1, "m"));
  auto r = d.feed(bytes(good));
  EXPECT_EQ(r.consumed, good.size());
  EXPECT_FALSE(r.message_done);
  EXPECT_EQ(d.error(), GrpcError::bad_flag);
  EXPECT_STREQ(grpc_error_name(d.error()), "bad_flag");
  d.reset();
  EXPECT_FALSE(d.failed());
}

TEST(GrpcModel, MutationsNeverCrash) {
  const Bytes first = frame(f_len(1, "resnet50") + infer_body_fields(40));
  const Bytes seed =
      first + frame(infer_body_fields(8) + f_group(20, f_varint(1, 3)) + f_len(1, "m2"));
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes b = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[pos] = static_cast<char>(b[pos] ^ (1 << (rng() % 8)));
          break;
        case 1:
          b[pos] = static_cast<char>(rng());
          break;
        case 2:
          b.erase(pos, 1);
          break;
      }
    }
    Decoded whole = run_chunks(b, {});
    EXPECT_EQ(run_chunks(b, {rng() % (b.size() + 1)}), whole);
    for (const Msg& m : whole.msgs) EXPECT_LE(m.model.size(), kMaxModelName);
  }
  for (size_t n = 0; n < seed.size(); ++n) {
    Decoded r = run_chunks(std::string_view(seed).substr(0, n), {});
    // Cut at a message boundary is a valid (shorter) stream.
    EXPECT_EQ(r.err == GrpcError::none, n == 0 || n == first.size()) << n;
  }
}

TEST(GrpcModel, Size) {
  std::printf("sizeof(GrpcModelDecoder)=%zu\n", sizeof(GrpcModelDecoder));
  EXPECT_LE(sizeof(GrpcModelDecoder), 320u);
}

}  // namespace
}  // namespace aiqos
