// Manager clusters without workers: replication, forwarding to the leader, leader loss and
// restart, join tokens and certificates, demotions and quorum.
#include "tests/unit/manager_node/fixture.h"

namespace shoal::manager::node::clustertest {
namespace {

TEST_F(ManagerClusterTest, ThreeManagersReplicateAndTheLeaderCreatesTasks) {
  StartThree();
  ASSERT_EQ(managers_.size(), 3u);
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  api::Service svc;
  auto stub = LocalControl(IndexOf(leader));
  ASSERT_TRUE(CreateService(*stub, "web", 3, &svc).ok());
  // Every replica sees the service and the three tasks the leader's orchestrator created.
  for (auto& m : managers_) {
    ASSERT_TRUE(WaitFor([&] { return TasksOf(*m, svc.id()) == 3; }))
        << "manager " << m->identity().node_id << " has " << TasksOf(*m, svc.id()) << " tasks";
    EXPECT_NE(m->store().View().Get<api::Service>(svc.id()), nullptr);
  }
  // Three manager Node objects with manager certificates.
  auto nodes = leader->store().View().Find<api::Node>(store::All());
  EXPECT_EQ(nodes.size(), 3u);
  for (const auto& n : nodes) EXPECT_EQ(n->role(), api::NODE_ROLE_MANAGER);
  // The leader records every manager's raft id and address, and which one leads.
  EXPECT_TRUE(WaitFor([&] {
    int leaders = 0, with_addr = 0;
    for (const auto& n : leader->store().View().Find<api::Node>(store::All())) {
      leaders += n->manager_status().leader() ? 1 : 0;
      with_addr += n->manager_status().addr().empty() ? 0 : 1;
    }
    return leaders == 1 && with_addr == 3;
  })) << "Node.manager_status not published";
}

TEST_F(ManagerClusterTest, FollowerForwardsControlCallsToTheLeader) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  int follower = (IndexOf(leader) + 1) % 3;
  EXPECT_EQ(managers_[follower]->leader_address(), leader->address());
  // Over the follower's local socket: the write lands through the leader.
  auto stub = LocalControl(follower);
  api::Service svc;
  auto s = CreateService(*stub, "via-follower", 2, &svc);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(svc.id().empty());
  EXPECT_NE(leader->store().View().Get<api::Service>(svc.id()), nullptr);
  // Validation errors come back from the leader unchanged.
  auto dup = CreateService(*stub, "via-follower", 1);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS) << dup.error_message();
  // And over the follower's mTLS listener with a manager certificate.
  auto remote = api::Control::NewStub(ca::DialManager(
      managers_[follower]->address(), ca::ChannelCredentials(managers_[follower]->tls())));
  grpc::ClientContext ctx;
  api::GetServiceRequest get;
  get.set_service_id("via-follower");
  api::GetServiceResponse got;
  ASSERT_TRUE(remote->GetService(&ctx, get, &got).ok());
  EXPECT_EQ(got.service().id(), svc.id());
}

TEST_F(ManagerClusterTest, LeaderLossMovesTheLeaderComponents) {
  StartThree();
  Manager* old = Leader();
  ASSERT_NE(old, nullptr);
  int old_index = IndexOf(old);
  old->Stop();
  Manager* next = nullptr;
  ASSERT_TRUE(WaitFor([&] {
    for (size_t i = 0; i < managers_.size(); ++i) {
      if (static_cast<int>(i) != old_index && managers_[i]->IsLeader()) next = managers_[i].get();
    }
    return next != nullptr;
  })) << "no new leader among the two remaining managers";
  api::Service svc;
  auto stub = LocalControl(IndexOf(next));
  ASSERT_TRUE(WaitFor([&] { return CreateService(*stub, "after", 2, &svc).ok(); }));
  EXPECT_TRUE(WaitFor([&] { return TasksOf(*next, svc.id()) == 2; }))
      << "the new leader's orchestrator did not create the tasks";
}

