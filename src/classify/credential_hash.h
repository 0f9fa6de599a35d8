// Tenants derived from credentials. A credential header's value
// (Authorization, x-api-key, ...) is never kept: when a request's headers are
// captured, the classifier replaces it with "key:" + 16 hex digits of a keyed
// BLAKE2b (libsodium crypto_generichash, 8-byte digest) of the credential,
// keyed with the operator's salt (--tenant-salt-file). The same key under the
// same salt gives the same tenant across restarts and reloads; without the
// salt the hash cannot be recomputed from a guessed key.
//
// Per request, not per packet; no allocation, no syscall.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "classify/model_name.h"

namespace aiqos {

inline constexpr size_t kCredentialSaltMin = 16;  // crypto_generichash_KEYBYTES_MIN
inline constexpr size_t kCredentialSaltMax = 64;  // crypto_generichash_KEYBYTES_MAX
inline constexpr size_t kCredentialHashBytes = 8;  // shown as 16 hex digits
inline constexpr std::string_view kCredentialTenantPrefix = "key:";

struct CredentialSalt {
  std::array<uint8_t, kCredentialSaltMax> bytes{};
  uint8_t len = 0;  // 0: no salt (credentials cannot name tenants)
};

// The credential in a header value: the token after "Bearer " (scheme matched
// case-insensitively, surrounding blanks trimmed), else the whole value trimmed.
std::string_view credential_token(std::string_view value) noexcept;

// out = "key:" + hex(BLAKE2b-64(key = salt, credential_token(value))); left
// empty when the token is empty or there is no salt.
void hash_credential(const CredentialSalt& salt, std::string_view value, BoundedString<64>& out) noexcept;

}  // namespace aiqos
