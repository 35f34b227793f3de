// ForEachRef and JsonArray: the output of inspect and rm over several references, byte for byte
// what the docker CLI prints, and which references are still tried after an error.
#include "cli/refs.h"

#include "gtest/gtest.h"

namespace shoal::cli {
namespace {

TEST(Refs, JsonArrayIsDockerInspectsFormat) {
  EXPECT_EQ(JsonArray({}), "[\n]\n");
  EXPECT_EQ(JsonArray({"{\n \"a\": 1\n}"}), "[\n{\n \"a\": 1\n}\n]\n");
  EXPECT_EQ(JsonArray({"{}", "{}", "{}"}), "[\n{},\n{},\n{}\n]\n");
}

// A client that is never connected: only its error reporting is used.
Client Offline() { return Client("/nonexistent/shoaltest-cli-refs.sock"); }

TEST(Refs, InspectPrintsOneArrayAndStopsAtTheFirstError) {
  Client c = Offline();
  std::vector<std::string> called;
  auto call = [&](const std::string& ref, std::string* doc) {
    called.push_back(ref);
    if (ref == "bad") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such node: bad");
    *doc = "{\"id\": \"" + ref + "\"}";
    return grpc::Status::OK;
  };
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(ForEachRef(c, {"a", "b"}, RefOutput::kJsonArray, call), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "[\n{\"id\": \"a\"},\n{\"id\": \"b\"}\n]\n");

  called.clear();
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ForEachRef(c, {"a", "bad", "c"}, RefOutput::kJsonArray, call), 1);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "Error response from daemon: no such node: bad\n");
  EXPECT_EQ(called, (std::vector<std::string>{"a", "bad"}));
}

TEST(Refs, RmPrintsEachRefThatWorkedAndGoesOnAfterAnError) {
  Client c = Offline();
  std::vector<std::string> called;
  auto call = [&](const std::string& ref, std::string*) {
    called.push_back(ref);
    return ref == "bad" ? grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "in use")
                        : grpc::Status::OK;
  };
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ForEachRef(c, {"a", "bad", "c"}, RefOutput::kRefs, call), 1);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "a\nc\n");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "Error response from daemon: in use\n");
  EXPECT_EQ(called, (std::vector<std::string>{"a", "bad", "c"}));

  ::testing::internal::CaptureStdout();
  EXPECT_EQ(ForEachRef(c, {"x"}, RefOutput::kRefs, call), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "x\n");
}

}  // namespace
}  // namespace shoal::cli
