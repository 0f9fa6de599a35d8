// Loads a Policy from YAML (the schema is docs/policy.md) and validates all
// of it in one pass: every error is collected with the file, the 1-based
// line and column of the offending value (of the key, for unknown keys), and
// the field path, so that an operator fixes a file in one round.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/policy.h"

namespace aiqos {

struct PolicyError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error has no position (unreadable file)
  int column = 0;  // 1-based
  std::string field_path;  // "classes[1].rate"; empty for document-level errors
  std::string message;     // what was expected, and what was found

  // "file:line:col: classes[1].rate: expected a rate like 20Mbit or 'unlimited', got '20 parsecs'"
  // The position is left out when line is 0, the path when it is empty.
  std::string format() const;
};

struct LoadResult {
  std::optional<Policy> policy;  // set iff errors is empty
  std::vector<PolicyError> errors;  // in file order (sorted by line, column)

  bool ok() const noexcept { return policy.has_value(); }
  // All errors formatted, one a line.
  std::string format_errors() const;
};

LoadResult load_policy_file(const std::string& path);
// `name` stands for the file name in errors ("<string>" if empty).
LoadResult load_policy_string(std::string_view text, std::string_view name = "<string>");

// Levenshtein distance, for "did you mean" suggestions (exposed for tests).
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace aiqos
