#include "tests/lab/containers.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/cgroup/plan.h"
#include "kernel/features.h"
#include "kernel/netlink/libnl_netlink.h"

namespace shoal::lab {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> CgroupBases(kernel::CgroupMode mode, const std::string& parent) {
  std::vector<std::string> bases;
  if (mode == kernel::CgroupMode::kV2) {
    bases.push_back("/sys/fs/cgroup/" + parent);
  } else {
    for (const std::string& c : kernel::V1Controllers()) {
      bases.push_back(absl::StrCat("/sys/fs/cgroup/", c, "/", parent));
    }
  }
  return bases;
}

}  // namespace

void ContainerProcess::Kill() {
  if (!p_) return;
  (void)p_->Signal(SIGKILL);
  (void)p_->Wait();
  p_.reset();
}

LabContainer::~LabContainer() { (void)Delete(); }

absl::Status LabContainer::Delete() {
  netns_.Reset();
  absl::Status st = c_ ? c_->Delete() : absl::OkStatus();
  if (st.ok() && !dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  return st;
}

absl::StatusOr<CommandResult> LabContainer::Exec(const std::string& cmd,
                                                 std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return base::ErrnoStatus(errno, "pipe");
  base::UniqueFd rd(p[0]), wr(p[1]);
  runtime::ProcessSpec ps;
  ps.args = {"sh", "-c", cmd};
  ps.cap_add = cap_add_;
  auto proc = c_->Exec(ps, runtime::Stdio{-1, wr.get(), wr.get()});
  wr.Reset();
  if (!proc.ok()) return base::Annotate(proc.status(), absl::StrCat("exec in ", name_));
  CommandResult r;
  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{rd.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n <= 0) continue;
    ssize_t got = ::read(rd.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the command and every child holding stdout are gone
    r.output.append(buf, static_cast<size_t>(got));
  }
  if (timed_out) (void)(*proc)->Signal(SIGKILL);
  ASSIGN_OR_RETURN(runtime::ExitStatus exit, (*proc)->Wait());
  r.exit_code = exit.code;
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("command timed out in container ", name_, ": ", cmd, "\n", r.output));
  }
  return r;
}

