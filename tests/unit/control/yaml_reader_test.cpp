#include "control/yaml_reader.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aiqos::yaml {
namespace {

// A reader over one document, and its root as a field.
struct Doc {
  Reader r{"r.yaml"};
  Field root;

  explicit Doc(std::string_view text) {
    auto n = r.parse(text);
    EXPECT_TRUE(n.has_value()) << text;
    root = Field{n.value_or(YAML::Node()), pos_of(n.value_or(YAML::Node())), ""};
  }
  // The value of key `k` of the root mapping (which must be there).
  Field at(std::string_view k) {
    auto m = r.map(root, {"a", "b", "c", "list", "n"});
    EXPECT_TRUE(m && m->get(k)) << k;
    return m && m->get(k) ? *m->get(k) : root;
  }
  // Formatted errors, in file order; none left in the reader.
  std::vector<std::string> errors() {
    std::vector<std::string> out;
    for (const auto& e : r.take_errors()) out.push_back(e.format());
    return out;
  }
};

using Strings = std::vector<std::string>;

TEST(YamlReader, EditDistanceAndSuggestions) {
  EXPECT_EQ(edit_distance("rat", "rate"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
  static constexpr std::string_view kNames[] = {"priority", "rate", "burst"};
  EXPECT_EQ(did_you_mean("prority", kNames), "; did you mean 'priority'?");
  EXPECT_EQ(did_you_mean("rate", kNames), "") << "an exact match is no typo";
  EXPECT_EQ(did_you_mean("colour", kNames), "") << "too far from every name";
  EXPECT_EQ(one_of(kNames), "priority, rate or burst");
  EXPECT_EQ(one_of(std::span(kNames, 1)), "priority");
}

TEST(YamlReader, Describe) {
  EXPECT_EQ(describe(YAML::Load("x")), "'x'");
  EXPECT_EQ(describe(YAML::Load("[1]")), "a list");
  EXPECT_EQ(describe(YAML::Load("{a: 1}")), "a mapping");
  EXPECT_EQ(describe(YAML::Node()), "nothing");
  EXPECT_EQ(describe(YAML::Load(std::string(60, 'y'))), "'" + std::string(45, 'y') + "...'");
}

TEST(YamlReader, UnknownAndDuplicateKeysAtTheKey) {
  Doc d("a: 1\nrte: 2\nb: 3\na: 4\n");
  auto m = d.r.map(d.root, {"a", "b", "rate"});
  ASSERT_TRUE(m);
  ASSERT_EQ(m->entries.size(), 2u);
  EXPECT_EQ(m->entries[0].key, "a");
  EXPECT_EQ(m->get("a")->node.Scalar(), "1") << "the first of two keys counts";
  EXPECT_EQ(m->get("b")->pos.line, 3);
  EXPECT_EQ(m->get("b")->pos.col, 4);
  EXPECT_FALSE(m->get("rate"));
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:2:1: rte: unknown key 'rte'; did you mean 'rate'?",
                                 "r.yaml:4:1: a: duplicate key 'a' (first at line 1)"}));
}

TEST(YamlReader, NestedPathsAndMissingKeys) {
  Doc d("a:\n  b:\n    zzzz: 1\n");
  auto top = d.r.map(d.root, {"a"});
  auto a = d.r.map(*top->get("a"), {"b"});
  auto b = d.r.map(*a->get("b"), {"c"});
  ASSERT_TRUE(b);
  d.r.missing(*b, "c");
  // Same place: in the order they were found.
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:3:5: a.b.zzzz: unknown key 'zzzz'", "r.yaml:3:5: a.b: missing required key 'c'"}));
}

TEST(YamlReader, NullIsAnEmptyMappingAndPointsAtItsKey) {
  Doc d("a:\nb: [1]\n");
  auto a = d.r.map(d.at("a"), {"x"});
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->entries.empty());
  EXPECT_EQ(a->self.pos.line, 1) << "a null value is placed at its key, not on the next token";
  EXPECT_FALSE(d.r.map(d.at("b"), {"x", "y"}));
  EXPECT_EQ(d.errors(), Strings{"r.yaml:2:4: b: expected a mapping of x or y, got a list"});
}

TEST(YamlReader, WrongTypes) {
  Doc d("a: [1, 2]\nb: {k: v}\nc: ''\nn: 12\n");
  EXPECT_FALSE(d.r.str(d.at("a"), "a name"));
  EXPECT_FALSE(d.r.integer(d.at("b"), 0, 9, "a count"));
  EXPECT_FALSE(d.r.str(d.at("c"), "a name"));
  EXPECT_FALSE(d.r.list(d.at("n"), "things"));
  EXPECT_FALSE(d.r.number(d.at("a"), 0, 1, "a share"));
  EXPECT_TRUE(d.r.failed());
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:1:4: a: expected a name, got a list",
                                 "r.yaml:1:4: a: expected a share, got a list",
                                 "r.yaml:2:4: b: expected a count 0..9, got a mapping",
                                 "r.yaml:3:4: c: expected a name, got an empty string",
                                 "r.yaml:4:4: n: expected a list of things, got '12'"}));
  EXPECT_FALSE(d.r.failed()) << "take_errors() leaves none behind";
}

