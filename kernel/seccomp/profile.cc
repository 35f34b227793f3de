#include "kernel/seccomp/profile.h"

#include <seccomp.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "kernel/seccomp/docker_profile.h"

namespace shoal::kernel {
namespace {

struct ActionName {
  const char* name;
  SeccompAction action;
};
constexpr ActionName kActions[] = {
    {"SCMP_ACT_KILL", SeccompAction::kKillThread},
    {"SCMP_ACT_KILL_THREAD", SeccompAction::kKillThread},
    {"SCMP_ACT_KILL_PROCESS", SeccompAction::kKillProcess},
    {"SCMP_ACT_TRAP", SeccompAction::kTrap},
    {"SCMP_ACT_ERRNO", SeccompAction::kErrno},
    {"SCMP_ACT_TRACE", SeccompAction::kTrace},
    {"SCMP_ACT_ALLOW", SeccompAction::kAllow},
    {"SCMP_ACT_LOG", SeccompAction::kLog},
    {"SCMP_ACT_NOTIFY", SeccompAction::kNotify},
};

struct OpName {
  const char* name;
  SeccompOp op;
};
constexpr OpName kOps[] = {
    {"SCMP_CMP_NE", SeccompOp::kNe}, {"SCMP_CMP_LT", SeccompOp::kLt},
    {"SCMP_CMP_LE", SeccompOp::kLe}, {"SCMP_CMP_EQ", SeccompOp::kEq},
    {"SCMP_CMP_GE", SeccompOp::kGe}, {"SCMP_CMP_GT", SeccompOp::kGt},
    {"SCMP_CMP_MASKED_EQ", SeccompOp::kMaskedEq},
};

struct FlagName {
  const char* name;
  SeccompFlag flag;
};
constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SeccompFlag::kTsync},
    {"SECCOMP_FILTER_FLAG_LOG", SeccompFlag::kLog},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SeccompFlag::kSpecAllow},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SeccompFlag::kWaitKillableRecv},
};

// runtime-spec config-linux.md, "architectures".
constexpr const char* kArches[] = {
    "SCMP_ARCH_X86",      "SCMP_ARCH_X86_64",    "SCMP_ARCH_X32",      "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",  "SCMP_ARCH_MIPS",      "SCMP_ARCH_MIPS64",   "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",   "SCMP_ARCH_MIPSEL64",  "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",    "SCMP_ARCH_PPC64LE",   "SCMP_ARCH_S390",     "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",   "SCMP_ARCH_PARISC64",  "SCMP_ARCH_RISCV64",  "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",     "SCMP_ARCH_SH",        "SCMP_ARCH_SHEB",
};

constexpr uint32_t kMaxErrno = 4095;  // the kernel caps SECCOMP_RET_ERRNO data at MAX_ERRNO
constexpr uint32_t kMaxTraceData = 0xffff;

absl::Status Field(const std::string& field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckAction(SeccompAction action, const std::optional<uint32_t>& errno_ret,
                         const std::string& action_field, const std::string& errno_field) {
  if (action == SeccompAction::kNotify) {
    return Field(action_field,
                 "SCMP_ACT_NOTIFY is not supported (no seccomp user-notification listener / "
                 "listenerPath support)");
  }
  if (!errno_ret) return absl::OkStatus();
  if (action == SeccompAction::kErrno) {
    if (*errno_ret > kMaxErrno) {
      return Field(errno_field, absl::StrCat(*errno_ret, " is not an errno value (0..4095)"));
    }
    return absl::OkStatus();
  }
  if (action == SeccompAction::kTrace) {
    if (*errno_ret > kMaxTraceData) {
      return Field(errno_field, absl::StrCat(*errno_ret, " does not fit SCMP_ACT_TRACE's 16 bits"));
    }
    return absl::OkStatus();
  }
  return Field(errno_field, absl::StrCat("only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ",
                                         SeccompActionName(action)));
}

}  // namespace

std::optional<SeccompAction> SeccompActionFromName(absl::string_view name) {
  for (const ActionName& a : kActions) {
    if (name == a.name) return a.action;
  }
  return std::nullopt;
}

std::optional<SeccompOp> SeccompOpFromName(absl::string_view name) {
  for (const OpName& o : kOps) {
    if (name == o.name) return o.op;
  }
  return std::nullopt;
}

std::optional<SeccompFlag> SeccompFlagFromName(absl::string_view name) {
  for (const FlagName& f : kFlags) {
    if (name == f.name) return f.flag;
  }
  return std::nullopt;
}

const char* SeccompActionName(SeccompAction a) {
  // kKillThread prints as SCMP_ACT_KILL_THREAD (the first match after the alias).
  for (const ActionName& n : kActions) {
    if (n.action == a && a != SeccompAction::kKillThread) return n.name;
  }
  return a == SeccompAction::kKillThread ? "SCMP_ACT_KILL_THREAD" : "?";
}

