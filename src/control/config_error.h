// One problem in a configuration file, where it is: the file, the 1-based
// line and column of the offending value (of the key, for unknown keys) and
// the field path. Readers collect all of them so that an operator fixes a
// file in one round (control/yaml_reader.h).
#pragma once

#include <string>

namespace aiqos {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error has no position (unreadable file)
  int column = 0;  // 1-based
  std::string field_path;  // "classes[1].rate"; empty for document-level errors
  std::string message;     // what was expected, and what was found

  // "file:line:col: classes[1].rate: expected a rate like 20Mbit or 'unlimited', got '20 parsecs'"
  // The position is left out when line is 0, the path when it is empty.
  std::string format() const;
};

}  // namespace aiqos
