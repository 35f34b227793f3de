#include "tests/priv/agent/fixture.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "kernel/cgroup/plan.h"
#include "manager/ca/tls.h"
#include "nlohmann/json.hpp"
#include "runtime/images/digest.h"
#include "runtime/images/import.h"
#include "runtime/images/store.h"
#include "runtime/monitor/client.h"
#include "tests/testing/priv.h"

namespace shoal::agent::testing {

namespace images = ::shoal::runtime::images;

std::string AgentTest::image_dir_;

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return cond();
}

namespace {

// Writes `data` as a blob of an OCI layout; returns its descriptor.
nlohmann::json PutBlob(const std::string& layout, const std::string& data,
                       const std::string& media_type) {
  images::Digest d = images::Sha256Of(data);
  std::string path = absl::StrCat(layout, "/blobs/sha256/", d.hex);
  std::ofstream(path, std::ios::binary) << data;
  return {{"mediaType", media_type}, {"digest", d.String()}, {"size", data.size()}};
}

// An OCI layout holding the mkimage rootfs as one uncompressed layer.
void WriteLayout(const std::string& rootfs, const std::string& layout) {
  std::filesystem::create_directories(layout + "/blobs/sha256");
  std::string tar = layout + "/layer.tar";
  std::string cmd = absl::StrCat("tar -C ", rootfs, " -cf ", tar, " .");
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  auto layer_data = base::ReadFile(tar);
  ASSERT_TRUE(layer_data.ok());
  std::filesystem::remove(tar);
  nlohmann::json layer = PutBlob(layout, *layer_data, "application/vnd.oci.image.layer.v1.tar");
  nlohmann::json config = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {layer["digest"]}}}},
      {"config",
       {{"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
        {"Cmd", {"/bin/sh"}}}}};
  nlohmann::json cfg = PutBlob(layout, config.dump(), "application/vnd.oci.image.config.v1+json");
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"config", cfg},
                             {"layers", {layer}}};
  nlohmann::json m = PutBlob(layout, manifest.dump(), "application/vnd.oci.image.manifest.v1+json");
  nlohmann::json index = {{"schemaVersion", 2}, {"manifests", {m}}};
  std::ofstream(layout + "/index.json") << index.dump();
  std::ofstream(layout + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
}

}  // namespace

void AgentTest::SetUpTestSuite() {
  if (geteuid() != 0) return;
  image_dir_ = absl::StrCat("/tmp/ag-img-", getpid());
  std::string cmd = absl::StrCat(SHOAL_SOURCE_DIR, "/scripts/mkimage ", image_dir_, " ",
                                 SHOAL_PROBE_PATH, " >/dev/null");
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
}

void AgentTest::TearDownTestSuite() {
  if (!image_dir_.empty()) std::filesystem::remove_all(image_dir_);
}

void AgentTest::SetUp() {
  SHOAL_REQUIRE_ROOT();
  auto f = kernel::ProbeFeatures();
  ASSERT_TRUE(f.ok()) << f.status();
  features_ = *f;
  char tmpl[] = "/tmp/ag-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  cgroup_parent_ = absl::StrCat("ag-test-", getpid());

  // The image store with the test image.
  ASSERT_NO_FATAL_FAILURE(WriteLayout(image_dir_, dir_ + "/oci"));
  auto store = images::Store::Open(dir_ + "/images");
  ASSERT_TRUE(store.ok()) << store.status();
  images::ImportOptions io;
  auto ref = images::ParseReference(kImage);
  ASSERT_TRUE(ref.ok());
  io.extra_tags.push_back(*ref);
  auto imported = images::ImportImages(**store, dir_ + "/oci", io);
  ASSERT_TRUE(imported.ok()) << imported.status();
  std::filesystem::remove_all(dir_ + "/oci");

  // One manager; the agent joins with the worker token.
  manager::node::ManagerOptions mo;
  mo.state_dir = dir_ + "/manager";
  mo.listen_addr = "127.0.0.1:0";
  mo.control_socket = dir_ + "/control.sock";
  mo.init = true;
  mo.clock = &clock_;
  mo.random = &random_;
  mo.heartbeat_period = absl::Seconds(1);
  auto m = manager::node::Manager::Start(mo);
  ASSERT_TRUE(m.ok()) << m.status();
  manager_ = *std::move(m);
  ASSERT_TRUE(WaitFor([&] { return manager_->IsLeader(); }));
  auto tokens = manager_->JoinTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  auto joined = manager::ca::Join(manager_->address(), tokens->first, clock_);
  ASSERT_TRUE(joined.ok()) << joined.status();
  worker_ = *joined;
  control_ = api::Control::NewStub(
      grpc::CreateChannel("unix:" + mo.control_socket, grpc::InsecureChannelCredentials()));
}

AgentOptions AgentTest::Options() {
  AgentOptions o;
  o.state_dir = dir_ + "/agent";
  o.exec_root = dir_ + "/exec";
  o.cgroup_parent = cgroup_parent_;
  o.cgroup.mode = features_.cgroup_mode;
  o.monitor_path = SHOAL_MONITOR_PATH;
  o.image_root = dir_ + "/images";
  o.pull_missing_images = false;
  o.managers = {manager_->address()};
  manager::ca::TlsMaterial tls = worker_.tls;
  o.dial = [tls](const std::string& addr) {
    return manager::ca::DialManager(addr, manager::ca::ChannelCredentials(tls));
  };
  o.description.set_hostname("ag-test-worker");
  return o;
}

