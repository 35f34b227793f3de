// The test fixture every docker e2e test uses: a fresh isolated Dockerd (dockerd.h) with
// shoal-runtime added as runtime "shoal" and the scripts/mkimage test image (busybox-static +
// shoal-probe) imported as kImage; skips without root or docker.io. TearDown removes every
// container through docker and checks what a user would find afterwards: no cgroup, no process
// referring to the daemon's directory, no containerd-shim socket, no directory.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "gtest/gtest.h"
#include "tests/e2e/docker/dockerd.h"

namespace shoal::testing {

class DockerFixture : public ::testing::Test {
 protected:
  static constexpr char kImage[] = "shdk-img:1";

  void SetUp() override;
  void TearDown() override;

  // `docker <args>` against this daemon.
  Dockerd::Result D(const std::string& args) { return dockerd_->Docker(args); }
  // `docker run --rm --runtime=shoal --network=none <flags> kImage <cmd>`
  Dockerd::Result Run(const std::string& flags, const std::string& cmd);
  // The same detached (-d, no --rm); returns the container id (a failure is a test failure).
  std::string RunDetached(const std::string& flags, const std::string& cmd);
  // `docker inspect -f '<format>' <id>`, trimmed.
  std::string Inspect(const std::string& id, const std::string& format);
  // Polls `docker logs` until it contains `text` (deadline 30 s); returns the logs.
  std::string WaitForLogs(const std::string& id, const std::string& text);

  std::unique_ptr<Dockerd> dockerd_;
  std::error_code ec_;
};

}  // namespace shoal::testing
