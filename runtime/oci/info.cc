// shoal-runtime features and seccomp-default: what this runtime supports, as JSON.
#include <cstdio>

#include "kernel/caps/caps.h"
#include "kernel/seccomp/oci_json.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/commands.h"

namespace shoal::runtime::oci {

using nlohmann::json;

int Features() {
  json caps = kernel::CapNames(~0ULL >> (63 - kernel::LastCap()));
  json f = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.2.0"},
      {"hooks", {"prestart", "createRuntime", "poststart", "poststop"}},
      {"mountOptions",
       {"ro", "rw", "bind", "rbind", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime",
        "strictatime", "relatime", "private", "rprivate", "slave", "rslave", "shared", "rshared"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "uts"}},
        {"capabilities", caps},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions", kernel::SeccompActionNames(/*supported_only=*/true)},
          {"operators", kernel::SeccompOpNames()},
          {"archs", kernel::SeccompArchNames()},
          {"supportedFlags", kernel::SeccompFlagNames(/*supported_only=*/true)},
          {"knownFlags", kernel::SeccompFlagNames(/*supported_only=*/false)}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations", json::object()}};
  printf("%s\n", f.dump(2).c_str());
  return 0;
}

int SeccompDefault() {
  json profile =
      kernel::SeccompProfileToOciJson(kernel::DockerDefaultProfile(kernel::DockerDefaultCaps()));
  printf("%s\n", profile.dump(2).c_str());
  return 0;
}

}  // namespace shoal::runtime::oci
