#include "control/tenant_salt.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace aiqos {
namespace {

class TenantSalt : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aiqos-salt-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  void write(const std::string& p, const std::string& bytes, mode_t mode) {
    std::ofstream(p, std::ios::binary) << bytes;
    ASSERT_EQ(chmod(p.c_str(), mode), 0);
  }
  std::string dir_;
};

TEST_F(TenantSalt, CreatedOnceWithModeSixHundredThenReadBack) {
  std::string p = dir_ + "/salt";
  CredentialSalt a, b;
  bool created = false;
  std::string err;
  ASSERT_TRUE(load_tenant_salt(p, a, created, err)) << err;
  EXPECT_TRUE(created);
  EXPECT_EQ(a.len, kTenantSaltCreateBytes);
  struct stat st{};
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(kTenantSaltCreateBytes));
  ASSERT_TRUE(load_tenant_salt(p, b, created, err)) << err;
  EXPECT_FALSE(created);
  ASSERT_EQ(b.len, a.len);
  EXPECT_EQ(a.bytes, b.bytes);
  // Random, not a constant: two files differ.
  CredentialSalt c;
  ASSERT_TRUE(load_tenant_salt(dir_ + "/salt2", c, created, err)) << err;
  EXPECT_NE(a.bytes, c.bytes);
}

TEST_F(TenantSalt, OperatorFileUsedWhole) {
  std::string p = dir_ + "/salt";
  write(p, std::string(40, 'k'), 0600);
  CredentialSalt s;
  bool created = true;
  std::string err;
  ASSERT_TRUE(load_tenant_salt(p, s, created, err)) << err;
  EXPECT_FALSE(created);
  EXPECT_EQ(s.len, 40);
  EXPECT_EQ(s.bytes[39], 'k');
}

TEST_F(TenantSalt, RefusesUnsafeOrWrongSizedFiles) {
  CredentialSalt s;
  bool created = false;
  std::string err;
  write(dir_ + "/open", std::string(32, 'x'), 0644);
  EXPECT_FALSE(load_tenant_salt(dir_ + "/open", s, created, err));
  EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
  write(dir_ + "/short", std::string(15, 'x'), 0600);
  EXPECT_FALSE(load_tenant_salt(dir_ + "/short", s, created, err));
  EXPECT_NE(err.find("16 to 64 bytes"), std::string::npos) << err;
  write(dir_ + "/long", std::string(65, 'x'), 0600);
  EXPECT_FALSE(load_tenant_salt(dir_ + "/long", s, created, err));
  write(dir_ + "/target", std::string(32, 'x'), 0600);
  ASSERT_EQ(symlink((dir_ + "/target").c_str(), (dir_ + "/link").c_str()), 0);
  EXPECT_FALSE(load_tenant_salt(dir_ + "/link", s, created, err));
  EXPECT_FALSE(load_tenant_salt(dir_ + "/no/such/dir/salt", s, created, err));
  EXPECT_NE(err.find("cannot create"), std::string::npos) << err;
  EXPECT_EQ(s.len, 0);
}

}  // namespace
}  // namespace aiqos