TEST(YamlReader, IntegerRanges) {
  struct Case {
    const char* text;
    std::optional<uint64_t> want;
    const char* error;
  };
  const Case cases[] = {
      {"0", 0, nullptr},
      {"7", 7, nullptr},
      {"8", std::nullopt, "expected a priority 0..7, got 8"},
      {"-1", std::nullopt, "expected a priority 0..7, got '-1'"},
      {"0x7", std::nullopt, "expected a priority 0..7, got '0x7'"},
      {"3.0", std::nullopt, "expected a priority 0..7, got '3.0'"},
      {"99999999999999999999", std::nullopt, "expected a priority 0..7, got '99999999999999999999'"},
  };
  for (const Case& c : cases) {
    Doc d(std::string("a: ") + c.text + "\n");
    EXPECT_EQ(d.r.integer(d.at("a"), 0, 7, "a priority"), c.want) << c.text;
    auto errs = d.errors();
    if (c.error)
      EXPECT_EQ(errs, Strings{std::string("r.yaml:1:4: a: ") + c.error});
    else
      EXPECT_TRUE(errs.empty()) << errs[0];
  }
  Doc d("a: 4094\nb: 4095\n");
  EXPECT_EQ(d.r.small<uint16_t>(d.at("a"), 1, 4094, "a VLAN ID"), std::optional<uint16_t>(4094));
  EXPECT_FALSE(d.r.small<uint16_t>(d.at("b"), 1, 4094, "a VLAN ID"));
  EXPECT_EQ(d.errors(), Strings{"r.yaml:2:4: b: expected a VLAN ID 1..4094, got 4095"});
}

TEST(YamlReader, NumbersAreOpenBelowClosedAbove) {
  Doc d("a: 1\nb: 0\nc: 0.5\nn: 1e0\n");
  EXPECT_EQ(d.r.number(d.at("a"), 0, 1, "a share"), 1.0);
  EXPECT_EQ(d.r.number(d.at("c"), 0, 1, "a share"), 0.5);
  EXPECT_FALSE(d.r.number(d.at("b"), 0, 1, "a share"));
  EXPECT_FALSE(d.r.number(d.at("n"), 0, 1, "a share")) << "plain decimals only";
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:2:4: b: expected a share, got '0'", "r.yaml:4:4: n: expected a share, got '1e0'"}));
}

TEST(YamlReader, WordsWithSuggestions) {
  static constexpr std::string_view kFew[] = {"drop", "remark", "demote"};
  static constexpr std::string_view kMany[] = {"chat", "completions", "embeddings", "models", "moderations"};
  Doc d("a: remark\nb: dorp\nc: modles\nn: [drop]\n");
  EXPECT_EQ(d.r.word(d.at("a"), kFew), std::optional<size_t>(1));
  EXPECT_FALSE(d.r.word(d.at("b"), kFew));
  EXPECT_FALSE(d.r.word(d.at("c"), kMany));
  EXPECT_FALSE(d.r.word(d.at("n"), kFew));
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:2:4: b: expected drop, remark or demote, got 'dorp'; did you mean 'drop'?",
                                 "r.yaml:3:4: c: unknown name 'modles'; did you mean 'models'?",
                                 "r.yaml:4:4: n: expected drop, remark or demote, got a list"}));
}

TEST(YamlReader, ListsAndElementPositions) {
  Doc d("list:\n  - x\n  - [y]\na: []\nb: one\nc: {k: v}\n");
  std::vector<std::string> seen;
  auto collect = [&](const Field& e) {
    if (auto s = d.r.str(e, "a word")) seen.push_back(e.path + "@" + std::to_string(e.pos.line) + ":" + *s);
  };
  d.r.list_or_one(d.at("list"), "a word", collect);
  d.r.list_or_one(d.at("b"), "a word", collect);
  d.r.list_or_one(d.at("a"), "a word", collect);
  d.r.list_or_one(d.at("c"), "a word", collect);
  EXPECT_EQ(seen, (Strings{"list[0]@2:x", "b@5:one"}));
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:3:5: list[1]: expected a word, got a list",
                                 "r.yaml:4:4: a: expected a word or a non-empty list of them, got an empty list",
                                 "r.yaml:6:4: c: expected a word or a list of them, got a mapping"}));
  Doc e("a: []\nb: [1]\n");
  EXPECT_FALSE(e.r.list(e.at("a"), "classes", true));
  EXPECT_TRUE(e.r.list(e.at("a"), "rules"));
  EXPECT_TRUE(e.r.list(e.at("b"), "classes", true));
  Field el = Reader::element(e.at("b"), 0);
  EXPECT_EQ(el.path, "b[0]");
  EXPECT_EQ(el.pos.col, 5);
  EXPECT_EQ(e.errors(), Strings{"r.yaml:1:4: a: expected a non-empty list of classes, got a list"});
}

