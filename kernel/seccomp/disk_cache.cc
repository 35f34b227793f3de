#include "kernel/seccomp/disk_cache.h"

#include <openssl/evp.h>
#include <seccomp.h>
#include <sys/stat.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "kernel/seccomp/oci_json.h"

namespace shoal::kernel {
namespace {

constexpr uint32_t kMagic = 0x53424631;  // "SBF1"
constexpr int kFormat = 1;

struct Header {
  uint32_t magic;
  uint32_t flags;
  uint32_t flags_explicit;
  int32_t max_named_syscall;
  uint32_t count;
};

}  // namespace

std::string SeccompCacheKey(const SeccompProfile& profile, unsigned lib_major, unsigned lib_minor,
                            unsigned lib_micro) {
  std::string material =
      absl::StrCat("shoal-seccomp-cache ", kFormat, " libseccomp ", lib_major, ".", lib_minor, ".",
                   lib_micro, " arch ", seccomp_arch_native(), "\n",
                   SeccompProfileToOciJson(profile).dump());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(material.data(), material.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), len));
}

std::optional<BpfProgram> ReadCachedProgram(const std::string& dir, const std::string& key) {
  auto data = base::ReadFile(absl::StrCat(dir, "/", key, ".bpf"));
  if (!data.ok() || data->size() < sizeof(Header)) return std::nullopt;
  Header h;
  memcpy(&h, data->data(), sizeof(h));
  if (h.magic != kMagic || h.count == 0 || h.count > BPF_MAXINSNS ||
      data->size() != sizeof(Header) + h.count * sizeof(sock_filter)) {
    return std::nullopt;
  }
  BpfProgram prog;
  prog.flags = h.flags;
  prog.flags_explicit = h.flags_explicit != 0;
  prog.max_named_syscall = h.max_named_syscall;
  prog.insns.resize(h.count);
  memcpy(prog.insns.data(), data->data() + sizeof(Header), h.count * sizeof(sock_filter));
  return prog;
}

void WriteCachedProgram(const std::string& dir, const std::string& key, const BpfProgram& prog) {
  // Parents first (e.g. <root>/.cache), all private to root.
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') mkdir(dir.substr(0, i).c_str(), 0700);
  }
  Header h{kMagic, prog.flags, prog.flags_explicit ? 1u : 0u, prog.max_named_syscall,
           static_cast<uint32_t>(prog.insns.size())};
  std::string data(reinterpret_cast<const char*>(&h), sizeof(h));
  data.append(reinterpret_cast<const char*>(prog.insns.data()),
              prog.insns.size() * sizeof(sock_filter));
  (void)base::WriteFileAtomic(absl::StrCat(dir, "/", key, ".bpf"), data, 0600);
}

}  // namespace shoal::kernel
