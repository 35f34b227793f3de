#include "daemon/node_state.h"

#include <stdlib.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace shoal::daemon {
namespace {

TEST(NodeState, Addresses) {
  EXPECT_EQ(*NormalizeAddr("--listen-addr", "127.0.0.1", 2377), "127.0.0.1:2377");
  EXPECT_EQ(*NormalizeAddr("--listen-addr", "10.0.0.1:4000", 2377), "10.0.0.1:4000");
  auto bad = NormalizeAddr("--listen-addr", "example:1", 2377);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "--listen-addr:")) << bad.status();
  auto port = NormalizeAddr("--advertise-addr", "10.0.0.1:99999", 2377);
  ASSERT_FALSE(port.ok());
  EXPECT_TRUE(absl::StartsWith(port.status().message(), "--advertise-addr:")) << port.status();
  EXPECT_EQ(*DefaultAdvertiseAddr("127.0.0.1:2377"), "127.0.0.1:2377");
}

TEST(NodeState, SaveLoadRemove) {
  char tmpl[] = "/tmp/dc-nodestate-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  EXPECT_FALSE(HasNodeState(root));
  ASSERT_TRUE(std::filesystem::create_directories(SwarmDir(root)));
  NodeState s;
  s.manager = true;
  s.listen_addr = "0.0.0.0:2377";
  s.advertise_addr = "10.0.0.1:2377";
  s.managers = {"10.0.0.2:2377", "10.0.0.1:2377"};
  s.data_path_port = 4790;
  ASSERT_TRUE(SaveNodeState(root, s).ok());
  EXPECT_TRUE(HasNodeState(root));
  auto got = LoadNodeState(root);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->manager);
  EXPECT_EQ(got->advertise_addr, "10.0.0.1:2377");
  EXPECT_EQ(got->managers, s.managers);
  EXPECT_EQ(got->data_path_port, 4790u);
  ASSERT_TRUE(RemoveSwarmState(root).ok());
  EXPECT_FALSE(HasNodeState(root));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace shoal::daemon
