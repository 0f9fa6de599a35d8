// A YAML field reader for configuration files: typed access to the values
// of a yaml-cpp document that never stops at the first problem. Each check
// that fails records a ConfigError at the offending node's file:line:column
// with its field path ("classes[1].rate") and returns nothing, and the
// caller goes on with the next key; take_errors() hands them all over in
// file order. Unknown keys (with a "did you mean" for typos) and duplicate
// keys are found where a mapping is opened.
//
// What a schema means (units, names, cross references) stays with the
// schema: control/policy_yaml.cpp reads the policy with it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/config_error.h"

namespace aiqos {

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

namespace yaml {

// "; did you mean 'rate'?" when `word` is close enough to one candidate to
// be a typo of it; empty otherwise (and for an exact match).
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);
// "a, b or c".
std::string one_of(std::span<const std::string_view> names);
// A value as an error names it: 'text' (cut at 48 characters), a list, a
// mapping, nothing.
std::string describe(const YAML::Node& n);

struct Pos {
  int line = 1, col = 1;  // 1-based
};

// Where the node starts; `fallback` when it has no mark.
Pos pos_of(const YAML::Node& n, Pos fallback = {});

// A node with where it is and how to name it in errors.
struct Field {
  YAML::Node node;
  Pos pos;
  std::string path;
};

// One key of a mapping and its value.
struct Entry {
  std::string key;
  Pos key_pos;
  Field value;
};

// The checked keys of a mapping, in file order.
struct MapView {
  std::vector<Entry> entries;
  Field self;

  const Entry* find(std::string_view key) const;
  std::optional<Field> get(std::string_view key) const;
};

// dst = *v when v holds a value.
template <typename T, typename U>
void set(T& dst, const std::optional<U>& v) {
  if (v) dst = static_cast<T>(*v);
}

class Reader {
 public:
  // `file` names the document in errors.
  explicit Reader(std::string file) : file_(std::move(file)) {}

  // The one document in `text`; nothing, with the error recorded, on a
  // syntax error or a second document. An empty text is one null document.
  std::optional<YAML::Node> parse(std::string_view text);

  void error(Pos p, std::string path, std::string msg);
  void error(const Field& f, std::string msg) { error(f.pos, f.path, std::move(msg)); }
  bool failed() const noexcept { return !errors_.empty(); }
  // The errors so far, sorted by line and column (the order of recording
  // among errors at the same place), and none left here.
  std::vector<ConfigError> take_errors();

  // ---- structure

  // A mapping whose keys must be among `allowed`: unknown and duplicate keys
  // are reported (at the key) and left out. A null value counts as an empty
  // mapping ("limits:" with nothing under it); anything else is an error and
  // gives nothing.
  std::optional<MapView> map(const Field& f, std::initializer_list<std::string_view> allowed);
  // A mapping whose keys are free ("header names to value globs" says `what`).
  std::vector<Entry> free_map(const Field& f, std::string_view what);
  // "missing required key '<key>'" at the mapping.
  void missing(const MapView& m, std::string_view key);

  // True if `f` is a list ("of <what>"), and a non-empty one if `non_empty`;
  // otherwise records "expected a [non-empty ]list of <what>, got ...".
  bool list(const Field& f, std::string_view what, bool non_empty = false);
  // Element i of a list, with its position and path ("rules[3]").
  static Field element(const Field& list, size_t i);
  // Calls fn on each element of a list, or on the value itself when it is a
  // single scalar. Empty lists are an error: in a condition they would never
  // match.
  template <typename Fn>
  void list_or_one(const Field& f, std::string_view what, Fn&& fn) {
    if (f.node.IsSequence() && f.node.size() > 0) {
      for (size_t i = 0; i < f.node.size(); ++i) fn(element(f, i));
    } else if (f.node.IsScalar()) {
      fn(f);
    } else {
      list_or_one_error(f, what);
    }
  }

  // ---- scalars

  // A non-empty scalar ("expected <what>, got ...").
  std::optional<std::string> str(const Field& f, std::string_view what);
  // A decimal integer lo..hi ("expected <what> lo..hi, got ...").
  std::optional<uint64_t> integer(const Field& f, uint64_t lo, uint64_t hi, std::string_view what);
  template <typename T>
  std::optional<T> small(const Field& f, uint64_t lo, uint64_t hi, std::string_view what) {
    auto v = integer(f, lo, hi, what);
    return v ? std::optional<T>(static_cast<T>(*v)) : std::nullopt;
  }
  // A plain decimal number (digits and one '.'), lo < v <= hi.
  std::optional<double> number(const Field& f, double lo, double hi, std::string_view what);
  // One of a fixed set of words: its index. A likely typo gets a suggestion.
  std::optional<size_t> word(const Field& f, std::span<const std::string_view> names);
  // A non-empty string starting with '/'.
  std::optional<std::string> absolute_path(const Field& f, std::string_view what);
  // A scalar that `parse` (string_view -> std::optional<T>) accepts, such as
  // a size with its unit; "expected <what>, got ..." when it does not.
  template <typename Parse>
  auto parsed(const Field& f, Parse&& parse, std::string_view what) -> decltype(parse(std::string_view{})) {
    decltype(parse(std::string_view{})) v;
    if (f.node.IsScalar()) v = parse(f.node.Scalar());
    if (!v) expected(f, what);
    return v;
  }

  // Records "expected <what>, got <describe(f.node)>".
  void expected(const Field& f, std::string_view what);

 protected:
  const std::string& file() const noexcept { return file_; }

 private:
  void list_or_one_error(const Field& f, std::string_view what);

  std::string file_;
  std::vector<ConfigError> errors_;
};

}  // namespace yaml
}  // namespace aiqos
