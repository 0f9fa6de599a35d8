#include "classify/credential_hash.h"

#include <sodium.h>

namespace aiqos {
namespace {
bool blank(char c) noexcept { return c == ' ' || c == '\t'; }
std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}
}  // namespace

std::string_view credential_token(std::string_view value) noexcept {
  value = trim(value);
  constexpr std::string_view kBearer = "bearer";
  if (value.size() > kBearer.size() && blank(value[kBearer.size()])) {
    bool match = true;
    for (size_t i = 0; i < kBearer.size() && match; ++i) {
      char c = value[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      match = c == kBearer[i];
    }
    if (match) return trim(value.substr(kBearer.size()));
  }
  return value;
}

void hash_credential(const CredentialSalt& salt, std::string_view value, BoundedString<64>& out) noexcept {
  out.clear();
  std::string_view tok = credential_token(value);
  if (tok.empty() || salt.len < kCredentialSaltMin) return;
  unsigned char h[kCredentialHashBytes];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(tok.data()), tok.size(), salt.bytes.data(),
                     salt.len);
  static constexpr char kHex[] = "0123456789abcdef";
  out.append(kCredentialTenantPrefix);
  for (unsigned char b : h) {
    out.push(kHex[b >> 4]);
    out.push(kHex[b & 15]);
  }
  sodium_memzero(h, sizeof h);
}

}  // namespace aiqos