void AgentTest::StartAgent() {
  auto a = Agent::Start(Options());
  ASSERT_TRUE(a.ok()) << a.status();
  agent_ = *std::move(a);
}

void AgentTest::StopAgent() {
  if (agent_) agent_->Stop();
  agent_.reset();
}

std::vector<std::string> AgentTest::ContainerCgroups() const {
  std::string base = features_.cgroup_mode == kernel::CgroupMode::kV2
                         ? "/sys/fs/cgroup/" + cgroup_parent_
                         : "/sys/fs/cgroup/pids/" + cgroup_parent_;
  std::vector<std::string> out;
  DIR* d = opendir(base.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') out.push_back(e->d_name);
  }
  closedir(d);
  return out;
}

std::vector<pid_t> AgentTest::CgroupProcs(const std::string& task_id) const {
  std::string base = features_.cgroup_mode == kernel::CgroupMode::kV2
                         ? "/sys/fs/cgroup/" + cgroup_parent_
                         : "/sys/fs/cgroup/pids/" + cgroup_parent_;
  std::vector<pid_t> out;
  std::ifstream in(absl::StrCat(base, "/", task_id, "/cgroup.procs"));
  pid_t pid;
  while (in >> pid) out.push_back(pid);
  return out;
}

bool AgentTest::ProcessAlive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  // A zombie counts as gone.
  auto stat = base::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  size_t close = stat->rfind(')');
  return close == std::string::npos || stat->substr(close + 2, 1) != "Z";
}

std::string AgentTest::Cmdline(pid_t pid) {
  auto text = base::ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!text.ok()) return "";
  std::string s = *text;
  for (char& c : s) {
    if (c == '\0') c = ' ';
  }
  return s;
}

std::vector<std::string> AgentTest::MountsUnderDir() const {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint;
    fields >> id >> parent >> devno >> root >> mountpoint;
    if (mountpoint.rfind(dir_ + "/", 0) == 0) found.push_back(mountpoint);
  }
  return found;
}

api::Service AgentTest::CreateService(const std::string& name, uint64_t replicas,
                                      std::vector<std::string> args,
                                      const std::function<void(api::ServiceSpec&)>& edit) {
  api::CreateServiceRequest req;
  api::ServiceSpec& spec = *req.mutable_spec();
  spec.mutable_annotations()->set_name(name);
  spec.mutable_replicated()->set_replicas(replicas);
  auto* c = spec.mutable_task()->mutable_container();
  c->set_image(kImage);
  for (auto& a : args) c->add_args(a);
  c->mutable_stop_grace_period()->set_seconds(2);
  spec.mutable_task()->mutable_restart()->mutable_delay();  // restart at once
  if (edit) edit(spec);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  api::CreateServiceResponse resp;
  grpc::Status s = control_->CreateService(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.service();
}

void AgentTest::Scale(const std::string& service_id, uint64_t replicas) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    grpc::ClientContext gctx;
    api::GetServiceRequest greq;
    greq.set_service_id(service_id);
    api::GetServiceResponse gresp;
    ASSERT_TRUE(control_->GetService(&gctx, greq, &gresp).ok());
    api::UpdateServiceRequest req;
    req.set_service_id(service_id);
    *req.mutable_service_version() = gresp.service().meta().version();
    *req.mutable_spec() = gresp.service().spec();
    req.mutable_spec()->mutable_replicated()->set_replicas(replicas);
    grpc::ClientContext ctx;
    api::UpdateServiceResponse resp;
    grpc::Status s = control_->UpdateService(&ctx, req, &resp);
    if (s.ok()) return;
  }
  FAIL() << "UpdateService kept failing";
}

std::vector<api::Task> AgentTest::Tasks(const std::string& service_id) {
  std::vector<api::Task> out;
  for (const auto& t :
       manager_->store().View().Find<api::Task>(manager::store::ByServiceId(service_id))) {
    out.push_back(*t);
  }
  return out;
}

std::vector<api::Task> AgentTest::RunningTasks(const std::string& service_id) {
  std::vector<api::Task> out;
  for (const auto& t : Tasks(service_id)) {
    if (t.status().state() == api::TASK_STATE_RUNNING &&
        t.desired_state() == api::TASK_STATE_RUNNING) {
      out.push_back(t);
    }
  }
  return out;
}

void AgentTest::KillContainers(const std::string& exec_root) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(exec_root + "/containers", ec)) {
    auto c = runtime::MonitorClient::Adopt(e.path().string());
    if (!c.ok()) continue;
    auto st = (*c)->State();
    if (st.ok() && !st->has_exit && st->status != "stopped") {
      (void)(*c)->Stop(SIGKILL, absl::ZeroDuration());
      (void)(*c)->Wait(absl::Seconds(10));
    }
  }
}

void AgentTest::TearDown() {
  StopAgent();
  if (dir_.empty()) return;
  KillContainers(dir_ + "/exec");
  if (manager_) manager_->Stop();
  manager_.reset();
  for (const std::string& m : MountsUnderDir()) ::umount2(m.c_str(), MNT_DETACH);
  std::vector<std::string> bases;
  if (features_.cgroup_mode == kernel::CgroupMode::kV2) {
    bases.push_back("/sys/fs/cgroup/" + cgroup_parent_);
  } else {
    for (const std::string& c : kernel::V1Controllers()) {
      bases.push_back(absl::StrCat("/sys/fs/cgroup/", c, "/", cgroup_parent_));
    }
  }
  for (const std::string& b : bases) {
    DIR* d = opendir(b.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') rmdir((b + "/" + e->d_name).c_str());
    }
    closedir(d);
    rmdir(b.c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace shoal::agent::testing
