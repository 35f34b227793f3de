// shoal swarm init | join | join-token | leave | info
#include <cstdio>

#include "cli/commands.h"

namespace shoal::cli {
namespace {

int PrintJoinCommand(Client& c, const std::string& role, bool quiet) {
  api::GetClusterResponse cluster;
  grpc::Status s = CallRetrying([&] {
    auto ctx = Client::Context();
    return c.control().GetCluster(ctx.get(), {}, &cluster);
  });
  if (!s.ok()) return c.Fail(s);
  const auto& tokens = cluster.cluster().root_ca().join_tokens();
  const std::string& token = role == "manager" ? tokens.manager() : tokens.worker();
  if (quiet) {
    std::printf("%s\n", token.c_str());
    return 0;
  }
  api::SwarmInfoResponse info;
  auto ctx = Client::Context();
  s = c.swarm().Info(ctx.get(), {}, &info);
  if (!s.ok()) return c.Fail(s);
  std::printf("To add a %s to this swarm, run the following command:\n\n", role.c_str());
  std::printf("    shoal swarm join --token %s %s\n\n", token.c_str(),
              info.advertise_addr().c_str());
  return 0;
}

}  // namespace

void AddSwarmCommands(CLI::App& app, Cli& cli) {
  auto* swarm = app.add_subcommand("swarm", "manage the swarm this node belongs to");
  swarm->require_subcommand(1);

  struct InitFlags {
    std::string listen, advertise;
  };
  auto init_flags = std::make_shared<InitFlags>();
  auto* init = swarm->add_subcommand("init", "create a swarm with this node as its first manager");
  init->add_option("--listen-addr", init_flags->listen, "manager listener (default 0.0.0.0:2377)");
  init->add_option("--advertise-addr", init_flags->advertise, "address other nodes use");
  init->callback([&cli, init_flags] {
    cli.action = [&cli, init_flags] {
      Client c = cli.Connect();
      api::SwarmInitRequest req;
      req.set_listen_addr(init_flags->listen);
      req.set_advertise_addr(init_flags->advertise);
      api::SwarmInitResponse resp;
      auto ctx = Client::Context(true);
      grpc::Status s = c.swarm().Init(ctx.get(), req, &resp);
      if (!s.ok()) return c.Fail(s);
      std::printf("Swarm initialized: current node (%s) is now a manager.\n\n",
                  resp.node_id().c_str());
      int rc = PrintJoinCommand(c, "worker", false);
      std::printf("To add a manager to this swarm, run 'shoal swarm join-token manager' and "
                  "follow the instructions.\n\n");
      return rc;
    };
  });

  struct JoinFlags {
    std::string token, listen, advertise, remote;
  };
  auto join_flags = std::make_shared<JoinFlags>();
  auto* join = swarm->add_subcommand("join", "join a swarm as a worker or a manager");
  join->add_option("--token", join_flags->token, "join token (decides the role)")->required();
  join->add_option("--listen-addr", join_flags->listen, "manager listener (managers only)");
  join->add_option("--advertise-addr", join_flags->advertise, "address other nodes use");
  join->add_option("HOST:PORT", join_flags->remote, "a manager of the swarm")->required();
  join->callback([&cli, join_flags] {
    cli.action = [&cli, join_flags] {
      Client c = cli.Connect();
      api::SwarmJoinRequest req;
      req.set_remote_addr(join_flags->remote);
      req.set_token(join_flags->token);
      req.set_listen_addr(join_flags->listen);
      req.set_advertise_addr(join_flags->advertise);
      api::SwarmJoinResponse resp;
      auto ctx = Client::Context(true);
      grpc::Status s = c.swarm().Join(ctx.get(), req, &resp);
      if (!s.ok()) return c.Fail(s);
      std::printf("This node joined a swarm as a %s.\n",
                  resp.role() == api::NODE_ROLE_MANAGER ? "manager" : "worker");
      return 0;
    };
  });

  struct TokenFlags {
    std::string role;
    bool rotate = false, quiet = false;
  };
  auto token_flags = std::make_shared<TokenFlags>();
  auto* token = swarm->add_subcommand("join-token", "show or rotate a join token");
  token->add_option("ROLE", token_flags->role, "worker or manager")
      ->required()
      ->check(CLI::IsMember({"worker", "manager"}));
  token->add_flag("--rotate", token_flags->rotate, "replace the token (existing nodes unaffected)");
  token->add_flag("-q,--quiet", token_flags->quiet, "print the token only");
  token->callback([&cli, token_flags] {
    cli.action = [&cli, token_flags] {
      Client c = cli.Connect();
      if (token_flags->rotate) {
        api::GetClusterResponse cluster;
        auto ctx = Client::Context();
        grpc::Status s = c.control().GetCluster(ctx.get(), {}, &cluster);
        if (!s.ok()) return c.Fail(s);
        api::UpdateClusterRequest req;
        *req.mutable_cluster_version() = cluster.cluster().meta().version();
        *req.mutable_spec() = cluster.cluster().spec();
        req.set_rotate_worker_token(token_flags->role == "worker");
        req.set_rotate_manager_token(token_flags->role == "manager");
        api::UpdateClusterResponse resp;
        auto ctx2 = Client::Context();
        s = c.control().UpdateCluster(ctx2.get(), req, &resp);
        if (!s.ok()) return c.Fail(s);
        if (!token_flags->quiet) {
          std::printf("Successfully rotated %s join token.\n\n", token_flags->role.c_str());
        }
      }
      return PrintJoinCommand(c, token_flags->role, token_flags->quiet);
    };
  });

  auto force = std::make_shared<bool>(false);
  auto* leave = swarm->add_subcommand("leave", "leave the swarm");
  leave->add_flag("-f,--force", *force, "leave even as a manager");
  leave->callback([&cli, force] {
    cli.action = [&cli, force] {
      Client c = cli.Connect();
      api::SwarmLeaveRequest req;
      req.set_force(*force);
      api::SwarmLeaveResponse resp;
      auto ctx = Client::Context(true);
      grpc::Status s = c.swarm().Leave(ctx.get(), req, &resp);
      if (!s.ok()) return c.Fail(s);
      std::printf("Node left the swarm.\n");
      return 0;
    };
  });

  auto* info = swarm->add_subcommand("info", "what this node is in its swarm");
  info->callback([&cli] {
    cli.action = [&cli] {
      Client c = cli.Connect();
      api::SwarmInfoResponse r;
      auto ctx = Client::Context();
      grpc::Status s = c.swarm().Info(ctx.get(), {}, &r);
      if (!s.ok()) return c.Fail(s);
      bool active = r.state() == api::SwarmInfoResponse::LOCAL_STATE_ACTIVE;
      std::printf("Swarm: %s\n", active ? "active" : "inactive");
      if (!active) return 0;
      bool manager = r.role() == api::NODE_ROLE_MANAGER;
      std::printf(" NodeID: %s\n ClusterID: %s\n Is Manager: %s\n", r.node_id().c_str(),
                  r.cluster_id().c_str(), manager ? "true" : "false");
      if (manager) {
        std::printf(" Is Leader: %s\n Raft ID: %llx\n Advertise Address: %s\n Leader Address: %s\n",
                    r.is_leader() ? "true" : "false",
                    static_cast<unsigned long long>(r.raft_id()), r.advertise_addr().c_str(),
                    r.leader_addr().c_str());
      }
      std::printf(" Managers:\n");
      for (const auto& m : r.managers()) std::printf("  %s\n", m.c_str());
      std::printf(" Data Path Port: %u\n Agent: %s\n", r.data_path_port(),
                  r.agent_status().c_str());
      return 0;
    };
  });
}

}  // namespace shoal::cli
