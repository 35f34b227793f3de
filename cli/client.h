// The connection to shoald: its unix socket (--host/-H, else $SHOAL_HOST, else
// /run/shoal/shoald.sock; "unix://" prefix optional), the Swarm and Control stubs, call
// deadlines, and error reporting in the docker CLI's style ("Error response from daemon: ...").
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "api/control.grpc.pb.h"
#include "api/swarm.grpc.pb.h"

namespace shoal::cli {

namespace api = ::shoal::api::v1;

inline constexpr char kDefaultSocket[] = "/run/shoal/shoald.sock";

// Picks the socket path from the flag value and the environment.
std::string SocketPath(const std::string& flag_value);

class Client {
 public:
  explicit Client(std::string socket_path);

  api::Swarm::Stub& swarm() { return *swarm_; }
  api::Control::Stub& control() { return *control_; }
  const std::string& socket_path() const { return path_; }

  // A context with the default deadline (30 s; `long_call` 90 s for init/join).
  static std::unique_ptr<grpc::ClientContext> Context(bool long_call = false);

  // Prints the error of a failed call and returns the exit status (1).
  int Fail(const grpc::Status& s) const;

 private:
  std::string path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<api::Swarm::Stub> swarm_;
  std::unique_ptr<api::Control::Stub> control_;
};

// Prints "<what>: <message>" for a client-side validation error; returns the exit status (1).
int FailLocal(const absl::Status& s);

// Runs a read-only Control call, retrying while the cluster has no leader (an election).
template <typename Fn>
grpc::Status CallRetrying(Fn&& fn) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    grpc::Status s = fn();
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        s.error_message().find("leader") == std::string::npos ||
        std::chrono::steady_clock::now() > deadline) {
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace shoal::cli
