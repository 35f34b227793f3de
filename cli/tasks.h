// The task table `service ps` and `node ps` print (docker's columns): one row per task, grouped
// by service and slot (node for global services), the newest task of a slot first and the older
// ones marked "\_".
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"

namespace shoal::cli {

// Every task matching `filters` (all pages).
grpc::Status ListTasks(Client& c, const api::ListFilters& filters, std::vector<api::Task>* out);

struct TaskTableNames {
  std::map<std::string, std::string> services;  // service id -> name
  std::map<std::string, std::string> nodes;     // node id -> hostname
};

// The service `ref` names (id, id prefix or name), retried while there is no leader.
grpc::Status GetService(Client& c, const std::string& ref, api::Service* out);

// `service ps` and `node ps`: one table of the tasks of every ref. `collect` resolves one ref into
// its tasks and names their services in `names` (node names are filled in first); unknown ids
// show as short ids. Returns the exit status (the first failing ref's error is printed).
using CollectTasks = std::function<grpc::Status(
    Client& c, const std::string& ref, TaskTableNames* names, std::vector<api::Task>* tasks)>;
int PrintTasks(Cli& cli, const std::vector<std::string>& refs, bool no_trunc,
               const CollectTasks& collect);

}  // namespace shoal::cli
