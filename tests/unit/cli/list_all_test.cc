// ListAll: every page of a List call, and a retry from the first page (nothing of the failed
// try kept) while the cluster has no leader.
#include "cli/commands.h"

#include "gtest/gtest.h"

namespace shoal::cli {
namespace {

// A fake ListNodes: two pages ("a","b" then "c"); the first `unavailable` calls fail with
// "no leader" after the first page was served.
struct FakeList {
  int unavailable = 0;
  std::vector<std::string> tokens_seen;
  grpc::Status operator()(grpc::ClientContext*, const api::ListNodesRequest& req,
                          api::ListNodesResponse* resp) {
    tokens_seen.push_back(req.page().page_token());
    if (req.page().page_token().empty()) {
      resp->add_nodes()->set_id("a");
      resp->add_nodes()->set_id("b");
      resp->set_next_page_token("p2");
      return grpc::Status::OK;
    }
    if (unavailable > 0) {
      --unavailable;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader elected yet");
    }
    resp->add_nodes()->set_id("c");
    return grpc::Status::OK;
  }
};

std::vector<std::string> Ids(const std::vector<api::Node>& nodes) {
  std::vector<std::string> ids;
  for (const auto& n : nodes) ids.push_back(n.id());
  return ids;
}

grpc::Status List(FakeList& fake, std::vector<api::Node>* out) {
  return ListAll<api::Node, api::ListNodesRequest, api::ListNodesResponse>(
      api::ListNodesRequest{}, [&](auto* ctx, const auto& r, auto* o) { return fake(ctx, r, o); },
      [](const api::ListNodesResponse& r) { return r.nodes(); }, out);
}

TEST(ListAll, FollowsThePages) {
  FakeList fake;
  std::vector<api::Node> out = {api::Node()};  // cleared first
  ASSERT_TRUE(List(fake, &out).ok());
  EXPECT_EQ(Ids(out), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(fake.tokens_seen, (std::vector<std::string>{"", "p2"}));
}

TEST(ListAll, RetriesFromTheFirstPageWithoutALeader) {
  FakeList fake;
  fake.unavailable = 1;
  std::vector<api::Node> out;
  ASSERT_TRUE(List(fake, &out).ok());
  EXPECT_EQ(Ids(out), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(fake.tokens_seen, (std::vector<std::string>{"", "p2", "", "p2"}));
}

}  // namespace
}  // namespace shoal::cli
