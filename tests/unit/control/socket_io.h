// Test helper: what a connected stream socket delivers until the peer closes.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace aiqos::test {

// Reads `fd` to EOF (or an error) and closes it.
inline std::string read_to_eof(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

}  // namespace aiqos::test
