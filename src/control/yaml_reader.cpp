#include "control/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <tuple>

namespace aiqos {

std::string ConfigError::format() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!field_path.empty()) s += field_path + ": ";
  s += message;
  return s;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace yaml {

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  size_t best = SIZE_MAX;
  std::string_view pick;
  for (auto c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best) {
      best = d;
      pick = c;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  if (best == 0 || best > limit) return {};
  return "; did you mean '" + std::string(pick) + "'?";
}

std::string one_of(std::span<const std::string_view> names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += i + 1 == names.size() ? " or " : ", ";
    s += names[i];
  }
  return s;
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (s.size() > 48) s = s.substr(0, 45) + "...";
      return "'" + s + "'";
    }
    default: return "nothing";
  }
}

Pos pos_of(const YAML::Node& n, Pos fallback) {
  if (!n.IsDefined()) return fallback;
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return fallback;
  return {m.line + 1, m.column + 1};
}

const Entry* MapView::find(std::string_view key) const {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

std::optional<Field> MapView::get(std::string_view key) const {
  const Entry* e = find(key);
  return e ? std::optional<Field>(e->value) : std::nullopt;
}

namespace {

std::string join_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

// A key and its value, positioned. A null value has no useful mark of its
// own (yaml-cpp puts it on the next token); it points at its key instead.
Entry entry_of(const YAML::const_iterator& it, const Field& map) {
  Pos kp = pos_of(it->first, map.pos);
  std::string key = it->first.IsScalar() ? it->first.Scalar() : describe(it->first);
  Pos vp = it->second.IsNull() ? kp : pos_of(it->second, kp);
  std::string path = join_path(map.path, key);
  return {std::move(key), kp, Field{it->second, vp, std::move(path)}};
}

// yaml-cpp 0.7 (Debian 12) loops for ever in LoadAll, allocating a null
// document a turn, on a token that no rule consumes, such as a ',' outside a
// flow collection (jbeder/yaml-cpp#1040, fixed upstream by #1319; found by
// policy_yaml_fuzz). A first pass with the parser alone and a handler that
// only notes where each document starts finds a document that starts where
// the one before it did: the parser made no progress there.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& m) override { marks.push_back(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Throws YAML::ParserException where the parser stops making progress.
void check_progress(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts h;
  while (parser.HandleNextDocument(h)) {
    size_t n = h.marks.size();
    if (n < 2 || h.marks[n - 1].pos != h.marks[n - 2].pos) continue;
    const YAML::Mark& m = h.marks[n - 1];
    unsigned char c = m.pos >= 0 && static_cast<size_t>(m.pos) < text.size() ? text[m.pos] : 0;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", c);
    throw YAML::ParserException(m, std::string("unexpected ") +
                                       (c > 0x20 && c < 0x7f ? "'" + std::string(1, c) + "'" : hex));
  }
}

}  // namespace

std::optional<YAML::Node> Reader::parse(std::string_view text) {
  std::vector<YAML::Node> docs;
  try {
    std::string s(text);
    check_progress(s);  // before LoadAll, which would not return
    docs = YAML::LoadAll(s);
  } catch (const YAML::Exception& e) {
    Pos p = e.mark.is_null() ? Pos{} : Pos{e.mark.line + 1, e.mark.column + 1};
    error(p, "", "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
  if (docs.size() > 1) {
    error(pos_of(docs[1]), "", "expected one YAML document, found " + std::to_string(docs.size()));
    return std::nullopt;
  }
  return docs.empty() ? YAML::Node() : docs[0];
}

void Reader::error(Pos p, std::string path, std::string msg) {
  errors_.push_back({file_, p.line, p.col, std::move(path), std::move(msg)});
}

void Reader::expected(const Field& f, std::string_view what) {
  error(f, "expected " + std::string(what) + ", got " + describe(f.node));
}

std::vector<ConfigError> Reader::take_errors() {
  std::vector<ConfigError> out = std::move(errors_);
  errors_.clear();
  std::stable_sort(out.begin(), out.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return out;
}

std::optional<MapView> Reader::map(const Field& f, std::initializer_list<std::string_view> allowed) {
  MapView v{{}, f};
  if (f.node.IsNull()) return v;
  std::span<const std::string_view> names{allowed.begin(), allowed.size()};
  if (!f.node.IsMap()) {
    expected(f, "a mapping of " + one_of(names));
    return std::nullopt;
  }
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    Entry e = entry_of(it, f);
    if (std::find(names.begin(), names.end(), e.key) == names.end()) {
      error(e.key_pos, e.value.path, "unknown key '" + e.key + "'" + did_you_mean(e.key, names));
      continue;
    }
    if (const Entry* first = v.find(e.key)) {
      error(e.key_pos, e.value.path,
            "duplicate key '" + e.key + "' (first at line " + std::to_string(first->key_pos.line) + ")");
      continue;
    }
    v.entries.push_back(std::move(e));
  }
  return v;
}

std::vector<Entry> Reader::free_map(const Field& f, std::string_view what) {
  std::vector<Entry> out;
  if (!f.node.IsMap()) {
    expected(f, "a mapping of " + std::string(what));
    return out;
  }
  for (auto it = f.node.begin(); it != f.node.end(); ++it) out.push_back(entry_of(it, f));
  return out;
}

void Reader::missing(const MapView& m, std::string_view key) {
  error(m.self.pos, m.self.path, "missing required key '" + std::string(key) + "'");
}

bool Reader::list(const Field& f, std::string_view what, bool non_empty) {
  if (f.node.IsSequence() && (!non_empty || f.node.size() > 0)) return true;
  expected(f, std::string(non_empty ? "a non-empty list of " : "a list of ") + std::string(what));
  return false;
}

Field Reader::element(const Field& list, size_t i) {
  YAML::Node e = list.node[i];
  return Field{e, pos_of(e, list.pos), list.path + "[" + std::to_string(i) + "]"};
}

void Reader::list_or_one_error(const Field& f, std::string_view what) {
  if (f.node.IsSequence())
    error(f, "expected " + std::string(what) + " or a non-empty list of them, got an empty list");
  else
    expected(f, std::string(what) + " or a list of them");
}

std::optional<std::string> Reader::str(const Field& f, std::string_view what) {
  if (f.node.IsScalar() && !f.node.Scalar().empty()) return f.node.Scalar();
  if (f.node.IsScalar())
    error(f, "expected " + std::string(what) + ", got an empty string");
  else
    expected(f, what);
  return std::nullopt;
}

std::optional<uint64_t> Reader::integer(const Field& f, uint64_t lo, uint64_t hi, std::string_view what) {
  std::string range = std::string(what) + " " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!f.node.IsScalar()) {
    expected(f, range);
    return std::nullopt;
  }
  const std::string& s = f.node.Scalar();
  bool digits = !s.empty() && s.size() <= 19 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    expected(f, range);
    return std::nullopt;
  }
  uint64_t v = std::stoull(s);
  if (v < lo || v > hi) {
    error(f, "expected " + range + ", got " + s);
    return std::nullopt;
  }
  return v;
}

std::optional<double> Reader::number(const Field& f, double lo, double hi, std::string_view what) {
  if (f.node.IsScalar()) {
    const std::string& s = f.node.Scalar();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
      return std::isdigit(static_cast<unsigned char>(ch)) || ch == '.';
    });
    if (plain && end && *end == '\0' && d > lo && d <= hi) return d;
  }
  expected(f, what);
  return std::nullopt;
}

std::optional<size_t> Reader::word(const Field& f, std::span<const std::string_view> names) {
  if (!f.node.IsScalar()) {
    expected(f, one_of(names));
    return std::nullopt;
  }
  const std::string& s = f.node.Scalar();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return i;
  // With a likely typo, the suggestion says more than a long list.
  std::string hint = did_you_mean(s, names);
  if (!hint.empty() && names.size() > 4)
    error(f, "unknown name " + describe(f.node) + hint);
  else
    error(f, "expected " + one_of(names) + ", got " + describe(f.node) + hint);
  return std::nullopt;
}

std::optional<std::string> Reader::absolute_path(const Field& f, std::string_view what) {
  auto s = str(f, what);
  if (s && (*s)[0] != '/') {
    expected(f, what);
    return std::nullopt;
  }
  return s;
}

}  // namespace yaml
}  // namespace aiqos
