// Loads a Policy from YAML (the schema is docs/policy.md) and validates all
// of it in one pass: every error is collected with the file, the 1-based
// line and column of the offending value (of the key, for unknown keys), and
// the field path, so that an operator fixes a file in one round.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config_error.h"
#include "control/policy.h"

namespace aiqos {

// An error in a policy file: where it is and what is wrong (control/config_error.h).
using PolicyError = ConfigError;

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

}  // namespace aiqos
