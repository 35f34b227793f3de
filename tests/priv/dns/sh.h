// Small helpers for DNS priv tests: run a shell command and poll for a condition.
#pragma once

#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace shoal::dns::testing {

struct ShResult {
  int code = -1;
  std::string out;  // stdout and stderr
};

inline ShResult Sh(const std::string& cmd) {
  ShResult r;
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.out.append(buf, n);
  int st = ::pclose(f);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Polls `cond` every 20 ms until it holds or `deadline` passes.
inline bool Eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

}  // namespace shoal::dns::testing
