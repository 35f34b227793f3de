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
#include "kernel/seccomp/disk_cache.h"

namespace shoal::kernel {
namespace {

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using ScmpCtx = std::unique_ptr<void, CtxDeleter>;

uint32_t ScmpAction(SeccompAction a, const std::optional<uint32_t>& errno_ret) {
  uint32_t data = errno_ret.value_or(EPERM);
  switch (a) {
    case SeccompAction::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case SeccompAction::kKillProcess:
      return SCMP_ACT_KILL_PROCESS;
    case SeccompAction::kTrap:
      return SCMP_ACT_TRAP;
    case SeccompAction::kErrno:
      return SCMP_ACT_ERRNO(data);
    case SeccompAction::kTrace:
      return SCMP_ACT_TRACE(data);
    case SeccompAction::kAllow:
      return SCMP_ACT_ALLOW;
    case SeccompAction::kLog:
      return SCMP_ACT_LOG;
    case SeccompAction::kNotify:
      return SCMP_ACT_NOTIFY;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare ScmpOp(SeccompOp op) {
  switch (op) {
    case SeccompOp::kNe:
      return SCMP_CMP_NE;
    case SeccompOp::kLt:
      return SCMP_CMP_LT;
    case SeccompOp::kLe:
      return SCMP_CMP_LE;
    case SeccompOp::kEq:
      return SCMP_CMP_EQ;
    case SeccompOp::kGe:
      return SCMP_CMP_GE;
    case SeccompOp::kGt:
      return SCMP_CMP_GT;
    case SeccompOp::kMaskedEq:
      return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

unsigned int KernelFlag(SeccompFlag f) {
  switch (f) {
    case SeccompFlag::kTsync:
      return SECCOMP_FILTER_FLAG_TSYNC;
    case SeccompFlag::kLog:
      return SECCOMP_FILTER_FLAG_LOG;
    case SeccompFlag::kSpecAllow:
      return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    case SeccompFlag::kWaitKillableRecv:
      return 1U << 5;  // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (refused by validation)
  }
  return 0;
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

// Adds one syscalls[] entry's rule(s) for syscall `nr` (runc semantics: args on distinct
// indexes are ANDed in one rule; when an index repeats, each arg is its own rule).
int AddRules(void* ctx, uint32_t action, int nr, const std::vector<SeccompArgCmp>& args) {
  if (args.empty()) return seccomp_rule_add(ctx, action, nr, 0);
  std::vector<scmp_arg_cmp> cmps;
  bool repeated = false;
  unsigned seen = 0;
  for (const SeccompArgCmp& a : args) {
    cmps.push_back(scmp_arg_cmp{a.index, ScmpOp(a.op), a.value, a.value_two});
    repeated |= (seen >> a.index) & 1;
    seen |= 1u << a.index;
  }
  if (!repeated) {
    return seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                  cmps.data());
  }
  for (const scmp_arg_cmp& c : cmps) {
    if (int rc = seccomp_rule_add_array(ctx, action, nr, 1, &c); rc < 0 && rc != -EEXIST) {
      return rc;
    }
  }
  return 0;
}

bool WantsEnosysPrefix(const SeccompProfile& p) {
  if (p.default_action == SeccompAction::kAllow || p.default_action == SeccompAction::kLog) {
    return false;
  }
  return !(p.default_action == SeccompAction::kErrno && p.default_errno_ret == ENOSYS);
}

}  // namespace

absl::StatusOr<BpfProgram> CompileProfile(const SeccompProfile& profile) {
  RETURN_IF_ERROR(ValidateSeccompProfile(profile));
  const uint32_t default_action = ScmpAction(profile.default_action, profile.default_errno_ret);
  ScmpCtx ctx(seccomp_init(default_action));
  if (!ctx) return absl::InternalError("seccomp_init failed");
  for (size_t i = 0; i < profile.architectures.size(); ++i) {
    // Validated: the name is an OCI architecture libseccomp resolves.
    uint32_t arch = seccomp_arch_resolve_name(SeccompArchLibName(profile.architectures[i])->c_str());
    int rc = seccomp_arch_add(ctx.get(), arch);
    if (rc < 0 && rc != -EEXIST) {
      return ScmpError(rc, absl::StrCat("architectures[", i, "]: arch_add"));
    }
  }
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); rc < 0) {
    return ScmpError(rc, "attr NNP");
  }
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);  // best effort (binary tree)
  const bool native_x86_64 = seccomp_arch_native() == SCMP_ARCH_X86_64;
  int max_nr = 0;
  for (size_t i = 0; i < profile.syscalls.size(); ++i) {
    const SeccompSyscall& s = profile.syscalls[i];
    const uint32_t action = ScmpAction(s.action, s.errno_ret);
    for (size_t j = 0; j < s.names.size(); ++j) {
      const std::string& name = s.names[j];
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skipped, like runc
      if (native_x86_64) {
        int native = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.c_str());
        if (native > max_nr) max_nr = native;
      }
      if (action == default_action) continue;  // libseccomp refuses it (-EACCES); a no-op
      int rc = AddRules(ctx.get(), action, nr, s.args);
      // -EEXIST: the syscall already has a rule from an earlier entry; the first one wins.
      if (rc < 0 && rc != -EEXIST) {
        return ScmpError(rc, absl::StrCat("syscalls[", i, "].names[", j, "] \"", name,
                                          "\": rule_add"));
      }
    }
  }
  ASSIGN_OR_RETURN(std::vector<sock_filter> body, Export(ctx.get()));
  BpfProgram out;
  if (profile.flags) {
    out.flags_explicit = true;
    for (SeccompFlag f : *profile.flags) out.flags |= KernelFlag(f);
  }
  if (native_x86_64 && WantsEnosysPrefix(profile) && max_nr > 0) {
    // ENOSYS prefix (runc patchbpf): x86_64 syscall numbers above the largest named one get
    // ENOSYS instead of the default action; x32 numbers (bit 30) go to the body.
    constexpr uint32_t kX32Bit = 0x40000000;
    out.insns = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kX32Bit, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(max_nr), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
    };
    out.max_named_syscall = max_nr;
  }
  out.insns.insert(out.insns.end(), body.begin(), body.end());
  if (out.insns.size() > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat("seccomp program too long (", out.insns.size(),
                                                   " instructions, the kernel allows ",
                                                   BPF_MAXINSNS, ")"));
  }
  return out;
}

