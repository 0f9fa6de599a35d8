#include "control/tenant_salt.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aiqos {
namespace {
std::string sys_err(const std::string& what, const std::string& path) {
  return "--tenant-salt-file " + path + ": " + what + ": " + std::strerror(errno);
}

bool create_salt(const std::string& path, CredentialSalt& out, std::string& err) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = sys_err("cannot create", path);
    return false;
  }
  randombytes_buf(out.bytes.data(), kTenantSaltCreateBytes);
  out.len = kTenantSaltCreateBytes;
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, out.bytes.data(), out.len) == static_cast<ssize_t>(out.len) && ::fsync(fd) == 0;
  if (!ok) err = sys_err("cannot write", path);
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    sodium_memzero(out.bytes.data(), out.bytes.size());
    out.len = 0;
  }
  return ok;
}
}  // namespace

bool load_tenant_salt(const std::string& path, CredentialSalt& out, bool& created, std::string& err) {
  created = false;
  out = CredentialSalt{};
  if (sodium_init() < 0) {
    err = "libsodium cannot be initialised";
    return false;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    created = create_salt(path, out, err);
    return created;
  }
  if (fd < 0) {
    err = sys_err("cannot open", path);
    return false;
  }
  struct stat st{};
  std::string why;
  if (::fstat(fd, &st) != 0) {
    why = std::string("cannot stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    why = "group or others may access it (chmod 600)";
  } else if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    why = "owned by another user";
  } else {
    uint8_t buf[kCredentialSaltMax + 1];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < static_cast<ssize_t>(kCredentialSaltMin) || n > static_cast<ssize_t>(kCredentialSaltMax)) {
      why = "must hold " + std::to_string(kCredentialSaltMin) + " to " + std::to_string(kCredentialSaltMax) +
            " bytes (delete it to have a new one made)";
    } else {
      std::memcpy(out.bytes.data(), buf, static_cast<size_t>(n));
      out.len = static_cast<uint8_t>(n);
    }
    sodium_memzero(buf, sizeof buf);
  }
  ::close(fd);
  if (!why.empty()) {
    err = "--tenant-salt-file " + path + ": " + why;
    return false;
  }
  return true;
}

}  // namespace aiqos
