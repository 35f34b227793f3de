#include "cli/tasks.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "cli/table.h"

namespace shoal::cli {
namespace {

std::string NameOr(const std::map<std::string, std::string>& names, const std::string& id) {
  auto it = names.find(id);
  return it != names.end() && !it->second.empty() ? it->second : ShortId(id);
}

Table NewTaskTable() {
  return Table({"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"});
}

// The rows of `tasks`: by service, then slot (node for global services), the newest first and
// the older ones of a slot marked "\_".
void AddTaskRows(std::vector<api::Task> tasks, const TaskTableNames& names, bool no_trunc,
                 absl::Time now, Table* table) {
  auto key = [&](const api::Task& t) {
    return std::make_tuple(NameOr(names.services, t.service_id()), t.slot(), t.node_id());
  };
  std::sort(tasks.begin(), tasks.end(), [&](const api::Task& a, const api::Task& b) {
    if (key(a) != key(b)) return key(a) < key(b);
    return a.meta().created_at().seconds() > b.meta().created_at().seconds();
  });
  bool first = true;
  decltype(key(tasks.front())) prev;
  for (const auto& t : tasks) {
    const std::string service = NameOr(names.services, t.service_id());
    std::string name = t.slot() != 0 ? absl::StrCat(service, ".", t.slot())
                                     : absl::StrCat(service, ".", t.node_id());
    if (!first && key(t) == prev) name = " \\_ " + name;
    prev = key(t);
    first = false;
    std::string node = t.node_id().empty() ? "" : NameOr(names.nodes, t.node_id());
    std::string current = TaskStateName(t.status().state());
    std::string ago = Ago(t.status().timestamp(), now);
    if (!ago.empty()) current += " " + ago;
    std::string err = t.status().err().empty() ? t.scheduling_message() : t.status().err();
    if (!no_trunc && err.size() > 60) err = err.substr(0, 57) + "...";
    table->Add({no_trunc ? t.id() : ShortId(t.id()), name, t.spec().container().image(), node,
                TaskStateName(t.desired_state()), current, err});
  }
}

}  // namespace

grpc::Status GetService(Client& c, const std::string& ref, api::Service* out) {
  api::GetServiceRequest req;
  req.set_service_id(ref);
  api::GetServiceResponse resp;
  grpc::Status s = CallRetrying([&] {
    auto ctx = Client::Context();
    return c.control().GetService(ctx.get(), req, &resp);
  });
  *out = resp.service();
  return s;
}

grpc::Status ListTasks(Client& c, const api::ListFilters& filters, std::vector<api::Task>* out) {
  api::ListTasksRequest req;
  *req.mutable_filters() = filters;
  return ListAll<api::Task, api::ListTasksRequest, api::ListTasksResponse>(
      req,
      [&](grpc::ClientContext* ctx, const api::ListTasksRequest& r, api::ListTasksResponse* o) {
        return c.control().ListTasks(ctx, r, o);
      },
      [](const api::ListTasksResponse& r) { return r.tasks(); }, out);
}

int PrintTasks(Cli& cli, const std::vector<std::string>& refs, bool no_trunc,
               const CollectTasks& collect) {
  Client c = cli.Connect();
  std::vector<api::Node> nodes;
  grpc::Status s = ListNodes(c, &nodes);
  if (!s.ok()) return c.Fail(s);
  TaskTableNames names;
  for (const auto& n : nodes) names.nodes[n.id()] = NodeName(n);
  Table table = NewTaskTable();
  absl::Time now = absl::Now();
  for (const auto& ref : refs) {
    std::vector<api::Task> tasks;
    s = collect(c, ref, &names, &tasks);
    if (!s.ok()) return c.Fail(s);
    AddTaskRows(std::move(tasks), names, no_trunc, now, &table);
  }
  table.Print();
  return 0;
}

}  // namespace shoal::cli
