// The `shoal` command tree. Each Add*Commands registers its subcommands on `app`; a command's
// callback stores what to run in `cli.action`, which main() runs after parsing and whose
// return value is the exit status.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/client.h"

namespace shoal::cli {

struct Cli {
  std::string host;  // --host/-H
  std::function<int()> action;
  Client Connect() const { return Client(SocketPath(host)); }
};

void AddSwarmCommands(CLI::App& app, Cli& cli);
void AddNodeCommands(CLI::App& app, Cli& cli);
void AddServiceCommands(CLI::App& app, Cli& cli);
void AddObjectCommands(CLI::App& app, Cli& cli);  // network, secret, config

// Shared by the node and service commands (node_cmd.cc).
grpc::Status ListNodes(Client& c, std::vector<api::Node>* out);
std::string NodeName(const api::Node& n);  // hostname, else the short id

// Every page of a paginated List call into `out` (cleared first), retried from the first page
// while the cluster has no leader (CallRetrying).
template <typename Item, typename Req, typename Resp, typename Call, typename Items>
grpc::Status ListAll(const Req& first, Call&& call, Items&& items, std::vector<Item>* out) {
  return CallRetrying([&] {
    out->clear();
    Req req = first;
    for (;;) {
      Resp resp;
      auto ctx = Client::Context();
      grpc::Status s = call(ctx.get(), req, &resp);
      if (!s.ok()) return s;
      for (const auto& i : items(resp)) out->push_back(i);
      if (resp.next_page_token().empty()) return grpc::Status::OK;
      req.mutable_page()->set_page_token(resp.next_page_token());
    }
  });
}

}  // namespace shoal::cli
