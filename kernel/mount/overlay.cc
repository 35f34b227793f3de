#include <fcntl.h>
#include <sys/mount.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "kernel/mount/mount.h"

namespace shoal::kernel {

absl::StatusOr<base::UniqueFd> OpenOverlayMount(const std::vector<std::string>& lower_dirs,
                                                const std::string& upper_dir,
                                                const std::string& work_dir) {
  base::UniqueFd fs(fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs) return base::ErrnoStatus(errno, "fsopen overlay");
  std::vector<std::pair<const char*, std::string>> params = {
      {"lowerdir", absl::StrJoin(lower_dirs, ":")}};
  if (!upper_dir.empty()) {
    params.push_back({"upperdir", upper_dir});
    params.push_back({"workdir", work_dir});
  }
  for (const auto& [key, value] : params) {
    if (fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      return base::ErrnoStatus(errno, "overlay: ", key, "=", value);
    }
  }
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return base::ErrnoStatus(errno, "overlay: create superblock");
  }
  base::UniqueFd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt) return base::ErrnoStatus(errno, "fsmount overlay");
  return mnt;
}

}  // namespace shoal::kernel
