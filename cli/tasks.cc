#include "cli/tasks.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"

namespace shoal::cli {
namespace {

std::string NameOr(const std::map<std::string, std::string>& names, const std::string& id) {
  auto it = names.find(id);
  return it != names.end() && !it->second.empty() ? it->second : ShortId(id);
}

}  // namespace

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

Table NewTaskTable() {
  return Table({"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"});
}

void AddTaskRows(std::vector<api::Task> tasks, const TaskTableNames& names, bool no_trunc,
                 absl::Time now, Table* table) {
  // By service, then slot (or node for global services), the newest first.
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

}  // namespace shoal::cli
