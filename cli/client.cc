#include "cli/client.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

namespace shoal::cli {

std::string SocketPath(const std::string& flag_value) {
  std::string v = flag_value;
  if (v.empty()) {
    const char* env = std::getenv("SHOAL_HOST");
    if (env != nullptr) v = env;
  }
  if (v.empty()) return kDefaultSocket;
  if (v.rfind("unix://", 0) == 0) return v.substr(7);
  if (v.rfind("unix:", 0) == 0) return v.substr(5);
  return v;
}

Client::Client(std::string socket_path) : path_(std::move(socket_path)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  channel_ = grpc::CreateCustomChannel("unix:" + path_, grpc::InsecureChannelCredentials(), args);
  swarm_ = api::Swarm::NewStub(channel_);
  control_ = api::Control::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> Client::Context(bool long_call) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(long_call ? 90 : 30));
  return ctx;
}

int Client::Fail(const grpc::Status& s) const {
  struct stat st {};
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (::stat(path_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))) {
    std::fprintf(stderr,
                 "Cannot connect to shoald at unix://%s (no socket there). Is shoald running? "
                 "(pick another socket with -H or SHOAL_HOST)\n",
                 path_.c_str());
    return 1;
  }
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE &&
      s.error_message().find("connect") != std::string::npos) {
    std::fprintf(stderr, "Cannot connect to shoald at unix://%s: %s. Is shoald running?\n",
                 path_.c_str(), s.error_message().c_str());
    return 1;
  }
  std::fprintf(stderr, "Error response from daemon: %s\n", s.error_message().c_str());
  return 1;
}

int FailLocal(const absl::Status& s) {
  std::fprintf(stderr, "Error: %s\n", std::string(s.message()).c_str());
  return 1;
}

}  // namespace shoal::cli
