// The task table `service ps` and `node ps` print (docker's columns): one row per task, grouped
// by service and slot (node for global services), the newest task of a slot first and the older
// ones marked "\_".
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/client.h"
#include "cli/table.h"

namespace shoal::cli {

// Every task matching `filters` (all pages).
grpc::Status ListTasks(Client& c, const api::ListFilters& filters, std::vector<api::Task>* out);

struct TaskTableNames {
  std::map<std::string, std::string> services;  // service id -> name
  std::map<std::string, std::string> nodes;     // node id -> hostname
};

// The table header and the rows of `tasks`. Unknown ids show as short ids.
Table NewTaskTable();
void AddTaskRows(std::vector<api::Task> tasks, const TaskTableNames& names, bool no_trunc,
                 absl::Time now, Table* table);

}  // namespace shoal::cli
