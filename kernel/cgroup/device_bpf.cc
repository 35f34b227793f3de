// Adapter: loads and attaches the device program with the raw bpf(2) syscall.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "kernel/cgroup/devices.h"

namespace shoal::kernel {

absl::Status AttachDeviceProgram(const std::string& cgroup_dir,
                                 const std::vector<bpf_insn>& program) {
  base::UniqueFd cgroup(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) return base::ErrnoStatus(errno, "open ", cgroup_dir);
  static constexpr char kLicense[] = "Apache-2.0";
  auto load = [&](char* log, uint32_t log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<uint64_t>(program.data());
    attr.insn_cnt = static_cast<uint32_t>(program.size());
    attr.license = reinterpret_cast<uint64_t>(kLicense);
    attr.log_buf = reinterpret_cast<uint64_t>(log);
    attr.log_size = log_size;
    attr.log_level = log ? 1 : 0;
    return base::UniqueFd(static_cast<int>(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr))));
  };
  // Without a log first: a verifier log that fills its buffer fails the load with ENOSPC
  // (Linux 6.1 does; newer kernels truncate). Only a rejected program is loaded again with
  // the log, for the error message.
  base::UniqueFd prog = load(nullptr, 0);
  if (!prog) {
    int err = errno;
    std::string log(64 * 1024, '\0');
    (void)load(log.data(), static_cast<uint32_t>(log.size()));
    log.resize(strnlen(log.data(), log.size()));
    if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);  // the verdict is last
    return base::ErrnoStatus(err, "load cgroup device program (", program.size(),
                             " insns; verifier: ", log, ")");
  }
  union bpf_attr attach;
  memset(&attach, 0, sizeof(attach));
  attach.target_fd = static_cast<uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof(attach)) != 0) {
    return base::ErrnoStatus(errno, "attach device program to ", cgroup_dir);
  }
  return absl::OkStatus();
}

}  // namespace shoal::kernel
