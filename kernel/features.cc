#include "kernel/features.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"

namespace shoal::kernel {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A syscall exists when calling it with a NULL argument fails with anything but ENOSYS.
bool SyscallExists(long nr) {
  long rc = ::syscall(nr, nullptr, 0, nullptr, 0);
  return !(rc < 0 && errno == ENOSYS);
}

}  // namespace

const char* CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kV2:
      return "v2";
  }
  return "?";
}

absl::StatusOr<CgroupMode> ClassifyCgroupMode(long root_magic, long unified_magic) {
  if (root_magic == CGROUP2_SUPER_MAGIC) return CgroupMode::kV2;
  if (root_magic == TMPFS_MAGIC) {
    return unified_magic == CGROUP2_SUPER_MAGIC ? CgroupMode::kHybrid : CgroupMode::kV1;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cgroup root: unexpected filesystem magic 0x", absl::Hex(root_magic),
                   " (want cgroup2 or tmpfs)"));
}

bool ParseKernelRelease(const std::string& release, int* major, int* minor) {
  std::vector<std::string> parts = absl::StrSplit(release, absl::MaxSplits('.', 2));
  if (parts.size() < 2) return false;
  std::string minor_digits;
  for (char c : parts[1]) {
    if (c < '0' || c > '9') break;
    minor_digits.push_back(c);
  }
  return absl::SimpleAtoi(parts[0], major) && absl::SimpleAtoi(minor_digits, minor);
}

absl::StatusOr<Features> ProbeFeatures(const ProbeOptions& options) {
  Features f;
  struct utsname uts;
  if (::uname(&uts) != 0) return base::ErrnoStatus(errno, "uname");
  f.kernel_release = uts.release;
  ParseKernelRelease(f.kernel_release, &f.kernel_major, &f.kernel_minor);

  struct statfs root;
  if (::statfs(options.cgroup_root.c_str(), &root) != 0) {
    return base::ErrnoStatus(errno, "statfs ", options.cgroup_root);
  }
  long unified_magic = 0;
  struct statfs unified;
  if (::statfs((options.cgroup_root + "/unified").c_str(), &unified) == 0) {
    unified_magic = static_cast<long>(unified.f_type);
  }
  ASSIGN_OR_RETURN(f.cgroup_mode, ClassifyCgroupMode(static_cast<long>(root.f_type), unified_magic));

  f.clone3 = SyscallExists(SYS_clone3);
  f.openat2 = SyscallExists(SYS_openat2);
  const bool v5_7 = f.kernel_major > 5 || (f.kernel_major == 5 && f.kernel_minor >= 7);
  f.clone_into_cgroup = f.clone3 && v5_7 && f.cgroup_mode == CgroupMode::kV2;
  f.cgroup_kill = f.cgroup_mode == CgroupMode::kV2 && Exists(options.cgroup_root + "/cgroup.kill");
  if (f.cgroup_mode == CgroupMode::kV2 && !f.cgroup_kill) {
    // cgroup.kill exists in every non-root cgroup only; the root has none. Use the version.
    f.cgroup_kill = f.kernel_major > 5 || (f.kernel_major == 5 && f.kernel_minor >= 14);
  }

  const std::string modules = absl::StrCat(options.modules_root, "/", f.kernel_release);
  f.ipvs = Exists(options.proc_root + "/net/ip_vs") ||
           Exists(modules + "/kernel/net/netfilter/ipvs/ip_vs.ko") ||
           Exists(modules + "/kernel/net/netfilter/ipvs/ip_vs.ko.xz");
  f.nftables = Exists(options.proc_root + "/net/netfilter") ||
               Exists(modules + "/kernel/net/netfilter/nf_tables.ko");
  auto max_userns = base::ReadFile(options.proc_root + "/sys/user/max_user_namespaces");
  int n = 0;
  f.user_namespaces = max_userns.ok() &&
                      absl::SimpleAtoi(absl::StripAsciiWhitespace(*max_userns), &n) && n > 0;
  f.bpf = SyscallExists(SYS_bpf);
  return f;
}

std::string Features::ToString() const {
  return absl::StrCat("kernel=", kernel_release, " cgroup=", CgroupModeName(cgroup_mode),
                      " clone3=", clone3, " clone_into_cgroup=", clone_into_cgroup,
                      " openat2=", openat2, " cgroup_kill=", cgroup_kill, " ipvs=", ipvs,
                      " nftables=", nftables, " userns=", user_namespaces, " bpf=", bpf);
}

}  // namespace shoal::kernel