TEST_F(ManagerClusterTest, RestartedManagerCatchesUpFromItsStateDir) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  int victim = (IndexOf(leader) + 1) % 3;
  std::string node_id = managers_[victim]->identity().node_id;
  std::string addr = managers_[victim]->address();  // peers know it by this address
  managers_[victim]->Stop();
  managers_[victim].reset();
  api::Service svc;
  auto stub = LocalControl(IndexOf(leader));
  ASSERT_TRUE(CreateService(*stub, "while-down", 1, &svc).ok());

  ManagerOptions o = Options(victim);
  o.listen_addr = addr;
  auto restarted = Manager::Start(o);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  managers_[victim] = *std::move(restarted);
  EXPECT_EQ(managers_[victim]->identity().node_id, node_id) << "same identity after restart";
  EXPECT_TRUE(WaitFor([&] {
    return managers_[victim]->store().View().Get<api::Service>(svc.id()) != nullptr;
  })) << "the restarted manager never caught up";
}

TEST_F(ManagerClusterTest, WorkerTokenCannotJoinAsAManagerAndWorkersCannotUseControl) {
  Manager* m0 = StartInit();
  ASSERT_NE(m0, nullptr);
  auto tokens = m0->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  ManagerOptions o = Options(1);
  o.join_addr = m0->address();
  o.join_token = tokens->first;
  auto bad = Manager::Start(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();

  auto worker = ca::Join(m0->address(), tokens->first, clock_);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto control =
      api::Control::NewStub(ca::DialManager(m0->address(), ca::ChannelCredentials(worker->tls)));
  grpc::ClientContext ctx;
  api::ListNodesResponse resp;
  EXPECT_EQ(control->ListNodes(&ctx, {}, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// Node.manager_status.reachability as the leader's raft sees each manager, and SwarmKit's
// demotion rule on top of it: quorum of the configuration left after the removal, counting
// only managers that are reachable now.
TEST_F(ManagerClusterTest, StoppedManagerIsUnreachableAndDemotionsKeepQuorum) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto stub = LocalControl(IndexOf(leader));
  auto get_node = [&](const std::string& id) {
    grpc::ClientContext ctx;
    api::GetNodeRequest req;
    req.set_node_id(id);
    api::GetNodeResponse resp;
    auto s = stub->GetNode(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.node();
  };
  auto list_reachability = [&] {
    std::map<std::string, api::ManagerStatus::Reachability> out;
    grpc::ClientContext ctx;
    api::ListNodesResponse resp;
    if (!stub->ListNodes(&ctx, {}, &resp).ok()) return out;
    for (const auto& n : resp.nodes()) out[n.id()] = n.manager_status().reachability();
    return out;
  };
  const auto kReachable = api::ManagerStatus::REACHABILITY_REACHABLE;
  const auto kUnreachable = api::ManagerStatus::REACHABILITY_UNREACHABLE;
  ASSERT_TRUE(WaitFor([&] {
    auto r = list_reachability();
    return r.size() == 3 &&
           std::all_of(r.begin(), r.end(), [&](auto& kv) { return kv.second == kReachable; });
  })) << "all three managers should be REACHABLE";

  int down_index = (IndexOf(leader) + 1) % 3, up_index = (IndexOf(leader) + 2) % 3;
  const std::string down = managers_[down_index]->identity().node_id;
  const std::string up = managers_[up_index]->identity().node_id;
  managers_[down_index]->Stop();
  ASSERT_TRUE(WaitFor([&] { return list_reachability()[down] == kUnreachable; }))
      << "the stopped manager never showed UNREACHABLE";
  api::Node d = get_node(down);
  EXPECT_EQ(d.manager_status().reachability(), kUnreachable);
  EXPECT_FALSE(d.manager_status().leader());
  EXPECT_EQ(get_node(up).manager_status().reachability(), kReachable);
  api::Node l = get_node(leader->identity().node_id);
  EXPECT_EQ(l.manager_status().reachability(), kReachable);
  EXPECT_TRUE(l.manager_status().leader());

  // Written on change only: nothing changes, so no node is rewritten over several periods.
  std::map<std::string, uint64_t> versions;
  for (const auto& n : leader->store().View().Find<api::Node>(store::All())) {
    versions[n->id()] = n->meta().version().index();
  }
  EXPECT_FALSE(WaitFor(
      [&] {
        for (const auto& n : leader->store().View().Find<api::Node>(store::All())) {
          if (versions[n->id()] != n->meta().version().index()) return true;
        }
        return false;
      },
      absl::Seconds(2)))
      << "manager status rewritten although nothing changed";

  auto demote = [&](const std::string& id) {
    api::Node n = get_node(id);
    grpc::ClientContext ctx;
    api::UpdateNodeRequest req;
    req.set_node_id(id);
    *req.mutable_node_version() = n.meta().version();
    *req.mutable_spec() = n.spec();
    req.mutable_spec()->set_desired_role(api::NODE_ROLE_WORKER);
    api::UpdateNodeResponse resp;
    return stub->UpdateNode(&ctx, req, &resp);
  };
  // Demoting the reachable follower would leave the leader and the stopped one: 1 reachable
  // of the 2 left, whose quorum is 2.
  grpc::Status refused = demote(up);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("loss of quorum"), std::string::npos)
      << refused.error_message();
  // So would demoting the leader itself (the follower alone is 1 of 2).
  EXPECT_EQ(demote(leader->identity().node_id).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Demoting the stopped one leaves two reachable managers: allowed, and the role manager
  // takes it out of raft; its manager status goes with it.
  grpc::Status ok = demote(down);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_TRUE(WaitFor([&] {
    auto st = leader->RaftStatus();
    return st.members.size() == 2 && !get_node(down).has_manager_status();
  })) << "the demoted manager is still a raft member";
}

TEST_F(ManagerClusterTest, RotatedWorkerTokenIsRefusedAndTheNewOneJoins) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto before = leader->JoinTokens();
  ASSERT_TRUE(before.ok());
  // Rotate through a follower's local socket: forwarded to the leader like any write.
  auto stub = LocalControl((IndexOf(leader) + 1) % 3);
  api::Cluster cluster;
  {
    grpc::ClientContext ctx;
    api::GetClusterResponse resp;
    ASSERT_TRUE(stub->GetCluster(&ctx, {}, &resp).ok());
    cluster = resp.cluster();
  }
  {
    grpc::ClientContext ctx;
    api::UpdateClusterRequest req;
    *req.mutable_cluster_version() = cluster.meta().version();
    *req.mutable_spec() = cluster.spec();
    req.set_rotate_worker_token(true);
    api::UpdateClusterResponse resp;
    auto s = stub->UpdateCluster(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Every manager takes joins (a follower forwards them to the leader): the old worker token is
  // refused with a clear error wherever it is presented.
  for (auto& m : managers_) {
    ASSERT_TRUE(WaitFor([&] {
      auto t = m->JoinTokens();
      return t.ok() && t->first != before->first;
    })) << "manager "
        << m->identity().node_id << " never saw the rotation";
    auto old = ca::Join(m->address(), before->first, clock_);
    EXPECT_EQ(old.status().code(), absl::StatusCode::kPermissionDenied) << old.status();
    EXPECT_NE(old.status().message().find("wrong or rotated"), absl::string_view::npos)
        << old.status();
  }
  auto after = leader->JoinTokens();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->second, before->second) << "the manager token must not change";
  // The new token joins, here through a follower.
  auto joined = ca::Join(managers_[(IndexOf(leader) + 2) % 3]->address(), after->first, clock_);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->identity.role, ca::Role::kWorker);
  // And the old manager token still makes managers.
  auto manager = ca::Join(leader->address(), before->second, clock_);
  ASSERT_TRUE(manager.ok()) << manager.status();
  EXPECT_EQ(manager->identity.role, ca::Role::kManager);
}

// A renewal may reach any manager: a follower forwards it to the leader naming the node (only
// the leader writes), and the new certificate is read back from the leader.
TEST_F(ManagerClusterTest, RenewalThroughAFollowerIsForwardedToTheLeader) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto tokens = leader->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  const size_t follower = (IndexOf(leader) + 1) % 3;
  auto worker = ca::Join(managers_[follower]->address(), tokens->first, clock_);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto renewed = ca::Renew(managers_[follower]->address(), worker->tls, clock_);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->identity.node_id, worker->identity.node_id);
  EXPECT_EQ(renewed->identity.role, ca::Role::kWorker);
  EXPECT_NE(renewed->tls.cert_pem, worker->tls.cert_pem);
  // The store (read on the leader) holds the renewed certificate under the worker's id.
  auto stub = LocalControl(IndexOf(leader));
  auto node_of = [&](const std::string& id) {
    grpc::ClientContext ctx;
    api::GetNodeRequest req;
    req.set_node_id(id);
    api::GetNodeResponse resp;
    grpc::Status s = stub->GetNode(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.node();
  };
  EXPECT_EQ(node_of(worker->identity.node_id).certificate().certificate(), renewed->tls.cert_pem);
}

}  // namespace
}  // namespace shoal::manager::node::clustertest
