// Real containers for lab tests and benchmarks (target shoal_lab_containers).
//
// A ContainerLab builds the test image once (scripts/mkimage: busybox-static + shoal-probe, plus
// shoal-dfping for DF-bit pings) and creates containers with the runtime library
// (runtime/container.h): own mount/pid/uts/ipc/cgroup namespaces, Docker's default capabilities
// and seccomp profile, a per-container overlayfs rootfs (writes never touch the shared image),
// cgroups under "<prefix>cg-<pid>". PID 1 is a long `sleep`; commands run inside with Exec().
//
// Networking: by default each container gets its OWN network namespace (made by the runtime's
// clone) with lo up (127.0.0.1, as Docker's sandbox does). Between creating the container and starting PID 1, Run() calls `attach` with that
// namespace, so a driver can put eth0 in it (e.g. `overlay.CreateEndpoint({.netns_fd = fd})`
// on the driver of lab host N) before the container's process runs. Set
// ContainerOptions::netns_path to join an existing namespace instead.
//
// Typical use ("a container on lab host 2 on overlay net A"):
//
//   auto lab = lab::ContainerLab::Create("shxx-");
//   auto* c = *lab->Run("web", [&](int netns_fd) {
//     return drivers[1]->CreateEndpoint(Ep(netns_fd, ...)).status();
//   });
//   auto r = c->Exec("ping -c1 -W2 10.0.1.3");   // runs inside the container
//   EXPECT_EQ(r->exit_code, 0) << r->output;
//
// Teardown: ~ContainerLab (or Remove) kills and deletes every container (also when a test fails
// half-way), reaps every exec'd process, removes the per-container dirs, the image and the
// cgroup parent. Network state the `attach` callback created is the caller's to remove (a
// container's own namespace, and the veth end in it, disappear with the container). Needs root.
// Not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runtime/container.h"
#include "tests/lab/process.h"

namespace shoal::lab {

struct ContainerOptions {
  // Join this network namespace (a bind mount path) instead of getting a new one.
  std::string netns_path;
  // Added to Docker's default capabilities (e.g. "CAP_NET_ADMIN" for `ip` changes inside).
  std::vector<std::string> cap_add;
  // Last chance to change the spec (mounts, env, resources...) before the container is created.
  std::function<void(runtime::ContainerSpec&)> customize;
};

// A command started in the background inside a container; killed (and reaped) on destruction.
class ContainerProcess {
 public:
  explicit ContainerProcess(std::unique_ptr<runtime::Process> p) : p_(std::move(p)) {}
  ~ContainerProcess() { Kill(); }
  ContainerProcess(const ContainerProcess&) = delete;
  ContainerProcess& operator=(const ContainerProcess&) = delete;
  pid_t pid() const { return p_ ? p_->pid() : -1; }
  void Kill();

 private:
  std::unique_ptr<runtime::Process> p_;
};

class LabContainer {
 public:
  ~LabContainer();  // deletes the container (idempotent)
  LabContainer(const LabContainer&) = delete;
  LabContainer& operator=(const LabContainer&) = delete;

  const std::string& name() const { return name_; }
  const std::string& id() const { return c_->id(); }
  pid_t pid() const { return c_->pid(); }  // PID 1, as the host sees it
  // The container's network namespace (open fd on /proc/<pid>/ns/net): for drivers and for
  // host-side inspection with lab::RunIn (which runs host tools, not the container's).
  int netns_fd() const { return netns_.get(); }
  runtime::Container& container() { return *c_; }

  // Runs `sh -c cmd` inside the container (its namespaces, cgroup, capabilities, seccomp;
  // busybox tools) and returns exit code and stdout+stderr. DEADLINE_EXCEEDED (and the command
  // is killed) after `timeout`.
  absl::StatusOr<CommandResult> Exec(const std::string& cmd,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Exec until it exits 0 or `within` passes; returns the last result. For conditions that
  // become true asynchronously (a new bridge port forwarding, a server listening).
  absl::StatusOr<CommandResult> ExecUntilOk(
      const std::string& cmd, std::chrono::milliseconds within = std::chrono::seconds(10));
  // Starts `sh -c cmd` in the background inside the container, output to /dev/null.
  absl::StatusOr<std::unique_ptr<ContainerProcess>> Spawn(const std::string& cmd);

  // Kills every process and deletes the container. Idempotent.
  absl::Status Delete();

 private:
  friend class ContainerLab;
  LabContainer() = default;
  std::string name_;
  std::string dir_;
  std::vector<std::string> cap_add_;
  std::unique_ptr<runtime::Container> c_;
  base::UniqueFd netns_;
};

class ContainerLab {
 public:
  // `prefix` (e.g. "shnt-") names the image and container dirs under /tmp, the cgroup parent and
  // the container ids. Builds the image (needs scripts/mkimage's busybox-static).
  static absl::StatusOr<std::unique_ptr<ContainerLab>> Create(const std::string& prefix);
  ~ContainerLab();
  ContainerLab(const ContainerLab&) = delete;
  ContainerLab& operator=(const ContainerLab&) = delete;

  using Attach = std::function<absl::Status(int netns_fd)>;
  // Creates container `name` (unique per lab) running `sleep`, calls `attach` with its network
  // namespace before PID 1 runs (nullptr: no network but lo), then starts it. When attach or
  // start fails the container is deleted and the error returned (annotated with the name).
  absl::StatusOr<LabContainer*> Run(const std::string& name, const Attach& attach = nullptr,
                                    const ContainerOptions& options = {});
  LabContainer& at(const std::string& name) { return *containers_.at(name); }
  bool contains(const std::string& name) const { return containers_.count(name) > 0; }
  // Deletes one container (NOT_FOUND if unknown).
  absl::Status Remove(const std::string& name);

  const std::string& image() const { return image_; }
  runtime::Runtime& runtime() { return *runtime_; }
  // Cgroup directories (any hierarchy) still under this lab's parent: empty after teardown.
  std::vector<std::string> LeftoverCgroups() const;

 private:
  ContainerLab() = default;
  std::string prefix_;
  std::string base_;   // /tmp/<prefix>ctr-<pid>: image/ and one dir per container
  std::string image_;  // base_/image
  std::string cgroup_parent_;
  kernel::CgroupMode cgroup_mode_ = kernel::CgroupMode::kV2;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::map<std::string, std::unique_ptr<LabContainer>> containers_;
};

}  // namespace shoal::lab