absl::StatusOr<CommandResult> LabContainer::ExecUntilOk(const std::string& cmd,
                                                        std::chrono::milliseconds within) {
  auto deadline = Clock::now() + within;
  absl::StatusOr<CommandResult> r;
  while (true) {
    r = Exec(cmd);
    if (r.ok() && r->ok()) return r;
    if (Clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval, not a wait
  }
}

absl::StatusOr<std::unique_ptr<ContainerProcess>> LabContainer::Spawn(const std::string& cmd) {
  runtime::ProcessSpec ps;
  ps.args = {"sh", "-c", cmd};
  ps.cap_add = cap_add_;
  auto proc = c_->Exec(ps, runtime::Stdio{});
  if (!proc.ok()) return base::Annotate(proc.status(), absl::StrCat("spawn in ", name_));
  return std::make_unique<ContainerProcess>(std::move(*proc));
}

absl::StatusOr<std::unique_ptr<ContainerLab>> ContainerLab::Create(const std::string& prefix) {
  std::unique_ptr<ContainerLab> lab(new ContainerLab());
  lab->prefix_ = prefix;
  lab->base_ = absl::StrCat("/tmp/", prefix, "ctr-", ::getpid());
  lab->image_ = lab->base_ + "/image";
  lab->cgroup_parent_ = absl::StrCat(prefix, "cg-", ::getpid());
  ASSIGN_OR_RETURN(kernel::Features f, kernel::ProbeFeatures());
  lab->cgroup_mode_ = f.cgroup_mode;
  std::error_code ec;
  std::filesystem::remove_all(lab->base_, ec);  // a leftover of a crashed run with our pid
  std::filesystem::create_directories(lab->base_, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", lab->base_, ": ", ec.message()));
  std::string cmd =
      absl::StrCat(SHOAL_SOURCE_DIR, "/scripts/mkimage ", lab->image_, " ", SHOAL_PROBE_PATH,
                   " && cp ", SHOAL_DFPING_PATH, " ", lab->image_, "/bin/shoal-dfping");
  ASSIGN_OR_RETURN(CommandResult mk, RunIn(-1, cmd));
  if (!mk.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("building the lab image failed (", cmd, "): ", mk.output));
  }
  runtime::RuntimeOptions o;
  o.cgroup.mode = f.cgroup_mode;
  o.cgroup_parent = lab->cgroup_parent_;
  lab->runtime_ = std::make_unique<runtime::Runtime>(o);
  return lab;
}

ContainerLab::~ContainerLab() {
  containers_.clear();  // each deletes its container and dir
  for (const std::string& dir : LeftoverCgroups()) ::rmdir(dir.c_str());
  for (const std::string& base : CgroupBases(cgroup_mode_, cgroup_parent_)) ::rmdir(base.c_str());
  std::error_code ec;
  if (!base_.empty()) std::filesystem::remove_all(base_, ec);
}

std::vector<std::string> ContainerLab::LeftoverCgroups() const {
  std::vector<std::string> left;
  for (const std::string& base : CgroupBases(cgroup_mode_, cgroup_parent_)) {
    DIR* d = ::opendir(base.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') left.push_back(base + "/" + e->d_name);
    }
    ::closedir(d);
  }
  return left;
}

absl::Status ContainerLab::Remove(const std::string& name) {
  auto it = containers_.find(name);
  if (it == containers_.end()) {
    return absl::NotFoundError(absl::StrCat("lab container \"", name, "\" not found"));
  }
  absl::Status st = it->second->Delete();
  containers_.erase(it);
  return st;
}

absl::StatusOr<LabContainer*> ContainerLab::Run(const std::string& name, const Attach& attach,
                                                const ContainerOptions& options) {
  if (containers_.count(name)) {
    return absl::AlreadyExistsError(absl::StrCat("lab container \"", name, "\" already exists"));
  }
  std::unique_ptr<LabContainer> lc(new LabContainer());
  lc->name_ = name;
  lc->dir_ = absl::StrCat(base_, "/", name);
  lc->cap_add_ = options.cap_add;
  std::error_code ec;
  for (const char* d : {"/rootfs", "/upper", "/work"}) {
    std::filesystem::create_directories(lc->dir_ + d, ec);
    if (ec) return absl::InternalError(absl::StrCat("mkdir ", lc->dir_, d, ": ", ec.message()));
  }
  runtime::ContainerSpec spec;
  spec.id = prefix_ + name;
  spec.hostname = name;
  spec.rootfs = lc->dir_ + "/rootfs";
  spec.overlay.lower_dirs = {image_};
  spec.overlay.upper_dir = lc->dir_ + "/upper";
  spec.overlay.work_dir = lc->dir_ + "/work";
  spec.netns_path = options.netns_path;
  spec.process.args = {"sleep", "2147483647"};
  spec.process.cap_add = options.cap_add;
  if (options.customize) options.customize(spec);
  auto c = runtime_->Create(spec, runtime::Stdio{});
  if (!c.ok()) {
    std::filesystem::remove_all(lc->dir_, ec);
    return base::Annotate(c.status(), absl::StrCat("lab container ", name));
  }
  lc->c_ = std::move(*c);
  std::string ns =
      spec.netns_path.empty() ? absl::StrCat("/proc/", lc->c_->pid(), "/ns/net") : spec.netns_path;
  lc->netns_.Reset(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!lc->netns_) return base::ErrnoStatus(errno, "open ", ns);  // lc's destructor cleans up
  if (spec.netns_path.empty()) {
    // A fresh network namespace has lo down (no 127.0.0.1); Docker's sandbox brings it up, and
    // the runtime library leaves networking to its caller, so the lab does it.
    kernel::LibnlNetlinkFactory f;
    ASSIGN_OR_RETURN(auto nl, f.Open(lc->netns_.get()));
    ASSIGN_OR_RETURN(kernel::Link lo, nl->GetLink("lo"));
    RETURN_IF_ERROR(nl->SetLinkUp(lo.index, true));
  }
  if (attach) {
    absl::Status st = attach(lc->netns_.get());
    if (!st.ok()) return base::Annotate(st, absl::StrCat("attach lab container ", name));
  }
  RETURN_IF_ERROR(lc->c_->Start());
  LabContainer* raw = lc.get();
  containers_[name] = std::move(lc);
  return raw;
}

}  // namespace shoal::lab
