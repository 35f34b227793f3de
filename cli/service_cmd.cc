// shoal service create | ls | ps | inspect | update | scale | rm
#include <algorithm>
#include <cstdio>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/refs.h"
#include "cli/spec_flags.h"
#include "cli/table.h"
#include "cli/tasks.h"

namespace shoal::cli {
namespace {

// The flags create and update share, registered on `cmd` into `f`.
void AddSpecFlags(CLI::App* cmd, ServiceFlags& f, bool create) {
  cmd->add_option("--replicas", f.replicas, "number of tasks (replicated mode)")
      ->each([&f](const std::string&) { f.replicas_set = true; });
  cmd->add_option("--limit-memory", f.limit_memory, "memory limit (e.g. 512M)");
  cmd->add_option("--limit-cpu", f.limit_cpu, "CPU limit (e.g. 0.5)");
  cmd->add_option("--reserve-memory", f.reserve_memory, "memory reservation");
  cmd->add_option("--reserve-cpu", f.reserve_cpu, "CPU reservation");
  cmd->add_option("--update-parallelism", f.update_parallelism, "tasks updated at once (0 = all)")
      ->each([&f](const std::string&) { f.update_parallelism_set = true; });
  cmd->add_option("--update-delay", f.update_delay, "delay between updates (e.g. 10s)");
  cmd->add_option("--update-failure-action", f.update_failure_action,
                  "pause, continue or rollback");
  cmd->add_option("--update-order", f.update_order, "stop-first or start-first");
  cmd->add_option("--restart-condition", f.restart_condition, "none, on-failure or any");
  cmd->add_option("--restart-delay", f.restart_delay, "delay between restarts");
  cmd->add_option("--restart-max-attempts", f.restart_max_attempts, "0 = unlimited")
      ->each([&f](const std::string&) { f.restart_max_attempts_set = true; });
  cmd->add_option("--endpoint-mode", f.endpoint_mode, "vip or dnsrr");
  if (create) {
    cmd->add_option("--name", f.name, "service name");
    cmd->add_option("--mode", f.mode, "replicated, global, replicated-job or global-job");
    cmd->add_option("-e,--env", f.env, "environment variable KEY=value");
    cmd->add_option("--constraint", f.constraints, "placement constraint (node.role==manager)");
    cmd->add_option("-p,--publish", f.publish, "publish a port (8080:80[/udp] or key=value form)");
    cmd->add_option("--network", f.networks, "attach to a network");
    cmd->add_option("-l,--label", f.labels, "service label key=value");
  }
}

int UpdateService(Client& c, const std::string& ref,
                  const std::function<absl::Status(api::ServiceSpec&)>& change,
                  bool rollback = false) {
  api::Service svc;
  grpc::Status s = GetService(c, ref, &svc);
  if (!s.ok()) return c.Fail(s);
  api::UpdateServiceRequest req;
  req.set_service_id(svc.id());
  *req.mutable_service_version() = svc.meta().version();
  *req.mutable_spec() = svc.spec();
  req.set_rollback(rollback);
  if (auto st = change(*req.mutable_spec()); !st.ok()) return FailLocal(st);
  api::UpdateServiceResponse resp;
  auto ctx = Client::Context();
  s = c.control().UpdateService(ctx.get(), req, &resp);
  if (!s.ok()) return c.Fail(s);
  return 0;
}

std::string ModeName(const api::ServiceSpec& s) {
  if (s.has_global()) return "global";
  if (s.has_replicated_job()) return "replicated job";
  if (s.has_global_job()) return "global job";
  return "replicated";
}

int ServiceLs(Cli& cli, bool quiet) {
  Client c = cli.Connect();
  std::vector<api::Service> services;
  grpc::Status s = ListAll<api::Service, api::ListServicesRequest, api::ListServicesResponse>(
      api::ListServicesRequest{},
      [&](grpc::ClientContext* ctx, const api::ListServicesRequest& r,
          api::ListServicesResponse* o) { return c.control().ListServices(ctx, r, o); },
      [](const api::ListServicesResponse& r) { return r.services(); }, &services);
  if (!s.ok()) return c.Fail(s);
  std::sort(services.begin(), services.end(), [](const api::Service& a, const api::Service& b) {
    return a.spec().annotations().name() < b.spec().annotations().name();
  });
  if (quiet) {
    for (const auto& svc : services) std::printf("%s\n", svc.id().c_str());
    return 0;
  }
  api::ListFilters running_filter;
  running_filter.add_desired_states(api::TASK_STATE_RUNNING);
  std::vector<api::Task> tasks;
  s = ListTasks(c, running_filter, &tasks);
  if (!s.ok()) return c.Fail(s);
  std::map<std::string, std::pair<int, int>> counts;  // service -> running, desired
  for (const auto& t : tasks) {
    auto& [running, desired] = counts[t.service_id()];
    ++desired;
    if (t.status().state() == api::TASK_STATE_RUNNING) ++running;
  }
  Table table({"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"});
  for (const auto& svc : services) {
    auto [running, desired] = counts[svc.id()];
    if (svc.spec().has_replicated()) desired = static_cast<int>(svc.spec().replicated().replicas());
    table.Add({ShortId(svc.id()), svc.spec().annotations().name(), ModeName(svc.spec()),
               absl::StrCat(running, "/", desired), svc.spec().task().container().image(),
               PortsText(svc.endpoint(), svc.spec().endpoint())});
  }
  table.Print();
  return 0;
}

int ServicePs(Cli& cli, const std::vector<std::string>& refs, bool no_trunc) {
  return PrintTasks(
      cli, refs, no_trunc,
      [](Client& c, const std::string& ref, TaskTableNames* names, std::vector<api::Task>* tasks) {
        api::Service svc;
        grpc::Status s = GetService(c, ref, &svc);
        if (!s.ok()) return s;
        names->services[svc.id()] = svc.spec().annotations().name();
        api::ListFilters f;
        f.add_service_ids(svc.id());
        return ListTasks(c, f, tasks);
      });
}

}  // namespace

void AddServiceCommands(CLI::App& app, Cli& cli) {
  auto* service = app.add_subcommand("service", "manage services");
  service->require_subcommand(1);

  auto cf = std::make_shared<ServiceFlags>();
  auto* create = service->add_subcommand("create", "create a service");
  AddSpecFlags(create, *cf, true);
  create->add_option("IMAGE", cf->image, "image reference")->required();
  create->add_option("ARGS", cf->args, "command and arguments");
  create->positionals_at_end(true);
  create->callback([&cli, cf] {
    cli.action = [&cli, cf] {
      auto spec = BuildServiceSpec(*cf);
      if (!spec.ok()) return FailLocal(spec.status());
      Client c = cli.Connect();
      api::CreateServiceRequest req;
      *req.mutable_spec() = *spec;
      api::CreateServiceResponse resp;
      auto ctx = Client::Context();
      grpc::Status s = c.control().CreateService(ctx.get(), req, &resp);
      if (!s.ok()) return c.Fail(s);
      std::printf("%s\n", resp.service().id().c_str());
      return 0;
    };
  });

  auto ls_quiet = std::make_shared<bool>(false);
  auto* ls = service->add_subcommand("ls", "list services");
  ls->alias("list");
  ls->add_flag("-q,--quiet", *ls_quiet, "only IDs");
  ls->callback(
      [&cli, ls_quiet] { cli.action = [&cli, ls_quiet] { return ServiceLs(cli, *ls_quiet); }; });

  struct PsFlags {
    std::vector<std::string> refs;
    bool no_trunc = false;
  };
  auto pf = std::make_shared<PsFlags>();
  auto* ps = service->add_subcommand("ps", "list the tasks of services");
  ps->add_flag("--no-trunc", pf->no_trunc, "full ids and errors");
  ps->add_option("SERVICE", pf->refs, "services")->required();
  ps->callback(
      [&cli, pf] { cli.action = [&cli, pf] { return ServicePs(cli, pf->refs, pf->no_trunc); }; });

  auto inspect_refs = std::make_shared<std::vector<std::string>>();
  auto* inspect = service->add_subcommand("inspect", "show services as JSON");
  inspect->add_option("SERVICE", *inspect_refs, "services")->required();
  inspect->callback([&cli, inspect_refs] {
    cli.action = [&cli, inspect_refs] {
      Client c = cli.Connect();
      return ForEachRef(c, *inspect_refs, RefOutput::kJsonArray,
                        [&](const std::string& ref, std::string* doc) {
                          api::Service svc;
                          grpc::Status s = GetService(c, ref, &svc);
                          *doc = ToJson(svc);
                          return s;
                        });
    };
  });

  struct UpdateArgs {
    ServiceUpdateFlags f;
    std::string ref;
    bool rollback = false;
    std::string args_joined;
  };
  auto uf = std::make_shared<UpdateArgs>();
  auto* update = service->add_subcommand("update", "change a service");
  AddSpecFlags(update, uf->f.set, false);
  update->add_option("--image", uf->f.set.image, "new image");
  update->add_option("--args", uf->f.set.args, "replace the command arguments")
      ->each([uf](const std::string&) { uf->f.args_set = true; });
  update->add_option("--env-add", uf->f.env_add, "add or replace an environment variable");
  update->add_option("--env-rm", uf->f.env_rm, "remove an environment variable");
  update->add_option("--constraint-add", uf->f.constraint_add, "add a placement constraint");
  update->add_option("--constraint-rm", uf->f.constraint_rm, "remove a placement constraint");
  update->add_option("--publish-add", uf->f.publish_add, "add or replace a published port");
  update->add_option("--publish-rm", uf->f.publish_rm, "remove a published port (target[/proto])");
  update->add_option("--network-add", uf->f.network_add, "attach to a network");
  update->add_option("--network-rm", uf->f.network_rm, "detach from a network");
  update->add_option("--label-add", uf->f.label_add, "add or set a service label");
  update->add_option("--label-rm", uf->f.label_rm, "remove a service label");
  update->add_flag("--force", uf->f.force, "redeploy the tasks even without changes");
  update->add_flag("--rollback", uf->rollback, "roll back to the previous spec");
  update->add_option("SERVICE", uf->ref, "service")->required();
  update->callback([&cli, uf] {
    cli.action = [&cli, uf] {
      Client c = cli.Connect();
      int rc = UpdateService(
          c, uf->ref, [uf](api::ServiceSpec& spec) { return ApplyServiceUpdate(uf->f, spec); },
          uf->rollback);
      if (rc == 0) std::printf("%s\n", uf->ref.c_str());
      return rc;
    };
  });

  auto scale_args = std::make_shared<std::vector<std::string>>();
  auto* scale = service->add_subcommand("scale", "set the replica count: SERVICE=N ...");
  scale->add_option("SERVICE=REPLICAS", *scale_args, "e.g. web=5")->required();
  scale->callback([&cli, scale_args] {
    cli.action = [&cli, scale_args] {
      Client c = cli.Connect();
      int rc = 0;
      for (const auto& arg : *scale_args) {
        auto [ref, n] = SplitKeyValue(arg);
        uint64_t replicas = 0;
        if (ref.empty() || !absl::SimpleAtoi(n, &replicas)) {
          rc = FailLocal(absl::InvalidArgumentError(
              absl::StrCat("SERVICE=REPLICAS: \"", arg, "\" is not service=number")));
          continue;
        }
        int r = UpdateService(c, ref, [&](api::ServiceSpec& spec) {
          if (!spec.has_replicated()) {
            return absl::InvalidArgumentError(
                absl::StrCat(ref, ": scale works on replicated services only"));
          }
          spec.mutable_replicated()->set_replicas(replicas);
          return absl::OkStatus();
        });
        if (r != 0) {
          rc = r;
          continue;
        }
        std::printf("%s scaled to %llu\n", ref.c_str(), static_cast<unsigned long long>(replicas));
      }
      return rc;
    };
  });

  auto rm_refs = std::make_shared<std::vector<std::string>>();
  auto* rm = service->add_subcommand("rm", "remove services");
  rm->alias("remove");
  rm->add_option("SERVICE", *rm_refs, "services")->required();
  rm->callback([&cli, rm_refs] {
    cli.action = [&cli, rm_refs] {
      Client c = cli.Connect();
      return ForEachRef(c, *rm_refs, RefOutput::kRefs, [&](const std::string& ref, std::string*) {
        api::RemoveServiceRequest req;
        req.set_service_id(ref);
        api::RemoveServiceResponse resp;
        auto ctx = Client::Context();
        return c.control().RemoveService(ctx.get(), req, &resp);
      });
    };
  });
}

}  // namespace shoal::cli
