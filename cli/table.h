// Column-aligned output like the docker CLI (columns separated by at least 3 spaces, header
// in capitals), plus the small formatting helpers the list commands share.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "api/objects.pb.h"

namespace shoal::cli {

namespace api = ::shoal::api::v1;

class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;
  void Print() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string ShortId(const std::string& id);  // first 12 characters
// "3 seconds ago", "5 minutes ago", "2 hours ago", "4 days ago".
std::string Ago(const google::protobuf::Timestamp& t, absl::Time now);
std::string TaskStateName(api::TaskState s);  // "Running", "Pending", ...
std::string NodeStateName(api::NodeStatus::State s);
std::string AvailabilityName(api::NodeSpec::Availability a);
std::string ManagerStatusName(const api::Node& n);  // "Leader", "Reachable", ... or ""
std::string PortsText(const api::Endpoint& e, const api::EndpointSpec& spec);
// The message as JSON (proto3 field names), for `inspect`.
std::string ToJson(const google::protobuf::Message& m);

}  // namespace shoal::cli
