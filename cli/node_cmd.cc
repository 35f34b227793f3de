// shoal node ls | inspect | ps | promote | demote | update | rm
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/refs.h"
#include "cli/spec_flags.h"
#include "cli/table.h"
#include "cli/tasks.h"

namespace shoal::cli {
namespace {

std::string SelfId(Client& c) {
  api::SwarmInfoResponse info;
  auto ctx = Client::Context();
  if (!c.swarm().Info(ctx.get(), {}, &info).ok()) return "";
  return info.node_id();
}

// "self" names this node, like in the docker CLI.
grpc::Status GetNode(Client& c, const std::string& ref, api::Node* out) {
  api::GetNodeRequest req;
  req.set_node_id(ref == "self" ? SelfId(c) : ref);
  api::GetNodeResponse resp;
  grpc::Status s = CallRetrying([&] {
    auto ctx = Client::Context();
    return c.control().GetNode(ctx.get(), req, &resp);
  });
  *out = resp.node();
  return s;
}

// `node ps`: the tasks (history included) assigned to each node, as `service ps` shows them.
int NodePs(Cli& cli, std::vector<std::string> refs, bool no_trunc) {
  if (refs.empty()) refs.push_back("self");
  return PrintTasks(
      cli, refs, no_trunc,
      [](Client& c, const std::string& ref, TaskTableNames* names, std::vector<api::Task>* tasks) {
        api::Node node;
        grpc::Status s = GetNode(c, ref, &node);
        if (!s.ok()) return s;
        api::ListFilters f;
        f.add_node_ids(node.id());
        s = ListTasks(c, f, tasks);
        if (!s.ok()) return s;
        for (const auto& t : *tasks) {
          if (names->services.count(t.service_id())) continue;
          // A removed service's tasks keep its short id as their name.
          api::Service svc;
          names->services[t.service_id()] =
              GetService(c, t.service_id(), &svc).ok() ? svc.spec().annotations().name() : "";
        }
        return grpc::Status::OK;
      });
}

// Reads the node, applies `change` to its spec and writes it back (optimistic concurrency).
int UpdateNodeSpec(Client& c, const std::string& ref,
                   const std::function<absl::Status(api::NodeSpec&)>& change) {
  api::Node node;
  grpc::Status s = GetNode(c, ref, &node);
  if (!s.ok()) return c.Fail(s);
  api::UpdateNodeRequest req;
  req.set_node_id(node.id());
  *req.mutable_node_version() = node.meta().version();
  *req.mutable_spec() = node.spec();
  if (auto st = change(*req.mutable_spec()); !st.ok()) return FailLocal(st);
  api::UpdateNodeResponse resp;
  auto ctx = Client::Context();
  s = c.control().UpdateNode(ctx.get(), req, &resp);
  if (!s.ok()) return c.Fail(s);
  return 0;
}

int SetRole(Cli& cli, const std::vector<std::string>& refs, api::NodeRole role) {
  Client c = cli.Connect();
  int rc = 0;
  for (const auto& ref : refs) {
    api::Node node;
    grpc::Status s = GetNode(c, ref, &node);
    if (!s.ok()) {
      rc = c.Fail(s);
      continue;
    }
    const char* what = role == api::NODE_ROLE_MANAGER ? "a manager" : "a worker";
    if (node.spec().desired_role() == role) {
      std::printf("Node %s is already %s.\n", ref.c_str(), what);
      continue;
    }
    int r = UpdateNodeSpec(c, node.id(), [role](api::NodeSpec& spec) {
      spec.set_desired_role(role);
      return absl::OkStatus();
    });
    if (r != 0) {
      rc = r;
      continue;
    }
    std::printf("Node %s %s to %s in the swarm.\n", ref.c_str(),
                role == api::NODE_ROLE_MANAGER ? "promoted" : "demoted", what);
  }
  return rc;
}

}  // namespace

grpc::Status ListNodes(Client& c, std::vector<api::Node>* out) {
  return ListAll<api::Node, api::ListNodesRequest, api::ListNodesResponse>(
      api::ListNodesRequest{},
      [&](grpc::ClientContext* ctx, const api::ListNodesRequest& r, api::ListNodesResponse* o) {
        return c.control().ListNodes(ctx, r, o);
      },
      [](const api::ListNodesResponse& r) { return r.nodes(); }, out);
}

std::string NodeName(const api::Node& n) {
  return n.description().hostname().empty() ? ShortId(n.id()) : n.description().hostname();
}

void AddNodeCommands(CLI::App& app, Cli& cli) {
  auto* node = app.add_subcommand("node", "manage swarm nodes");
  node->require_subcommand(1);

  auto quiet = std::make_shared<bool>(false);
  auto* ls = node->add_subcommand("ls", "list nodes");
  ls->alias("list");
  ls->add_flag("-q,--quiet", *quiet, "only IDs");
  ls->callback([&cli, quiet] {
    cli.action = [&cli, quiet] {
      Client c = cli.Connect();
      std::vector<api::Node> nodes;
      grpc::Status s = ListNodes(c, &nodes);
      if (!s.ok()) return c.Fail(s);
      std::sort(nodes.begin(), nodes.end(), [](const api::Node& a, const api::Node& b) {
        return std::make_pair(a.description().hostname(), a.id()) <
               std::make_pair(b.description().hostname(), b.id());
      });
      if (*quiet) {
        for (const auto& n : nodes) std::printf("%s\n", n.id().c_str());
        return 0;
      }
      std::string self = SelfId(c);
      Table t({"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"});
      for (const auto& n : nodes) {
        t.Add({n.id() + (n.id() == self ? " *" : ""), n.description().hostname(),
               NodeStateName(n.status().state()), AvailabilityName(n.spec().availability()),
               ManagerStatusName(n), n.description().engine_version()});
      }
      t.Print();
      return 0;
    };
  });

  auto inspect_refs = std::make_shared<std::vector<std::string>>();
  auto* inspect = node->add_subcommand("inspect", "show nodes as JSON (\"self\" = this node)");
  inspect->add_option("NODE", *inspect_refs, "node ids or hostnames")->required();
  inspect->callback([&cli, inspect_refs] {
    cli.action = [&cli, inspect_refs] {
      Client c = cli.Connect();
      return ForEachRef(c, *inspect_refs, RefOutput::kJsonArray,
                        [&](const std::string& ref, std::string* doc) {
                          api::Node n;
                          grpc::Status s = GetNode(c, ref, &n);
                          *doc = ToJson(n);
                          return s;
                        });
    };
  });

  struct PsFlags {
    std::vector<std::string> refs;
    bool no_trunc = false;
  };
  auto pf = std::make_shared<PsFlags>();
  auto* ps = node->add_subcommand("ps", "list the tasks of nodes (default: this node)");
  ps->add_flag("--no-trunc", pf->no_trunc, "full ids and errors");
  ps->add_option("NODE", pf->refs, "node ids or hostnames (\"self\" = this node)");
  ps->callback(
      [&cli, pf] { cli.action = [&cli, pf] { return NodePs(cli, pf->refs, pf->no_trunc); }; });

  auto promote_refs = std::make_shared<std::vector<std::string>>();
  auto* promote = node->add_subcommand("promote", "make nodes managers");
  promote->add_option("NODE", *promote_refs, "nodes")->required();
  promote->callback([&cli, promote_refs] {
    cli.action = [&cli, promote_refs] {
      return SetRole(cli, *promote_refs, api::NODE_ROLE_MANAGER);
    };
  });
  auto demote_refs = std::make_shared<std::vector<std::string>>();
  auto* demote = node->add_subcommand("demote", "make managers workers");
  demote->add_option("NODE", *demote_refs, "nodes")->required();
  demote->callback([&cli, demote_refs] {
    cli.action = [&cli, demote_refs] { return SetRole(cli, *demote_refs, api::NODE_ROLE_WORKER); };
  });

  struct UpdateFlags {
    std::string ref, availability, role;
    std::vector<std::string> label_add, label_rm;
  };
  auto uf = std::make_shared<UpdateFlags>();
  auto* update = node->add_subcommand("update", "change a node's availability, role or labels");
  update->add_option("--availability", uf->availability, "active, pause or drain");
  update->add_option("--role", uf->role, "worker or manager");
  update->add_option("--label-add", uf->label_add, "add or set a label (key=value)");
  update->add_option("--label-rm", uf->label_rm, "remove a label (key)");
  update->add_option("NODE", uf->ref, "node")->required();
  update->callback([&cli, uf] {
    cli.action = [&cli, uf] {
      Client c = cli.Connect();
      int rc = UpdateNodeSpec(c, uf->ref, [uf](api::NodeSpec& spec) -> absl::Status {
        if (!uf->availability.empty()) {
          auto a = ParseAvailability("--availability", uf->availability);
          if (!a.ok()) return a.status();
          spec.set_availability(*a);
        }
        if (uf->role == "manager") {
          spec.set_desired_role(api::NODE_ROLE_MANAGER);
        } else if (uf->role == "worker") {
          spec.set_desired_role(api::NODE_ROLE_WORKER);
        } else if (!uf->role.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("--role: \"", uf->role, "\" is not one of worker, manager"));
        }
        auto* labels = spec.mutable_annotations()->mutable_labels();
        for (const auto& k : uf->label_rm) labels->erase(k);
        for (const auto& l : uf->label_add) {
          auto [k, v] = SplitKeyValue(l);
          (*labels)[k] = v;
        }
        return absl::OkStatus();
      });
      if (rc == 0) std::printf("%s\n", uf->ref.c_str());
      return rc;
    };
  });

  struct RmFlags {
    std::vector<std::string> refs;
    bool force = false;
  };
  auto rf = std::make_shared<RmFlags>();
  auto* rm = node->add_subcommand("rm", "remove nodes from the swarm");
  rm->alias("remove");
  rm->add_flag("-f,--force", rf->force, "remove even if the node is not down");
  rm->add_option("NODE", rf->refs, "nodes")->required();
  rm->callback([&cli, rf] {
    cli.action = [&cli, rf] {
      Client c = cli.Connect();
      return ForEachRef(c, rf->refs, RefOutput::kRefs, [&](const std::string& ref, std::string*) {
        api::RemoveNodeRequest req;
        req.set_node_id(ref);
        req.set_force(rf->force);
        api::RemoveNodeResponse resp;
        auto ctx = Client::Context();
        return c.control().RemoveNode(ctx.get(), req, &resp);
      });
    };
  });
}

}  // namespace shoal::cli