const char* SeccompOpName(SeccompOp op) {
  for (const OpName& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

const char* SeccompFlagName(SeccompFlag f) {
  for (const FlagName& n : kFlags) {
    if (n.flag == f) return n.name;
  }
  return "?";
}

std::vector<std::string> SeccompActionNames(bool supported_only) {
  std::vector<std::string> out;
  for (const ActionName& a : kActions) {
    if (supported_only && a.action == SeccompAction::kNotify) continue;
    out.push_back(a.name);
  }
  return out;
}

std::vector<std::string> SeccompOpNames() {
  std::vector<std::string> out;
  for (const OpName& o : kOps) out.push_back(o.name);
  return out;
}

std::vector<std::string> SeccompFlagNames(bool supported_only) {
  std::vector<std::string> out;
  for (const FlagName& f : kFlags) {
    if (supported_only && f.flag == SeccompFlag::kWaitKillableRecv) continue;
    out.push_back(f.name);
  }
  return out;
}

std::vector<std::string> SeccompArchNames() {
  std::vector<std::string> out;
  for (const char* a : kArches) {
    if (seccomp_arch_resolve_name(SeccompArchLibName(a)->c_str()) != 0) out.push_back(a);
  }
  return out;
}

std::optional<std::string> SeccompArchLibName(absl::string_view oci_name) {
  for (const char* a : kArches) {
    if (oci_name == a) {
      return absl::AsciiStrToLower(absl::StripPrefix(oci_name, "SCMP_ARCH_"));
    }
  }
  return std::nullopt;
}

absl::Status ValidateSeccompProfile(const SeccompProfile& p) {
  if (auto s = CheckAction(p.default_action, p.default_errno_ret, "defaultAction",
                           "defaultErrnoRet");
      !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < p.architectures.size(); ++i) {
    auto lib = SeccompArchLibName(p.architectures[i]);
    if (!lib) {
      return Field(absl::StrCat("architectures[", i, "]"),
                   absl::StrCat("unknown architecture \"", p.architectures[i], "\""));
    }
    if (seccomp_arch_resolve_name(lib->c_str()) == 0) {
      const scmp_version* v = seccomp_version();
      return Field(absl::StrCat("architectures[", i, "]"),
                   absl::StrCat("\"", p.architectures[i], "\" is not supported by libseccomp ",
                                v->major, ".", v->minor, ".", v->micro));
    }
  }
  if (p.flags) {
    for (size_t i = 0; i < p.flags->size(); ++i) {
      if ((*p.flags)[i] == SeccompFlag::kWaitKillableRecv) {
        return Field(absl::StrCat("flags[", i, "]"),
                     "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a notification listener, "
                     "which is not supported");
      }
    }
  }
  for (size_t i = 0; i < p.syscalls.size(); ++i) {
    const SeccompSyscall& s = p.syscalls[i];
    std::string field = absl::StrCat("syscalls[", i, "]");
    if (s.names.empty()) return Field(field + ".names", "must list at least one syscall");
    for (size_t j = 0; j < s.names.size(); ++j) {
      if (s.names[j].empty()) {
        return Field(absl::StrCat(field, ".names[", j, "]"), "empty syscall name");
      }
    }
    if (auto st = CheckAction(s.action, s.errno_ret, field + ".action", field + ".errnoRet");
        !st.ok()) {
      return st;
    }
    for (size_t k = 0; k < s.args.size(); ++k) {
      if (s.args[k].index > 5) {
        return Field(absl::StrCat(field, ".args[", k, "].index"),
                     absl::StrCat(s.args[k].index, " is out of range (syscalls have args 0..5)"));
      }
    }
  }
  return absl::OkStatus();
}

SeccompProfile DockerDefaultProfile(CapSet caps) {
  SeccompProfile p;
  p.default_action = SeccompAction::kErrno;
  p.default_errno_ret = EPERM;
  p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  for (const SeccompRule& rule : DockerDefaultRules()) {
    if (rule.requires_caps && !(rule.requires_caps & caps)) continue;
    if (rule.excludes_caps & caps) continue;
    SeccompSyscall base;
    base.names.assign(rule.names.begin(), rule.names.end());
    base.action = rule.errno_ret ? SeccompAction::kErrno : SeccompAction::kAllow;
    if (rule.errno_ret) base.errno_ret = static_cast<uint32_t>(rule.errno_ret);
    if (rule.any_of.empty()) {
      p.syscalls.push_back(std::move(base));
      continue;
    }
    // Docker's default.json lists each alternative as its own entry (ORed).
    for (const SeccompArg& a : rule.any_of) {
      SeccompSyscall s = base;
      SeccompOp op = a.op == SeccompArg::kEq   ? SeccompOp::kEq
                     : a.op == SeccompArg::kLt ? SeccompOp::kLt
                     : a.op == SeccompArg::kGt ? SeccompOp::kGt
                                               : SeccompOp::kMaskedEq;
      s.args.push_back({a.index, a.value, a.value_two, op});
      p.syscalls.push_back(std::move(s));
    }
  }
  return p;
}

}  // namespace shoal::kernel
