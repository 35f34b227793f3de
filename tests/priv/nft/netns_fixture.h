// Throwaway network namespaces for the nft priv tests (prefix "sni-"), wired with veth pairs,
// plus sockets opened inside them. Everything is removed in destructors, also on failure.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace shoal::testing {

// Runs a shell command; returns its exit status and stdout.
inline int Sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  std::string buf;
  char tmp[4096];
  size_t n;
  while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0) buf.append(tmp, n);
  int rc = pclose(p);
  if (out) *out = buf;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class TestNetns {
 public:
  TestNetns() {
    static std::atomic<int> counter{0};
    name_ = absl::StrCat("sni-", getpid() % 100000, "-", counter++);
    std::string out;
    int rc = Sh("ip netns add " + name_, &out);
    EXPECT_EQ(rc, 0) << out;
    fd_ = ::open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd_, 0);
    Exec("ip link set lo up");
  }
  ~TestNetns() {
    if (fd_ >= 0) ::close(fd_);
    Sh("ip netns del " + name_);
  }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }

  // Runs a command inside the namespace; EXPECTs success unless allow_fail.
  std::string Exec(const std::string& cmd, bool allow_fail = false) {
    std::string out;
    int rc = Sh("ip netns exec " + name_ + " " + cmd, &out);
    if (!allow_fail) {
      EXPECT_EQ(rc, 0) << cmd << ": " << out;
    }
    return out;
  }

  // Creates a socket inside this namespace (it stays there whichever thread uses it).
  base::UniqueFd Socket(int domain, int type) {
    int s = -1;
    std::thread t([&] {
      if (setns(fd_, CLONE_NEWNET) == 0) s = ::socket(domain, type | SOCK_CLOEXEC, 0);
    });
    t.join();
    return base::UniqueFd(s);
  }

 private:
  std::string name_;
  int fd_ = -1;
};

// Connects `a` and `b` with a veth pair (a_if in a, b_if in b) and addresses them.
inline void Wire(TestNetns& a, const std::string& a_if, const std::string& a_cidr, TestNetns& b,
                 const std::string& b_if, const std::string& b_cidr) {
  std::string out;
  ASSERT_EQ(Sh(absl::StrCat("ip link add ", a_if, " netns ", a.name(), " type veth peer name ",
                            b_if, " netns ", b.name()),
               &out),
            0)
      << out;
  a.Exec("ip addr add " + a_cidr + " dev " + a_if);
  a.Exec("ip link set " + a_if + " up");
  b.Exec("ip addr add " + b_cidr + " dev " + b_if);
  b.Exec("ip link set " + b_if + " up");
}

}  // namespace shoal::testing
