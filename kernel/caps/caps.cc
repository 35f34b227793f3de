#include "kernel/caps/caps.h"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace shoal::kernel {

CapSet DockerDefaultCaps() {
  const int caps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,  CAP_FOWNER,
                      CAP_MKNOD,  CAP_NET_RAW,      CAP_SETGID,  CAP_SETUID,
                      CAP_SETFCAP, CAP_SETPCAP,     CAP_NET_BIND_SERVICE,
                      CAP_SYS_CHROOT, CAP_KILL,     CAP_AUDIT_WRITE};
  CapSet set = 0;
  for (int c : caps) set |= CapSet{1} << c;
  return set;
}

int LastCap() {
  // cap_max_bits() reads /proc/sys/kernel/cap_last_cap (falling back to the header's value).
  int bits = static_cast<int>(cap_max_bits());
  return bits > 0 ? bits - 1 : CAP_LAST_CAP;
}

absl::StatusOr<int> ParseCapName(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(name);
  if (upper.rfind("CAP_", 0) != 0) upper = "CAP_" + upper;
  bool numeric = upper.size() > 4;
  for (size_t i = 4; i < upper.size(); ++i) numeric &= std::isdigit(upper[i]) != 0;
  cap_value_t value = 0;
  // libcap accepts bare numbers; a capability must be given by name.
  if (numeric || upper == "CAP_ALL" || cap_from_name(absl::AsciiStrToLower(upper).c_str(), &value) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("unknown capability \"", name, "\""));
  }
  return static_cast<int>(value);
}

std::string CapName(int cap) {
  char* raw = cap_to_name(static_cast<cap_value_t>(cap));
  std::string name = raw ? absl::AsciiStrToUpper(raw) : absl::StrCat("CAP_", cap);
  if (raw) cap_free(raw);
  return name;
}

absl::StatusOr<CapSet> ComputeCaps(CapSet base, const std::vector<std::string>& add,
                                   const std::vector<std::string>& drop, int last_cap) {
  const CapSet all = last_cap >= 63 ? ~CapSet{0} : (CapSet{1} << (last_cap + 1)) - 1;
  auto parse = [&](const std::vector<std::string>& names, absl::string_view field,
                   CapSet* out) -> absl::Status {
    for (size_t i = 0; i < names.size(); ++i) {
      if (absl::AsciiStrToUpper(names[i]) == "ALL") {
        *out |= all;
        continue;
      }
      auto cap = ParseCapName(names[i]);
      if (!cap.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, "[", i, "]: ", cap.status().message()));
      }
      if (*cap > last_cap) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, "[", i, "]: capability \"", names[i], "\" is not supported by this kernel"));
      }
      *out |= CapSet{1} << *cap;
    }
    return absl::OkStatus();
  };
  CapSet added = 0, dropped = 0;
  if (auto s = parse(add, "cap_add", &added); !s.ok()) return s;
  if (auto s = parse(drop, "cap_drop", &dropped); !s.ok()) return s;
  // Docker: --cap-drop ALL --cap-add X keeps exactly X.
  if (dropped == all) return added & all;
  return ((base | added) & ~dropped) & all;
}

std::vector<std::string> CapNames(CapSet set) {
  std::vector<std::string> names;
  for (int c = 0; c < 64; ++c) {
    if (set & (CapSet{1} << c)) names.push_back(CapName(c));
  }
  return names;
}

int DropBoundingSet(CapSet keep, int last_cap) {
  for (int c = 0; c <= last_cap; ++c) {
    if (keep & (CapSet{1} << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
  }
  return 0;
}

int SetProcessCaps(CapSet caps, CapSet inheritable) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(caps);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(caps >> 32);
  data[0].inheritable = static_cast<uint32_t>(inheritable);
  data[1].inheritable = static_cast<uint32_t>(inheritable >> 32);
  if (syscall(SYS_capset, &header, data) < 0) return -errno;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    return -errno;
  }
  return 0;
}

}  // namespace shoal::kernel
