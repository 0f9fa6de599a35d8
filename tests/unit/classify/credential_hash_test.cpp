#include "classify/credential_hash.h"

#include <gtest/gtest.h>

namespace aiqos {
namespace {

CredentialSalt salt(size_t n) {
  CredentialSalt s;
  for (size_t i = 0; i < n; ++i) s.bytes[i] = static_cast<uint8_t>(i);
  s.len = static_cast<uint8_t>(n);
  return s;
}

TEST(CredentialHash, TokenAfterBearer) {
  EXPECT_EQ(credential_token("Bearer sk-abc"), "sk-abc");
  EXPECT_EQ(credential_token("  bearer \t sk-abc  "), "sk-abc");
  EXPECT_EQ(credential_token("BEARER sk-abc"), "sk-abc");
  EXPECT_EQ(credential_token("Basic dXNlcjpw"), "Basic dXNlcjpw");
  EXPECT_EQ(credential_token("Bearersk-abc"), "Bearersk-abc");  // no blank: not the scheme
  EXPECT_EQ(credential_token(" sk-abc "), "sk-abc");
  EXPECT_EQ(credential_token("Bearer "), "Bearer");  // a scheme with no token is the whole value
}

// The vector is Python's hashlib.blake2b(b"sk-live-SECRET-4f9a1c", key=bytes(range(32)),
// digest_size=8): what the pcap secrets test recomputes from the salt file.
TEST(CredentialHash, KeyedBlake2bShownAsKeyAndHex) {
  BoundedString<64> out;
  hash_credential(salt(32), "Bearer sk-live-SECRET-4f9a1c", out);
  EXPECT_EQ(out.view(), "key:ba1b77c5bf7153a7");
  // The same key in x-api-key (no scheme) is the same tenant.
  BoundedString<64> out2;
  hash_credential(salt(32), "sk-live-SECRET-4f9a1c", out2);
  EXPECT_EQ(out2.view(), out.view());
  // Another salt, another tenant.
  hash_credential(salt(16), "sk-live-SECRET-4f9a1c", out2);
  EXPECT_EQ(out2.view(), "key:ee06ae1111df6e7b");
}

TEST(CredentialHash, NothingWithoutTokenOrSalt) {
  BoundedString<64> out;
  out.append("stale");
  hash_credential(salt(32), "  ", out);
  EXPECT_TRUE(out.empty());
  hash_credential(CredentialSalt{}, "sk-abc", out);
  EXPECT_TRUE(out.empty());
  hash_credential(salt(15), "sk-abc", out);  // below crypto_generichash_KEYBYTES_MIN
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace aiqos