absl::StatusOr<BpfProgram> CompileDockerDefault(CapSet caps) {
  return CompileProfile(DockerDefaultProfile(caps));
}

absl::StatusOr<std::shared_ptr<const BpfProgram>> SeccompCache::DockerDefault(CapSet caps) {
  absl::MutexLock lock(&mu_);
  if (auto it = docker_.find(caps); it != docker_.end()) return it->second;
  ASSIGN_OR_RETURN(auto prog, Lookup(DockerDefaultProfile(caps)));
  docker_[caps] = prog;
  return prog;
}

absl::StatusOr<std::shared_ptr<const BpfProgram>> SeccompCache::Get(
    const SeccompProfile& profile) {
  absl::MutexLock lock(&mu_);
  return Lookup(profile);
}

absl::StatusOr<std::shared_ptr<const BpfProgram>> SeccompCache::Lookup(
    const SeccompProfile& profile) {
  if (auto it = profiles_.find(profile); it != profiles_.end()) return it->second;
  std::shared_ptr<const BpfProgram> shared;
  std::string key;
  if (!disk_dir_.empty()) {
    key = SeccompCacheKey(profile, seccomp_version()->major, seccomp_version()->minor,
                          seccomp_version()->micro);
    if (auto cached = ReadCachedProgram(disk_dir_, key)) {
      shared = std::make_shared<const BpfProgram>(std::move(*cached));
    }
  }
  if (!shared) {
    ASSIGN_OR_RETURN(BpfProgram prog, CompileProfile(profile));
    ++compilations_;
    if (!key.empty()) WriteCachedProgram(disk_dir_, key, prog);  // best effort
    shared = std::make_shared<const BpfProgram>(std::move(prog));
  }
  profiles_[profile] = shared;
  return shared;
}

void SeccompCache::SetDiskCacheDir(std::string dir) {
  absl::MutexLock lock(&mu_);
  disk_dir_ = std::move(dir);
}

int SeccompCache::compilations() const {
  absl::MutexLock lock(&mu_);
  return compilations_;
}

int LoadFilter(const BpfProgram& prog) {
  sock_fprog fprog{static_cast<unsigned short>(prog.insns.size()),
                   const_cast<sock_filter*>(prog.insns.data())};
  if (!prog.flags_explicit) return LoadFilter(fprog.filter, fprog.len);
  long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog.flags, &fprog);
  if (rc == 0) return 0;
  // TSYNC reports a thread that could not be synchronised as a positive thread id.
  return rc > 0 ? -ESRCH : -errno;
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