TEST(YamlReader, FreeMapKeepsEveryKey) {
  Doc d("a: {x-one: v, X-Two: [w]}\nb: v\n");
  auto es = d.r.free_map(d.at("a"), "header names to value globs");
  ASSERT_EQ(es.size(), 2u);
  EXPECT_EQ(es[1].key, "X-Two");
  EXPECT_EQ(es[1].value.path, "a.X-Two");
  EXPECT_EQ(es[1].key_pos.col, 15);
  EXPECT_TRUE(d.r.free_map(d.at("b"), "header names to value globs").empty());
  EXPECT_EQ(d.errors(), Strings{"r.yaml:2:4: b: expected a mapping of header names to value globs, got 'v'"});
}

TEST(YamlReader, ParsedValuesAndPaths) {
  auto even = [](std::string_view s) -> std::optional<int> {
    if (s.size() == 1 && s[0] >= '0' && s[0] <= '9' && (s[0] - '0') % 2 == 0) return s[0] - '0';
    return std::nullopt;
  };
  Doc d("a: 4\nb: 5\nc: /run/x.sock\nn: run/x.sock\n");
  EXPECT_EQ(d.r.parsed(d.at("a"), even, "an even digit"), std::optional<int>(4));
  EXPECT_FALSE(d.r.parsed(d.at("b"), even, "an even digit"));
  EXPECT_EQ(d.r.absolute_path(d.at("c"), "an absolute path"), std::optional<std::string>("/run/x.sock"));
  EXPECT_FALSE(d.r.absolute_path(d.at("n"), "an absolute path"));
  EXPECT_EQ(d.errors(), (Strings{"r.yaml:2:4: b: expected an even digit, got '5'",
                                 "r.yaml:4:4: n: expected an absolute path, got 'run/x.sock'"}));
}

TEST(YamlReader, ErrorsComeInFileOrder) {
  Reader r("o.yaml");
  r.error(Pos{3, 1}, "c", "third");
  r.error(Pos{1, 9}, "a", "second");
  r.error(Pos{1, 2}, "", "first");
  r.error(Pos{3, 1}, "c", "fourth (same place, recorded later)");
  auto es = r.take_errors();
  ASSERT_EQ(es.size(), 4u);
  EXPECT_EQ(es[0].message, "first");
  EXPECT_EQ(es[1].message, "second");
  EXPECT_EQ(es[2].message, "third");
  EXPECT_EQ(es[3].message, "fourth (same place, recorded later)");
  EXPECT_EQ(es[0].format(), "o.yaml:1:2: first");
  ConfigError unplaced{"o.yaml", 0, 0, "", "cannot open: No such file or directory"};
  EXPECT_EQ(unplaced.format(), "o.yaml: cannot open: No such file or directory");
}

TEST(YamlReader, DocumentErrors) {
  struct Case {
    const char* text;
    const char* error;  // nullptr: parses
  };
  const Case cases[] = {
      {"", nullptr},
      {"a: 1\n", nullptr},
      {"a: [1\n", "r.yaml:2:1: YAML syntax error: end of sequence flow not found"},
      {"a: 1\n---\nb: 2\n", "r.yaml:3:1: expected one YAML document, found 2"},
      // yaml-cpp 0.7 would loop for ever in LoadAll on this (jbeder/yaml-cpp#1040).
      {",\n", "r.yaml:1:1: YAML syntax error: unexpected ','"},
      {"a: 1\n,\n", "r.yaml:2:1: YAML syntax error: end of map not found"},
  };
  for (const Case& c : cases) {
    Reader r("r.yaml");
    auto n = r.parse(c.text);
    auto es = r.take_errors();
    if (!c.error) {
      EXPECT_TRUE(n.has_value()) << c.text;
      EXPECT_TRUE(es.empty()) << es[0].format();
      continue;
    }
    EXPECT_FALSE(n.has_value()) << c.text;
    ASSERT_EQ(es.size(), 1u) << c.text;
    EXPECT_EQ(es[0].format(), c.error);
  }
  Reader r("r.yaml");
  EXPECT_TRUE(r.parse("")->IsNull()) << "an empty text is one null document";
}

}  // namespace
}  // namespace aiqos::yaml
