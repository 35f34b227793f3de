#include "daemon/control_proxy.h"

#include <atomic>
#include <chrono>
#include <thread>

namespace shoal::daemon {
namespace {

// Calls without a deadline from the client still end: a relayed call waits at most this long.
constexpr auto kDefaultDeadline = std::chrono::seconds(60);

void CopyDeadline(grpc::ServerContext* in, grpc::ClientContext* out) {
  auto cap = std::chrono::system_clock::now() + kDefaultDeadline;
  out->set_deadline(std::min(in->deadline(), cap));
}

}  // namespace

grpc::Status ControlProxy::Relay(grpc::ServerContext* ctx, const Call& call) {
  Target t = target_();
  if (t.stub == nullptr) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, t.why_not);
  grpc::ClientContext out;
  CopyDeadline(ctx, &out);
  return call(*t.stub, &out);
}

grpc::Status ControlProxy::Watch(grpc::ServerContext* ctx, const api::WatchRequest* req,
                                 grpc::ServerWriter<api::WatchEvent>* writer) {
  Target t = target_();
  if (t.stub == nullptr) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, t.why_not);
  grpc::ClientContext out;
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    out.set_deadline(ctx->deadline());
  }
  auto reader = t.stub->Watch(&out, *req);
  // A blocked Read() does not see our caller going away: cancel the relayed stream then.
  std::atomic<bool> done{false};
  std::thread canceller([&] {
    while (!done.load()) {
      if (ctx->IsCancelled()) {
        out.TryCancel();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  api::WatchEvent ev;
  while (reader->Read(&ev)) {
    if (!writer->Write(ev)) {
      out.TryCancel();
      break;
    }
  }
  done.store(true);
  canceller.join();
  return reader->Finish();
}

}  // namespace shoal::daemon
