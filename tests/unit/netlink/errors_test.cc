#include "kernel/netlink/errors.h"

#include <netlink/errno.h>

#include "gtest/gtest.h"

namespace shoal::kernel {
namespace {

TEST(NlStatusTest, MapsLibnlCodesToCanonicalCodes) {
  EXPECT_TRUE(NlStatus(0, "x").ok());
  EXPECT_TRUE(NlStatus(5, "x").ok());
  EXPECT_EQ(NlStatus(-NLE_EXIST, "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(NlStatus(-NLE_OBJ_NOTFOUND, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(NlStatus(-NLE_NODEV, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(NlStatus(-NLE_INVAL, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NlStatus(-NLE_RANGE, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NlStatus(-NLE_PERM, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(NlStatus(-NLE_NOACCESS, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(NlStatus(-NLE_BUSY, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NlStatus(-NLE_NOMEM, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(NlStatus(-NLE_OPNOTSUPP, "x").code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(NlStatus(-NLE_FAILURE, "x").code(), absl::StatusCode::kInternal);
}

TEST(NlStatusTest, MessageHasContextAndLibnlText) {
  absl::Status s = NlStatus(-NLE_EXIST, "create bridge br0");
  EXPECT_EQ(std::string(s.message()), std::string("create bridge br0: ") + nl_geterror(-NLE_EXIST));
}

}  // namespace
}  // namespace shoal::kernel
