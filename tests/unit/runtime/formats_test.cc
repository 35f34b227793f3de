// Pure formats of the runtime: spec JSON round trip, OCI config.json conversion, JSON-lines
// log writer with partial lines and rotation.
#include <stdlib.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/monitor/log_writer.h"
#include "runtime/oci/config.h"
#include "runtime/spec_json.h"

namespace shoal::runtime {
namespace {

TEST(SpecJson, RoundTrips) {
  ContainerSpec s;
  s.id = "c1";
  s.rootfs = "/r";
  s.readonly_rootfs = true;
  s.hostname = "h";
  s.process.args = {"sh", "-c", "x"};
  s.process.env = {"A=B"};
  s.process.uid = 5;
  s.process.cap_add = {"NET_ADMIN"};
  s.process.rlimits = {{"nofile", 1, 2}};
  s.mounts = {{"/d", "bind", "/s", {"ro"}}};
  s.resources.memory_limit = 100000;
  s.resources.pids_limit = 3;
  s.resources.cpuset_cpus = "0";
  s.uid_mappings = {{0, 100000, 65536}};
  s.gid_mappings = {{0, 200000, 1}, {1, 300000, 10}};
  auto back = SpecFromJson(SpecToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(SpecToJson(*back), SpecToJson(s));
  EXPECT_EQ(back->gid_mappings, s.gid_mappings);
  EXPECT_EQ(back->resources.pids_limit, 3);
  EXPECT_FALSE(back->resources.cpu_quota_us.has_value());
  auto bad = SpecFromJson(R"({"process": {"uid": "root"}})");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_FALSE(SpecFromJson("[1]").ok());
}

TEST(OciConfig, ConvertsTheSupportedSubset) {
  const char* config = R"({
    "ociVersion": "1.0.2", "hostname": "h",
    "process": {"args": ["/bin/true"], "env": ["PATH=/bin"], "cwd": "/w",
                "user": {"uid": 1, "gid": 2, "additionalGids": [3]},
                "capabilities": {"bounding": ["CAP_KILL"]}, "noNewPrivileges": true,
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]},
    "root": {"path": "rootfs", "readonly": true},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/data", "type": "bind", "source": "vol", "options": ["rbind", "ro"]},
               {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}],
    "linux": {"namespaces": [{"type": "network", "path": "/run/netns/x"}, {"type": "mount"},
                             {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}],
              "resources": {"memory": {"limit": 1048576, "swap": 2097152},
                            "cpu": {"quota": 5000, "period": 10000, "cpus": "0"},
                            "pids": {"limit": 9}},
              "maskedPaths": ["/proc/kcore"], "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}})";
  auto s = SpecFromOciConfig(config, "/b", "id1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rootfs, "/b/rootfs");
  EXPECT_TRUE(s->readonly_rootfs);
  EXPECT_EQ(s->process.cwd, "/w");
  EXPECT_EQ(s->process.additional_gids, std::vector<uint32_t>{3});
  EXPECT_EQ(s->process.cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(s->process.cap_add, std::vector<std::string>{"CAP_KILL"});
  EXPECT_TRUE(s->process.no_new_privileges);
  EXPECT_TRUE(s->process.seccomp);
  EXPECT_TRUE(s->mask_paths);
  EXPECT_EQ(s->netns_path, "/run/netns/x");
  ASSERT_EQ(s->mounts.size(), 2u);  // /proc is the runtime's own
  EXPECT_EQ(s->mounts[0].source, "/b/vol");
  EXPECT_EQ(s->mounts[0].options, std::vector<std::string>{"ro"});
  EXPECT_EQ(s->mounts[1].type, "tmpfs");
  EXPECT_EQ(*s->resources.memory_swap, 2097152);
  EXPECT_EQ(*s->resources.cpu_period_us, 10000u);
  EXPECT_EQ(*s->resources.pids_limit, 9);
}

TEST(OciConfig, UserNamespaceMappingsReachTheSpec) {
  auto s = SpecFromOciConfig(
      R"({"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "ipc"},
                                   {"type": "uts"}, {"type": "network"}, {"type": "user"}],
                    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                    "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}})",
      "/b", "i");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->uid_mappings.size(), 1u);
  EXPECT_EQ(s->uid_mappings[0], (kernel::IdMapping{0, 100000, 65536}));
  ASSERT_EQ(s->gid_mappings.size(), 1u);
  EXPECT_EQ(s->gid_mappings[0].host_id, 200000u);
}

TEST(OciConfig, RejectsWhatItCannotHonour) {
  auto tty = SpecFromOciConfig(R"({"process": {"terminal": "yes", "args": ["sh"]}})", "/b", "i");
  EXPECT_TRUE(absl::StrContains(tty.status().message(), "process.terminal: must be a boolean"))
      << tty.status();
  auto size = SpecFromOciConfig(
      R"({"process": {"terminal": true, "consoleSize": {"height": 70000}, "args": ["sh"]}})", "/b",
      "i");
  EXPECT_TRUE(absl::StrContains(size.status().message(), "process.consoleSize.height: "))
      << size.status();
  auto userns = SpecFromOciConfig(R"({"linux": {"namespaces": [{"type": "user"}]}})", "/b", "i");
  EXPECT_TRUE(absl::StrContains(userns.status().message(), "uidMappings")) << userns.status();
  auto badmap = SpecFromOciConfig(
      R"({"linux": {"namespaces": [{"type": "user"}],
                    "uidMappings": [{"containerID": 0, "hostID": -5, "size": 10}]}})",
      "/b", "i");
  EXPECT_TRUE(absl::StrContains(badmap.status().message(), "linux.uidMappings[0].hostID"))
      << badmap.status();
  auto joined = SpecFromOciConfig(
      R"({"linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}})", "/b", "i");
  EXPECT_TRUE(absl::StrContains(joined.status().message(), "linux.namespaces[0]"))
      << joined.status();
  auto overlay = SpecFromOciConfig(
      R"({"mounts": [{"destination": "/x", "type": "overlay", "source": "o"}]})", "/b", "i");
  EXPECT_TRUE(absl::StrContains(overlay.status().message(), "mounts[0].type")) << overlay.status();
}

class LogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A directory of its own: ctest runs these tests as parallel processes.
    std::string tmpl = ::testing::TempDir() + "/logwriter-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<nlohmann::json> Lines(const std::string& file) {
    std::vector<nlohmann::json> out;
    auto text = base::ReadFile(file);
    if (!text.ok()) return out;
    for (absl::string_view l : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      out.push_back(nlohmann::json::parse(l));
    }
    return out;
  }
  std::string dir_;
};

TEST_F(LogWriterTest, JoinsPartialReadsPerStreamAndFlushesTheRest) {
  LogWriter w(dir_ + "/c.log", 0, 1);
  ASSERT_TRUE(w.Open().ok());
  absl::Time t = absl::FromUnixSeconds(1700000000);
  ASSERT_TRUE(w.Write("stdout", "hel", t).ok());
  ASSERT_TRUE(w.Write("stderr", "oops\n", t).ok());
  ASSERT_TRUE(w.Write("stdout", "lo\nwor", t).ok());
  ASSERT_TRUE(w.Flush(t).ok());
  auto lines = Lines(dir_ + "/c.log");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["stream"], "stderr");
  EXPECT_EQ(lines[0]["log"], "oops\n");
  EXPECT_EQ(lines[1]["log"], "hello\n");
  EXPECT_EQ(lines[2]["log"], "wor");
  EXPECT_EQ(lines[1]["time"], "2023-11-14T22:13:20.000000000Z");
}

TEST_F(LogWriterTest, RotatesAtMaxSizeKeepingMaxFiles) {
  LogWriter w(dir_ + "/c.log", 500, 3);
  ASSERT_TRUE(w.Open().ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(w.Write("stdout", "line " + std::to_string(i) + "\n", absl::Now()).ok());
  }
  for (const char* f : {"/c.log", "/c.log.1", "/c.log.2"}) {
    ASSERT_TRUE(std::filesystem::exists(dir_ + f)) << f;
    EXPECT_LE(std::filesystem::file_size(dir_ + f), 500u) << f;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/c.log.3"));
  EXPECT_EQ(Lines(dir_ + "/c.log").back()["log"], "line 99\n");
}

TEST_F(LogWriterTest, SplitsOverlongLines) {
  LogWriter w(dir_ + "/c.log", 0, 1);
  ASSERT_TRUE(w.Open().ok());
  ASSERT_TRUE(w.Write("stdout", std::string(40000, 'x'), absl::Now()).ok());
  auto lines = Lines(dir_ + "/c.log");
  ASSERT_EQ(lines.size(), 2u);  // two 16 KiB chunks written, the rest still buffered
  EXPECT_EQ(std::string(lines[0]["log"]).size(), 16384u);
}

TEST(OciConfig, TerminalAndConsoleSize) {
  auto config = [](const std::string& process) {
    return absl::StrCat(R"({"process": )", process,
                        R"(, "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"},
                        {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]}})");
  };
  auto s = SpecFromOciConfig(
      config(R"({"terminal": true, "consoleSize": {"height": 30, "width": 100}, "args": ["sh"]})"),
      "/b", "i");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->process.terminal);
  EXPECT_EQ(s->process.terminal_rows, 30);
  EXPECT_EQ(s->process.terminal_cols, 100);
  // runc uses consoleSize only with a terminal.
  s = SpecFromOciConfig(config(R"({"consoleSize": {"height": 30, "width": 100}, "args": ["sh"]})"),
                        "/b", "i");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->process.terminal);
  EXPECT_EQ(s->process.terminal_rows, 0);
}

}  // namespace
}  // namespace shoal::runtime
