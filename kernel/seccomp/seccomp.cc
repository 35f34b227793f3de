#include "kernel/seccomp/seccomp.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "kernel/seccomp/docker_profile.h"

namespace shoal::kernel {
namespace {

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using ScmpCtx = std::unique_ptr<void, CtxDeleter>;

scmp_arg_cmp ToCmp(const SeccompArg& a) {
  switch (a.op) {
    case SeccompArg::kEq:
      return SCMP_CMP(a.index, SCMP_CMP_EQ, a.value);
    case SeccompArg::kLt:
      return SCMP_CMP(a.index, SCMP_CMP_LT, a.value);
    case SeccompArg::kGt:
      return SCMP_CMP(a.index, SCMP_CMP_GT, a.value);
    case SeccompArg::kMaskedEq:
      return SCMP_CMP(a.index, SCMP_CMP_MASKED_EQ, a.value, a.value_two);
  }
  return SCMP_CMP(a.index, SCMP_CMP_EQ, a.value);
}

absl::Status ScmpError(int rc, absl::string_view what) {
  return base::ErrnoStatus(-rc, "seccomp ", what);
}

// Reads the exported filter back through a memfd (libseccomp 2.5 exports to an fd only).
absl::StatusOr<std::vector<sock_filter>> Export(void* ctx) {
  base::UniqueFd fd(memfd_create("shoal-seccomp", MFD_CLOEXEC));
  if (!fd) return base::ErrnoStatus(errno, "memfd_create");
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) return ScmpError(rc, "export");
  off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0) {
    return absl::InternalError("seccomp export: unexpected program size");
  }
  std::vector<sock_filter> insns(size / sizeof(sock_filter));
  if (pread(fd.get(), insns.data(), size, 0) != size) {
    return base::ErrnoStatus(errno, "read exported seccomp program");
  }
  return insns;
}

}  // namespace

absl::StatusOr<BpfProgram> CompileDockerDefault(CapSet caps) {
  ScmpCtx ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return absl::InternalError("seccomp_init failed");
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    int rc = seccomp_arch_add(ctx.get(), arch);
    if (rc < 0 && rc != -EEXIST) return ScmpError(rc, "arch_add");
  }
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); rc < 0) {
    return ScmpError(rc, "attr NNP");
  }
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);  // best effort (binary tree)
  int max_nr = 0;
  for (const SeccompRule& rule : DockerDefaultRules()) {
    if (rule.requires_caps && !(rule.requires_caps & caps)) continue;
    if (rule.excludes_caps & caps) continue;
    uint32_t action = rule.errno_ret ? SCMP_ACT_ERRNO(rule.errno_ret) : SCMP_ACT_ALLOW;
    for (const char* name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skipped, like moby
      int native = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
      if (native >= 0 && native > max_nr) max_nr = native;
      int rc;
      if (rule.any_of.empty()) {
        rc = seccomp_rule_add(ctx.get(), action, nr, 0);
      } else {
        rc = 0;
        for (const SeccompArg& arg : rule.any_of) {
          scmp_arg_cmp cmp = ToCmp(arg);
          rc = seccomp_rule_add_array(ctx.get(), action, nr, 1, &cmp);
          if (rc < 0) break;
        }
      }
      // -EEXIST: a later cap group repeats an already-allowed name.
      if (rc < 0 && rc != -EEXIST && rc != -EACCES) return ScmpError(rc, name);
    }
  }
  ASSIGN_OR_RETURN(std::vector<sock_filter> body, Export(ctx.get()));
  // ENOSYS prefix (runc patchbpf): x86_64 syscall numbers above the largest named one get
  // ENOSYS instead of EPERM, so glibc falls back from syscalls newer than the profile.
  constexpr uint32_t kX32Bit = 0x40000000;
  std::vector<sock_filter> prog = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kX32Bit, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(max_nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
  };
  prog.insert(prog.end(), body.begin(), body.end());
  if (prog.size() > BPF_MAXINSNS) return absl::InternalError("seccomp program too long");
  return BpfProgram{std::move(prog), max_nr};
}

absl::StatusOr<std::shared_ptr<const BpfProgram>> SeccompCache::DockerDefault(CapSet caps) {
  absl::MutexLock lock(&mu_);
  if (auto it = cache_.find(caps); it != cache_.end()) return it->second;
  ASSIGN_OR_RETURN(BpfProgram prog, CompileDockerDefault(caps));
  ++compilations_;
  auto shared = std::make_shared<const BpfProgram>(std::move(prog));
  cache_[caps] = shared;
  return shared;
}

int SeccompCache::compilations() const {
  absl::MutexLock lock(&mu_);
  return compilations_;
}

int LoadFilter(const sock_filter* insns, unsigned short count) {
  sock_fprog prog{count, const_cast<sock_filter*>(insns)};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog) == 0) {
    return 0;
  }
  if (errno != EINVAL) return -errno;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0 ? 0 : -errno;
}

}  // namespace shoal::kernel
