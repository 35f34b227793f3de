#include "cli/table.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"

namespace shoal::cli {

std::string Table::Render() const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

void Table::Print() const { std::fputs(Render().c_str(), stdout); }

std::string ShortId(const std::string& id) { return id.substr(0, 12); }

std::string Ago(const google::protobuf::Timestamp& t, absl::Time now) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  absl::Duration d = now - absl::FromUnixSeconds(t.seconds());
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  auto unit = [](int64_t n, const char* what) {
    return absl::StrCat(n, " ", what, n == 1 ? "" : "s", " ago");
  };
  if (s < 1) return "Less than a second ago";
  if (s < 60) return unit(s, "second");
  if (s < 3600) return unit(s / 60, "minute");
  if (s < 86400) return unit(s / 3600, "hour");
  return unit(s / 86400, "day");
}

std::string TaskStateName(api::TaskState s) {
  std::string name = api::TaskState_Name(s);  // TASK_STATE_RUNNING
  if (name.rfind("TASK_STATE_", 0) == 0) name = name.substr(11);
  name = absl::AsciiStrToLower(name);
  if (!name.empty()) name[0] = absl::ascii_toupper(name[0]);
  return name;
}

std::string NodeStateName(api::NodeStatus::State s) {
  switch (s) {
    case api::NodeStatus::STATE_READY:
      return "Ready";
    case api::NodeStatus::STATE_DOWN:
      return "Down";
    case api::NodeStatus::STATE_DISCONNECTED:
      return "Disconnected";
    default:
      return "Unknown";
  }
}

std::string AvailabilityName(api::NodeSpec::Availability a) {
  switch (a) {
    case api::NodeSpec::AVAILABILITY_PAUSE:
      return "Pause";
    case api::NodeSpec::AVAILABILITY_DRAIN:
      return "Drain";
    default:
      return "Active";
  }
}

std::string ManagerStatusName(const api::Node& n) {
  if (n.role() != api::NODE_ROLE_MANAGER && !n.has_manager_status()) return "";
  if (n.manager_status().leader()) return "Leader";
  switch (n.manager_status().reachability()) {
    case api::ManagerStatus::REACHABILITY_REACHABLE:
      return "Reachable";
    case api::ManagerStatus::REACHABILITY_UNREACHABLE:
      return "Unreachable";
    default:
      return "Unknown";
  }
}

std::string PortsText(const api::Endpoint& e, const api::EndpointSpec& spec) {
  const auto& ports = e.ports().empty() ? spec.ports() : e.ports();
  std::vector<std::string> out;
  for (const auto& p : ports) {
    std::string proto = p.protocol() == api::PortConfig::PROTOCOL_UDP    ? "udp"
                        : p.protocol() == api::PortConfig::PROTOCOL_SCTP ? "sctp"
                                                                        : "tcp";
    std::string published = p.published_port() ? absl::StrCat(p.published_port()) : "";
    out.push_back(absl::StrCat("*:", published, "->", p.target_port(), "/", proto));
  }
  return absl::StrJoin(out, ", ");
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

}  // namespace shoal::cli
