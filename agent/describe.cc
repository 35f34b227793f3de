// DescribeHost: what a node registers with when the daemon gives no description.
#include <sys/utsname.h>
#include <unistd.h>

#include <string>

#include "agent/agent.h"

namespace shoal::agent {

namespace {

// Go/OCI architecture names for uname machines.
std::string GoArch(const std::string& machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  if (machine == "armv7l" || machine == "armv6l") return "arm";
  if (machine == "i686" || machine == "i386") return "386";
  return machine;
}

}  // namespace

api::NodeDescription DescribeHost() {
  api::NodeDescription d;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) d.set_hostname(host);
  struct utsname u;
  if (uname(&u) == 0) d.mutable_platform()->set_architecture(GoArch(u.machine));
  d.mutable_platform()->set_os("linux");
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (cpus > 0) d.mutable_resources()->set_nano_cpus(static_cast<int64_t>(cpus) * 1000000000);
  if (pages > 0 && page > 0) {
    d.mutable_resources()->set_memory_bytes(static_cast<int64_t>(pages) * page);
  }
  return d;
}

}  // namespace shoal::agent
