#include "kernel/seccomp/oci_json.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::kernel {
namespace {

using nlohmann::json;

absl::Status Field(const std::string& field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::StatusOr<uint64_t> U64(const json& v, const std::string& field) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return Field(field, absl::StrCat("must be a non-negative integer (got ", v.dump(), ")"));
}

absl::StatusOr<uint32_t> U32(const json& v, const std::string& field) {
  ASSIGN_OR_RETURN(uint64_t n, U64(v, field));
  if (n > std::numeric_limits<uint32_t>::max()) {
    return Field(field, absl::StrCat(n, " is out of range"));
  }
  return static_cast<uint32_t>(n);
}

absl::StatusOr<std::string> Str(const json& v, const std::string& field) {
  if (!v.is_string()) return Field(field, absl::StrCat("must be a string (got ", v.dump(), ")"));
  return v.get<std::string>();
}

// Optional array member: absent or null = empty.
absl::StatusOr<json> Array(const json& parent, const char* key, const std::string& field) {
  if (!parent.contains(key) || parent[key].is_null()) return json::array();
  if (!parent[key].is_array()) {
    return Field(field, absl::StrCat("must be an array (got ", parent[key].dump(), ")"));
  }
  return parent[key];
}

absl::StatusOr<SeccompAction> Action(const json& v, const std::string& field) {
  ASSIGN_OR_RETURN(std::string name, Str(v, field));
  auto a = SeccompActionFromName(name);
  if (!a) return Field(field, absl::StrCat("unknown action \"", name, "\""));
  return *a;
}

absl::StatusOr<SeccompArgCmp> Arg(const json& a, const std::string& field) {
  if (!a.is_object()) return Field(field, "must be an object");
  SeccompArgCmp cmp;
  for (const char* required : {"index", "value", "op"}) {
    if (!a.contains(required)) return Field(absl::StrCat(field, ".", required), "required");
  }
  ASSIGN_OR_RETURN(cmp.index, U32(a["index"], field + ".index"));
  ASSIGN_OR_RETURN(cmp.value, U64(a["value"], field + ".value"));
  if (a.contains("valueTwo") && !a["valueTwo"].is_null()) {
    ASSIGN_OR_RETURN(cmp.value_two, U64(a["valueTwo"], field + ".valueTwo"));
  }
  ASSIGN_OR_RETURN(std::string op, Str(a["op"], field + ".op"));
  auto parsed = SeccompOpFromName(op);
  if (!parsed) return Field(field + ".op", absl::StrCat("unknown operator \"", op, "\""));
  cmp.op = *parsed;
  return cmp;
}

absl::StatusOr<SeccompSyscall> Syscall(const json& s, const std::string& field) {
  if (!s.is_object()) return Field(field, "must be an object");
  SeccompSyscall out;
  if (!s.contains("names")) return Field(field + ".names", "required");
  ASSIGN_OR_RETURN(json names, Array(s, "names", field + ".names"));
  for (size_t j = 0; j < names.size(); ++j) {
    ASSIGN_OR_RETURN(std::string name, Str(names[j], absl::StrCat(field, ".names[", j, "]")));
    out.names.push_back(std::move(name));
  }
  if (!s.contains("action")) return Field(field + ".action", "required");
  ASSIGN_OR_RETURN(out.action, Action(s["action"], field + ".action"));
  if (s.contains("errnoRet") && !s["errnoRet"].is_null()) {
    ASSIGN_OR_RETURN(out.errno_ret, U32(s["errnoRet"], field + ".errnoRet"));
  }
  ASSIGN_OR_RETURN(json args, Array(s, "args", field + ".args"));
  for (size_t k = 0; k < args.size(); ++k) {
    ASSIGN_OR_RETURN(SeccompArgCmp cmp, Arg(args[k], absl::StrCat(field, ".args[", k, "]")));
    out.args.push_back(cmp);
  }
  return out;
}

}  // namespace

absl::StatusOr<SeccompProfile> SeccompProfileFromOciJson(const json& j, const std::string& field) {
  if (!j.is_object()) return Field(field, "must be an object");
  SeccompProfile p;
  if (!j.contains("defaultAction")) return Field(field + ".defaultAction", "required");
  ASSIGN_OR_RETURN(p.default_action, Action(j["defaultAction"], field + ".defaultAction"));
  if (j.contains("defaultErrnoRet") && !j["defaultErrnoRet"].is_null()) {
    ASSIGN_OR_RETURN(p.default_errno_ret, U32(j["defaultErrnoRet"], field + ".defaultErrnoRet"));
  }
  for (const char* key : {"listenerPath", "listenerMetadata"}) {
    if (j.contains(key) && !j[key].is_null() && j[key] != "") {
      return Field(absl::StrCat(field, ".", key),
                   "seccomp user notification (SCMP_ACT_NOTIFY) is not supported");
    }
  }
  ASSIGN_OR_RETURN(json arches, Array(j, "architectures", field + ".architectures"));
  for (size_t i = 0; i < arches.size(); ++i) {
    ASSIGN_OR_RETURN(std::string a,
                     Str(arches[i], absl::StrCat(field, ".architectures[", i, "]")));
    p.architectures.push_back(std::move(a));
  }
  if (j.contains("flags") && !j["flags"].is_null()) {
    ASSIGN_OR_RETURN(json flags, Array(j, "flags", field + ".flags"));
    p.flags.emplace();
    for (size_t i = 0; i < flags.size(); ++i) {
      std::string f = absl::StrCat(field, ".flags[", i, "]");
      ASSIGN_OR_RETURN(std::string name, Str(flags[i], f));
      auto flag = SeccompFlagFromName(name);
      if (!flag) return Field(f, absl::StrCat("unknown flag \"", name, "\""));
      p.flags->push_back(*flag);
    }
  }
  ASSIGN_OR_RETURN(json syscalls, Array(j, "syscalls", field + ".syscalls"));
  for (size_t i = 0; i < syscalls.size(); ++i) {
    ASSIGN_OR_RETURN(SeccompSyscall s,
                     Syscall(syscalls[i], absl::StrCat(field, ".syscalls[", i, "]")));
    p.syscalls.push_back(std::move(s));
  }
  if (absl::Status s = ValidateSeccompProfile(p); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".", s.message()));
  }
  return p;
}

json SeccompProfileToOciJson(const SeccompProfile& p) {
  json j = {{"defaultAction", SeccompActionName(p.default_action)},
            {"architectures", p.architectures}};
  if (p.default_errno_ret) j["defaultErrnoRet"] = *p.default_errno_ret;
  if (p.flags) {
    json flags = json::array();
    for (SeccompFlag f : *p.flags) flags.push_back(SeccompFlagName(f));
    j["flags"] = flags;
  }
  json syscalls = json::array();
  for (const SeccompSyscall& s : p.syscalls) {
    json e = {{"names", s.names}, {"action", SeccompActionName(s.action)}};
    if (s.errno_ret) e["errnoRet"] = *s.errno_ret;
    if (!s.args.empty()) {
      json args = json::array();
      for (const SeccompArgCmp& a : s.args) {
        args.push_back({{"index", a.index},
                        {"value", a.value},
                        {"valueTwo", a.value_two},
                        {"op", SeccompOpName(a.op)}});
      }
      e["args"] = args;
    }
    syscalls.push_back(std::move(e));
  }
  j["syscalls"] = syscalls;
  return j;
}

}  // namespace shoal::kernel
