// The salt of credential tenants (--tenant-salt-file): the key of the hash
// that replaces a credential header's value (classify/credential_hash.h).
//
// The file holds 16 to 64 raw bytes, all of which are the key. If it does not
// exist it is created (O_EXCL, mode 0600) with 32 random bytes from libsodium,
// so the first start makes it and every later start and reload hashes the
// same keys to the same tenants. An existing file must be a regular file
// (not a symlink) owned by the daemon's user or root, with no group or other
// permission bits. The salt is never logged or shown.
#pragma once

#include <string>
#include <string_view>

#include "classify/credential_hash.h"

namespace aiqos {

inline constexpr size_t kTenantSaltCreateBytes = 32;

// Reads (or creates) `path` into `out`. False with a reason for the operator
// in `err`; `created` says whether the file was made now.
bool load_tenant_salt(const std::string& path, CredentialSalt& out, bool& created, std::string& err);

}  // namespace aiqos
