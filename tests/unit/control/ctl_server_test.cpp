#include "control/ctl_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "control/ctl_protocol.h"
#include "fake_control_api.h"
#include "socket_io.h"

namespace aiqos {
namespace {

using nlohmann::json;
using testing::FakeControlApi;
namespace fs = std::filesystem;

class CtlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aiqos-ctl-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir_ = tmpl;
    path_ = dir_ + "/run/aiqos/aiqosd.sock";  // parents do not exist yet
  }
  void TearDown() override { fs::remove_all(dir_); }

  int connect_fd() {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  // Sends `bytes` (as much as the server takes) and reads the reply to EOF.
  std::string roundtrip(const std::string& bytes) {
    int fd = connect_fd();
    if (fd < 0) return "connect failed";
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server answered and closed early (too large)
      off += static_cast<size_t>(n);
    }
    return test::read_to_eof(fd);
  }

  std::string dir_, path_;
  FakeControlApi api_;
};

TEST_F(CtlServerTest, RoundTripAndCleanup) {
  CtlServer s(api_, {.path = path_});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  std::string r = roundtrip(ctl_request_line("stats", {{"by", "model"}}));
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.back(), '\n');
  auto j = json::parse(r);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["data"]["by"], "model");
  // Daemon-side errors arrive as they are.
  j = json::parse(roundtrip(ctl_request_line("class.set", {{"name", "nope"}, {"rate", "1Mbit"}})));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error"], "unknown class 'nope'");
  EXPECT_EQ(s.served(), 2u);
  auto t0 = std::chrono::steady_clock::now();
  s.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
  EXPECT_FALSE(fs::exists(path_)) << "socket removed on stop";
  EXPECT_EQ(connect_fd(), -1);
}

TEST_F(CtlServerTest, PermissionsAndGroup) {
  CtlServer s(api_, {.path = path_});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  struct stat st{};
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_gid, getegid());
  ASSERT_EQ(stat(fs::path(path_).parent_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(CtlServerTest, MalformedAndOversized) {
  CtlServer s(api_, {.path = path_});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  auto j = json::parse(roundtrip("{oops\n"));
  EXPECT_EQ(j["ok"], false);
  EXPECT_NE(j["error"].get<std::string>().find("malformed JSON"), std::string::npos);
  j = json::parse(roundtrip("{\"cmd\":\"rm -rf /\"}\n"));
  EXPECT_NE(j["error"].get<std::string>().find("unknown command"), std::string::npos);
  // 1 MiB without a newline: answered after 64 KiB, not buffered to the end.
  j = json::parse(roundtrip(std::string(1 << 20, 'x')));
  EXPECT_EQ(j["ok"], false);
  EXPECT_NE(j["error"].get<std::string>().find("request too large"), std::string::npos);
  // A long but valid request line still works afterwards.
  std::string line = ctl_request_line("status", nullptr);
  line.insert(1, std::string(60000, ' '));
  EXPECT_EQ(json::parse(roundtrip(line))["ok"], true);
  EXPECT_TRUE(std::find(api_.calls.begin(), api_.calls.end(), "status") != api_.calls.end());
}

TEST_F(CtlServerTest, ReadTimeout) {
  CtlServer s(api_, {.path = path_, .timeout_ms = 200});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  int fd = connect_fd();
  ASSERT_GE(fd, 0);
  (void)!send(fd, "{\"cmd\":", 7, 0);  // and never the rest
  auto t0 = std::chrono::steady_clock::now();
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, n);
  close(fd);
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::milliseconds(1500));
  EXPECT_NE(out.find("timed out"), std::string::npos) << out;
  // The server still answers others.
  EXPECT_EQ(json::parse(roundtrip(ctl_request_line("status", nullptr)))["ok"], true);
}

TEST_F(CtlServerTest, SlowClientsDoNotBlockOthers) {
  CtlServer s(api_, {.path = path_, .max_conns = 4});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connect_fd());  // connected, silent
  EXPECT_EQ(json::parse(roundtrip(ctl_request_line("status", nullptr)))["ok"], true);
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&] {
      auto r = roundtrip(ctl_request_line("classes", nullptr));
      if (!r.empty() && json::parse(r)["ok"] == true) ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 8);
  for (int fd : idle) close(fd);
}

TEST_F(CtlServerTest, StaleSocketReplacedLiveOneAndFilesRefused) {
  {
    // A socket file nobody listens on: what a crashed daemon leaves.
    fs::create_directories(fs::path(path_).parent_path());
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    close(fd);
    ASSERT_TRUE(fs::exists(path_));
  }
  CtlServer s(api_, {.path = path_});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  EXPECT_EQ(json::parse(roundtrip(ctl_request_line("status", nullptr)))["ok"], true);

  CtlServer second(api_, {.path = path_});
  EXPECT_FALSE(second.start(err));
  EXPECT_NE(err.find("another process"), std::string::npos) << err;
  EXPECT_TRUE(fs::exists(path_)) << "the live socket is left alone";
  s.stop();

  std::ofstream(path_) << "not a socket";
  CtlServer third(api_, {.path = path_});
  EXPECT_FALSE(third.start(err));
  EXPECT_NE(err.find("is not a socket"), std::string::npos) << err;
  EXPECT_TRUE(fs::is_regular_file(path_));

  CtlServer toolong(api_, {.path = "/tmp/" + std::string(200, 'a')});
  EXPECT_FALSE(toolong.start(err));
  EXPECT_NE(err.find("longer than"), std::string::npos) << err;
}

}  // namespace
}  // namespace aiqos
