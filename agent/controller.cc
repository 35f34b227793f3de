#include "agent/controller.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/container_spec.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "kernel/cgroup/cgroup.h"
#include "kernel/netlink/libnl_netlink.h"
#include "runtime/images/reference.h"
#include "runtime/images/registry.h"

namespace shoal::agent {

namespace images = ::shoal::runtime::images;

std::string ExecDir(const AgentOptions& o, const std::string& id) {
  return absl::StrCat(o.exec_root, "/containers/", id);
}
std::string DataDir(const AgentOptions& o, const std::string& id) {
  return absl::StrCat(o.state_dir, "/containers/", id);
}

namespace {

absl::Duration GracePeriod(const api::Task& task) {
  const auto& g = task.spec().container().stop_grace_period();
  if (g.seconds() == 0 && g.nanos() == 0) return absl::Seconds(10);
  return absl::Seconds(g.seconds()) + absl::Nanoseconds(g.nanos());
}

absl::Status MakeDirs(const std::string& dir, std::filesystem::perms perms) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
  std::filesystem::permissions(dir, perms, ec);
  return absl::OkStatus();
}

// The first of the image's layers (top-most first) that has `rel`; "" when none has.
std::string ReadFromLayers(const std::vector<std::string>& lower, const std::string& rel) {
  for (const std::string& dir : lower) {
    auto text = base::ReadFile(dir + "/" + rel);
    if (text.ok()) return *text;
  }
  return "";
}

// The host's resolv.conf without loopback nameservers (unreachable from a container netns), or
// the embedded resolver's when the container is on networks.
std::string ResolvConf(const api::ContainerSpec& c, bool embedded_dns) {
  if (embedded_dns) return EmbeddedResolvConf(c);
  std::string out;
  const auto& dns = c.dns_config();
  if (dns.nameservers_size() > 0 || dns.search_size() > 0 || dns.options_size() > 0) {
    for (const auto& n : dns.nameservers()) absl::StrAppend(&out, "nameserver ", n, "\n");
    if (dns.search_size() > 0) {
      absl::StrAppend(&out, "search ", absl::StrJoin(dns.search(), " "), "\n");
    }
    if (dns.options_size() > 0) {
      absl::StrAppend(&out, "options ", absl::StrJoin(dns.options(), " "), "\n");
    }
    return out;
  }
  auto host = base::ReadFile("/etc/resolv.conf");
  if (!host.ok()) return out;
  for (absl::string_view line : absl::StrSplit(*host, '\n')) {
    if (absl::StartsWith(line, "nameserver") &&
        (absl::StrContains(line, " 127.") || absl::StrContains(line, " ::1"))) {
      continue;
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

absl::StatusOr<images::ImageRecord> EnsureImage(const ExecEnv& env, const std::string& image) {
  auto rec = env.images->Resolve(image);
  if (rec.ok() || rec.status().code() != absl::StatusCode::kNotFound) return rec;
  if (!env.options->pull_missing_images) return rec.status();
  ASSIGN_OR_RETURN(images::Reference ref, images::ParseReference(image));
  images::RegistryOptions ro;
  for (const auto& host : env.options->insecure_registries) {
    if (host == ref.domain) ro.plain_http = true;
  }
  return images::Pull(*env.images, ref, ro);
}

}  // namespace

bool Controller::UsesNetworks(const api::Task& task) const {
  return env_.net != nullptr && !task.networks().empty();
}

absl::Status Controller::WriteFiles(const api::Task& task,
                                    std::vector<runtime::MountSpec>* mounts) {
  const api::ContainerSpec& c = task.spec().container();
  const std::string exec = ExecDir(*env_.options, id_);
  // /etc/hostname, /etc/hosts, /etc/resolv.conf (Docker writes these per container too).
  std::string hostname = c.hostname().empty() ? id_.substr(0, 12) : c.hostname();
  std::string hosts =
      absl::StrCat("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                   "127.0.1.1\t", hostname, "\n");
  for (const auto& line : c.hosts()) absl::StrAppend(&hosts, line, "\n");
  struct File {
    const char* name;
    std::string data;
  };
  for (const File& f : {File{"hostname", hostname + "\n"}, File{"hosts", hosts},
                        File{"resolv.conf", ResolvConf(c, UsesNetworks(task))}}) {
    std::string path = absl::StrCat(exec, "/", f.name);
    RETURN_IF_ERROR(base::WriteFileAtomic(path, f.data, 0644));
    mounts->push_back({absl::StrCat("/etc/", f.name), "bind", path, {"rbind"}});
  }
  if (c.secrets_size() == 0 && c.configs_size() == 0) return absl::OkStatus();

  // Secrets and configs: files on a tmpfs (never on disk), bind-mounted read-only one by one.
  const std::string files = exec + "/files";
  RETURN_IF_ERROR(MakeDirs(files, std::filesystem::perms::owner_all));
  if (::mount("tmpfs", files.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=16m,mode=0700") != 0 &&
      errno != EBUSY) {
    return base::ErrnoStatus(errno, "mount tmpfs on ", files);
  }
  auto write = [&](const std::string& name, const std::string& data, uint32_t uid, uint32_t gid,
                   uint32_t mode, const std::string& target) -> absl::Status {
    std::string path = absl::StrCat(files, "/", name);
    RETURN_IF_ERROR(base::WriteFileAtomic(path, data, mode == 0 ? 0444 : mode));
    if (::chown(path.c_str(), uid, gid) != 0) return base::ErrnoStatus(errno, "chown ", path);
    mounts->push_back({target, "bind", path, {"rbind", "ro"}});
    return absl::OkStatus();
  };
  for (int i = 0; i < c.secrets_size(); ++i) {
    const api::SecretReference& ref = c.secrets(i);
    std::optional<api::Secret> s = env_.secret(ref.secret_id());
    if (!s) {
      return absl::UnavailableError(
          absl::StrCat("secret ", ref.secret_name(), " (", ref.secret_id(), ") not received yet"));
    }
    std::string file = ref.file_name().empty() ? ref.secret_name() : ref.file_name();
    if (file.empty() || absl::StrContains(file, "..")) {
      return absl::InvalidArgumentError(
          absl::StrCat("task spec: container.secrets[", i, "].file_name: invalid \"", file, "\""));
    }
    std::string target = file[0] == '/' ? file : absl::StrCat("/run/secrets/", file);
    RETURN_IF_ERROR(write(absl::StrCat("secret-", i), s->spec().data(), ref.uid(), ref.gid(),
                          ref.mode(), target));
  }
  for (int i = 0; i < c.configs_size(); ++i) {
    const api::ConfigReference& ref = c.configs(i);
    std::optional<api::Config> cfg = env_.config(ref.config_id());
    if (!cfg) {
      return absl::UnavailableError(
          absl::StrCat("config ", ref.config_name(), " (", ref.config_id(), ") not received yet"));
    }
    std::string file = ref.file_name().empty() ? ref.config_name() : ref.file_name();
    if (file.empty() || absl::StrContains(file, "..")) {
      return absl::InvalidArgumentError(
          absl::StrCat("task spec: container.configs[", i, "].file_name: invalid \"", file, "\""));
    }
    std::string target = file[0] == '/' ? file : "/" + file;
    RETURN_IF_ERROR(write(absl::StrCat("config-", i), cfg->spec().data(), ref.uid(), ref.gid(),
                          ref.mode(), target));
  }
  return absl::OkStatus();
}

absl::Status Controller::Prepare(const api::Task& task) {
  if (client_ != nullptr) return absl::OkStatus();
  const AgentOptions& o = *env_.options;
  const std::string& image = task.spec().container().image();
  if (image.empty()) {
    return absl::InvalidArgumentError("task spec: container.image: required");
  }
  if (UsesNetworks(task)) RETURN_IF_ERROR(env_.net->Ready(task));
  ASSIGN_OR_RETURN(images::ImageRecord rec, EnsureImage(env_, image));
  RETURN_IF_ERROR(env_.images->AddContainerRef(id_, rec.id.String()));
  ASSIGN_OR_RETURN(std::vector<std::string> lower, env_.images->PrepareLowerDirs(rec.id.String()));
  const std::string data = DataDir(o, id_);
  const std::string exec = ExecDir(o, id_);
  for (const char* sub : {"/rootfs", "/upper", "/work"}) {
    RETURN_IF_ERROR(MakeDirs(data + sub, std::filesystem::perms::owner_all));
  }
  RETURN_IF_ERROR(MakeDirs(exec, std::filesystem::perms::owner_all));

  SpecInputs in;
  in.task = &task;
  in.image = &rec.config;
  in.lower_dirs = lower;
  in.rootfs_dir = data + "/rootfs";
  in.upper_dir = data + "/upper";
  in.work_dir = data + "/work";
  in.init_path = o.init_path;
  in.volumes_dir = o.state_dir + "/volumes";
  in.passwd = ReadFromLayers(lower, "etc/passwd");
  in.group = ReadFromLayers(lower, "etc/group");
  RETURN_IF_ERROR(WriteFiles(task, &in.extra_mounts));
  for (const auto& m : task.spec().container().mounts()) {
    if (m.type() == api::Mount::TYPE_VOLUME && !m.source().empty() &&
        !absl::StrContains(m.source(), "/")) {
      RETURN_IF_ERROR(
          MakeDirs(absl::StrCat(in.volumes_dir, "/", m.source(), "/_data"),
                   std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                       std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                       std::filesystem::perms::others_exec));
    }
  }
  ASSIGN_OR_RETURN(runtime::ContainerSpec spec, BuildContainerSpec(in));

  runtime::LaunchOptions lo;
  lo.monitor_path = o.monitor_path;
  lo.state_dir = exec;
  lo.cgroup = o.cgroup;
  lo.cgroup_parent = o.cgroup_parent;
  lo.log_max_size = o.log_max_size;
  lo.log_max_files = o.log_max_files;
  lo.wait_for_start = true;
  ASSIGN_OR_RETURN(client_, runtime::MonitorClient::Launch(lo, spec));
  // The container's network namespace exists now (PID 1 waits for start): bring `lo` up, as
  // every runtime does (127.0.0.1 must work even without networks).
  absl::Status up = LoopbackUp();
  // Then the task's networks, before PID 1 runs (its first packet already has them).
  if (up.ok()) up = EnsureNetworks(task);
  if (!up.ok()) {
    (void)Remove();
    return up;
  }
  return absl::OkStatus();
}

absl::Status Controller::EnsureNetworks(const api::Task& task) {
  if (!UsesNetworks(task)) {
    networked_ = true;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Observation ob, Observe());
  if (ob.pid <= 0 || ob.exited) return absl::FailedPreconditionError("the container does not run");
  RETURN_IF_ERROR(env_.net->Attach(task, ob.pid));
  networked_ = true;
  return absl::OkStatus();
}

void Controller::DetachNetworks() {
  networked_ = false;
  if (env_.net == nullptr) return;
  absl::Status s = env_.net->Detach(id_);
  if (!s.ok()) {
    base::Logger("agent")->warn("task {}: detach networks: {}", id_, std::string(s.message()));
  }
}

absl::Status Controller::LoopbackUp() {
  ASSIGN_OR_RETURN(Observation ob, Observe());
  std::string path = absl::StrCat("/proc/", ob.pid, "/ns/net");
  base::UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return base::ErrnoStatus(errno, "open ", path);
  kernel::LibnlNetlinkFactory factory;
  ASSIGN_OR_RETURN(std::unique_ptr<kernel::Netlink> nl, factory.Open(ns.get()));
  ASSIGN_OR_RETURN(kernel::Link lo, nl->GetLink("lo"));
  return nl->SetLinkUp(lo.index, true);
}

absl::Status Controller::Start() {
  if (client_ == nullptr) return absl::FailedPreconditionError("no container to start");
  ASSIGN_OR_RETURN(Observation ob, Observe());
  if (ob.status == "running") return absl::OkStatus();
  if (ob.exited) return absl::OkStatus();  // ran and exited already: Observe reports it
  return client_->Start();
}

absl::StatusOr<Controller::Observation> Controller::Observe() const {
  if (client_ == nullptr) return absl::NotFoundError("no container");
  ASSIGN_OR_RETURN(runtime::MonitorState s, client_->State());
  Observation ob;
  ob.status = s.status;
  ob.pid = s.pid;
  ob.exited = s.has_exit;
  ob.exit = s.exit;
  return ob;
}

absl::StatusOr<runtime::ExitStatus> Controller::Shutdown(const api::Task& task) {
  if (client_ == nullptr) return runtime::ExitStatus{};
  ASSIGN_OR_RETURN(Observation ob, Observe());
  if (ob.exited) return ob.exit;
  if (ob.status == "stopped") return absl::DataLossError("the container's monitor died");
  int sig = SIGTERM;
  const std::string& name = task.spec().container().stop_signal();
  if (!name.empty()) {
    auto parsed = ParseSignal(name);
    if (parsed.ok()) sig = *parsed;
  }
  // A container never started has nothing to let finish.
  absl::Duration grace = ob.status == "created" ? absl::ZeroDuration() : GracePeriod(task);
  absl::Status s = client_->Stop(sig, grace);
  if (!s.ok()) {
    ASSIGN_OR_RETURN(ob, Observe());
    if (ob.exited) return ob.exit;
    return s;
  }
  return client_->Wait(grace + absl::Seconds(15));
}

absl::Status Controller::Remove() {
  const AgentOptions& o = *env_.options;
  absl::Status result;
  if (env_.net != nullptr) result = env_.net->Detach(id_);
  networked_ = false;
  if (client_ != nullptr) {
    auto ob = Observe();
    if (ob.ok() && !ob->exited && ob->status != "stopped") {
      (void)client_->Stop(SIGKILL, absl::ZeroDuration());
      auto w = client_->Wait(absl::Seconds(15));
      if (!w.ok() && w.status().code() == absl::StatusCode::kDeadlineExceeded) {
        result = w.status();
      }
    }
  }
  // A monitor killed hard leaves its cgroup: kill what is in it and remove it.
  auto cg = kernel::Cgroup::Open(o.cgroup, absl::StrCat(o.cgroup_parent, "/", id_));
  if (cg.ok()) {
    (void)(*cg)->KillAll();
    absl::Status s = (*cg)->Remove();
    if (!s.ok() && result.ok()) result = s;
  }
  const std::string exec = ExecDir(o, id_);
  std::string files = exec + "/files";
  if (::umount2(files.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    if (result.ok()) result = base::ErrnoStatus(errno, "umount ", files);
  }
  std::error_code ec;
  std::filesystem::remove_all(exec, ec);
  if (ec && result.ok())
    result = absl::InternalError(absl::StrCat("remove ", exec, ": ", ec.message()));
  std::filesystem::remove_all(DataDir(o, id_), ec);
  if (ec && result.ok()) result = absl::InternalError(absl::StrCat("remove data: ", ec.message()));
  absl::Status lease = env_.images->RemoveContainerRef(id_);
  if (!lease.ok() && lease.code() != absl::StatusCode::kNotFound && result.ok()) result = lease;
  if (result.ok()) client_.reset();
  return result;
}

}  // namespace shoal::agent
