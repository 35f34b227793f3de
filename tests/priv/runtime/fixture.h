// Shared fixture for runtime priv tests: a test image built once per binary by scripts/mkimage
// into /tmp, a Runtime whose cgroups live under a unique "shoaltest-rt-<pid>" parent, and
// helpers that run a container and capture its output. Nothing is left behind.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
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
  // Create + Start + read output until EOF + Wait + Delete.
  absl::StatusOr<Output> Run(const ContainerSpec& spec);

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

}  // namespace shoal::runtime::testing
