// The API contract that other code relies on: task states compare monotonically, objects
// round-trip through the wire format, and the gRPC services exist with the expected methods.
#include "api/control.grpc.pb.h"
#include "api/dispatcher.grpc.pb.h"
#include "api/objects.pb.h"
#include "api/raft.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace shoal::api::v1 {
namespace {

TEST(ApiTest, TaskStatesAreSpacedAndOrdered) {
  const TaskState order[] = {
      TASK_STATE_NEW,      TASK_STATE_PENDING,  TASK_STATE_ASSIGNED, TASK_STATE_ACCEPTED,
      TASK_STATE_PREPARING, TASK_STATE_READY,   TASK_STATE_STARTING, TASK_STATE_RUNNING,
      TASK_STATE_COMPLETE, TASK_STATE_SHUTDOWN, TASK_STATE_FAILED,   TASK_STATE_REJECTED,
      TASK_STATE_REMOVE,   TASK_STATE_ORPHANED};
  for (size_t i = 1; i < std::size(order); ++i) {
    EXPECT_LT(order[i - 1], order[i]) << TaskState_Name(order[i]);
  }
  EXPECT_EQ(TASK_STATE_RUNNING, 512);
  EXPECT_EQ(TASK_STATE_ASSIGNED, 192);
  EXPECT_EQ(TASK_STATE_ORPHANED, 832);
}

TEST(ApiTest, TaskRoundTripsThroughWireFormat) {
  Task t;
  t.set_id("abcdefghijklmnopqrstuvwxy");
  t.mutable_meta()->mutable_version()->set_index(42);
  t.set_service_id("svc");
  t.set_slot(3);
  t.set_desired_state(TASK_STATE_RUNNING);
  t.mutable_status()->set_state(TASK_STATE_PREPARING);
  auto* c = t.mutable_spec()->mutable_container();
  c->set_image("busybox:latest");
  c->add_args("sleep");
  c->add_args("inf");
  auto* net = t.add_networks();
  net->set_network_id("net1");
  net->add_addresses("10.0.1.5/24");

  std::string wire;
  ASSERT_TRUE(t.SerializeToString(&wire));
  Task back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.meta().version().index(), 42u);
  EXPECT_EQ(back.spec().container().args(1), "inf");
  EXPECT_EQ(back.networks(0).addresses(0), "10.0.1.5/24");
  EXPECT_EQ(back.status().state(), TASK_STATE_PREPARING);
}

TEST(ApiTest, ServiceModeIsOneOf) {
  ServiceSpec spec;
  spec.mutable_replicated()->set_replicas(3);
  EXPECT_EQ(spec.mode_case(), ServiceSpec::kReplicated);
  spec.mutable_global();
  EXPECT_EQ(spec.mode_case(), ServiceSpec::kGlobal);
  EXPECT_FALSE(spec.has_replicated());
}

TEST(ApiTest, ServicesExposeExpectedMethods) {
  // Touch one message per file so the static library's descriptors are linked in.
  EXPECT_EQ(ListTasksRequest::descriptor()->file()->name(), "api/control.proto");
  EXPECT_EQ(RaftMessage::descriptor()->file()->name(), "api/raft.proto");
  EXPECT_EQ(AssignmentsMessage::descriptor()->file()->name(), "api/dispatcher.proto");
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* control = pool->FindServiceByName("shoal.api.v1.Control");
  ASSERT_NE(control, nullptr);
  for (const char* m : {"CreateService", "ListTasks", "UpdateCluster", "Watch"}) {
    EXPECT_NE(control->FindMethodByName(m), nullptr) << m;
  }
  EXPECT_TRUE(control->FindMethodByName("Watch")->server_streaming());
  EXPECT_TRUE(pool->FindServiceByName("shoal.api.v1.Raft")
                  ->FindMethodByName("StreamRaftMessage")
                  ->client_streaming());
  EXPECT_TRUE(pool->FindServiceByName("shoal.api.v1.Dispatcher")
                  ->FindMethodByName("Assignments")
                  ->server_streaming());
  // The generated gRPC stubs exist for the services other code implements.
  EXPECT_STREQ(Control::service_full_name(), "shoal.api.v1.Control");
}

}  // namespace
}  // namespace shoal::api::v1
