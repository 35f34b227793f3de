// CHECK(cond) << "context";  CHECK_OK(status);
//
// Invariant checks that crash with file:line and the message. Use them for programming
// errors only; conditions caused by the environment (kernel, disk, network, user input)
// return absl::Status instead. (Debian 12's abseil predates absl/log, hence this header.)
#pragma once

#include <sstream>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace shoal::base::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `CHECK(x) << ...` compile as a statement with a streamed tail.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace shoal::base::internal

#define CHECK(condition)                \
  (condition) ? (void)0                 \
              : ::shoal::base::internal::Voidify() & \
                    ::shoal::base::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define CHECK_OK(expr)                                                                   \
  do {                                                                                   \
    const ::absl::Status shoal_check_status_ = (expr);                                   \
    CHECK(shoal_check_status_.ok()) << shoal_check_status_.ToString();                   \
  } while (0)
