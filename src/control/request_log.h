// The request log: one JSON object per line per request, written by the
// control plane from records the workers hand over. See docs/request-log.md.
#pragma once

#include <cstdio>
#include <string>

#include "classify/request_record.h"

namespace aiqos {

// Renders one record as a single-line JSON object (no trailing newline).
// `class_name` is the policy's name for record.class_id.
std::string request_json(const RequestRecord& r, const std::string& class_name);

class RequestLog {
 public:
  RequestLog() = default;
  ~RequestLog();
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  // Opens (appends to) `path`; false with errno set on failure.
  bool open(const std::string& path);
  // Closes and reopens the same path: log rotation after a rename.
  bool reopen();
  bool is_open() const noexcept { return f_ != nullptr; }
  void write(const RequestRecord& r, const std::string& class_name);
  void flush();
  uint64_t written() const noexcept { return written_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t written_ = 0;
};

}  // namespace aiqos
