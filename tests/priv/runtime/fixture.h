// Shared fixtures for runtime priv tests. RuntimeTest: a test image built once per binary by
// scripts/mkimage into /tmp, a Runtime whose cgroups live under a unique "shoaltest-rt-<pid>"
// parent, and helpers that run a container and capture its output. OciCliTest: the same image as
// an OCI bundle driven through the shoal-runtime CLI. Nothing is left behind.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/container.h"

namespace shoal::runtime::testing {

class RuntimeTest : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

 protected:
  void SetUp() override;
  void TearDown() override;

  // A spec for the test image with a fresh unique id.
  ContainerSpec Spec(std::vector<std::string> args);

  struct Output {
    ExitStatus exit;
    std::string out;  // stdout+stderr
  };
  // Create + Start (`one_step`: Runtime::Run) + read output until EOF + Wait + Delete.
  absl::StatusOr<Output> Run(const ContainerSpec& spec, bool one_step = false);
  // Runs `process` in the running container `c`: output read until EOF, then Wait.
  static absl::StatusOr<Output> ExecOutput(Container& c, const ProcessSpec& process);

  // "key=value" lines -> map (first occurrence wins).
  static std::map<std::string, std::string> Parse(const std::string& out);
  // Reads all of `fd` until EOF.
  static std::string ReadAll(int fd);

  // Every cgroup directory (all hierarchies) this runtime created under the parent.
  std::vector<std::string> LeftoverCgroups() const;

  static std::string image_;
  std::unique_ptr<Runtime> runtime_;
  kernel::Features features_;
  std::string parent_;
  int counter_ = 0;
};

// shoal-runtime (SHOAL_RUNTIME_PATH) with a config.json bundle, as containerd-shim drives it:
// dir_ = /tmp/shoaltest-rt-oci-<pid> holds the bundle (bundle_: config.json and a "rootfs" link
// to the image) and the state root (root_), and the test process is a child subreaper while a
// test runs (`create` leaves PID 1 to it). TearDown force-deletes every container still in the
// root (after a failed assertion), reaps, and removes dir_.
class OciCliTest : public RuntimeTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A config.json for the test image: `process` over env PATH=/bin, cwd "/" and user 0:0;
  // root "rootfs"; pid, network, mount, ipc and uts namespaces.
  static nlohmann::json Config(const nlohmann::json& process);
  // Writes <bundle_>/config.json.
  void WriteBundleConfig(const nlohmann::json& config);
  // Runs `shoal-runtime --root root_ --cgroup-parent parent_ <args>` in bundle_; returns {exit
  // code, stdout+stderr}. Output goes through a file, not a pipe: a created container inherits
  // (and keeps) the command's stdio, as OCI requires.
  std::pair<int, std::string> Cli(const std::string& args);
  // Reaps re-parented container processes (what containerd-shim does).
  static void Reap();
  // The container's OCI status ("created", "running", "stopped"), "error: <output>" otherwise.
  std::string Status(const std::string& id);
  // Polls Status until "stopped" (deadline 30 s) and expects it.
  void AwaitStopped(const std::string& id);

  std::string dir_, bundle_, root_;
  std::error_code ec_;
};

}  // namespace shoal::runtime::testing
