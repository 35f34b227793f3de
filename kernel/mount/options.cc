#include <sys/mount.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kernel/mount/mount.h"

namespace shoal::kernel {

const std::vector<std::string>& DockerMaskedPaths() {
  static const std::vector<std::string>* p = new std::vector<std::string>{
      "/proc/acpi",         "/proc/asound",         "/proc/interrupts", "/proc/kcore",
      "/proc/keys",         "/proc/latency_stats",  "/proc/sched_debug", "/proc/scsi",
      "/proc/timer_list",   "/proc/timer_stats",    "/sys/devices/virtual/powercap",
      "/sys/firmware"};
  return *p;
}

const std::vector<std::string>& DockerReadonlyPaths() {
  static const std::vector<std::string>* p = new std::vector<std::string>{
      "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  return *p;
}

absl::StatusOr<MountOptions> ParseMountOptions(const std::vector<std::string>& options) {
  MountOptions m;
  struct Flag {
    const char* name;
    unsigned long set;
    unsigned long clear;
  };
  static constexpr Flag kFlags[] = {
      {"nosuid", MS_NOSUID, 0},     {"suid", 0, MS_NOSUID},         {"nodev", MS_NODEV, 0},
      {"dev", 0, MS_NODEV},         {"noexec", MS_NOEXEC, 0},       {"exec", 0, MS_NOEXEC},
      {"noatime", MS_NOATIME, 0},   {"strictatime", MS_STRICTATIME, 0},
      {"relatime", MS_RELATIME, 0}, {"nodiratime", MS_NODIRATIME, 0}, {"sync", MS_SYNCHRONOUS, 0},
  };
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string& o = options[i];
    bool done = false;
    for (const Flag& f : kFlags) {
      if (o == f.name) {
        m.flags = (m.flags | f.set) & ~f.clear;
        done = true;
      }
    }
    if (done) continue;
    if (o == "ro") {
      m.readonly = true;
    } else if (o == "rw") {
      m.readonly = false;
    } else if (o == "bind") {
      m.flags |= MS_BIND;
    } else if (o == "rbind") {
      m.flags |= MS_BIND;
      m.recursive_bind = true;
    } else if (o == "private" || o == "rprivate") {
      m.propagation = MS_PRIVATE | (o[0] == 'r' ? MS_REC : 0);
    } else if (o == "slave" || o == "rslave") {
      m.propagation = MS_SLAVE | (o[0] == 'r' ? MS_REC : 0);
    } else if (o == "shared" || o == "rshared") {
      m.propagation = MS_SHARED | (o[0] == 'r' ? MS_REC : 0);
    } else if (absl::StrContains(o, "=") || o == "newinstance") {
      if (!m.data.empty()) m.data += ",";
      m.data += o;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("options[", i, "]: unknown mount option \"", o, "\""));
    }
  }
  return m;
}

}  // namespace shoal::kernel
