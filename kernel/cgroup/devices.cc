#include "kernel/cgroup/devices.h"

#include "absl/strings/str_cat.h"

namespace shoal::kernel {
namespace {

constexpr bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i = {};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
constexpr bpf_insn LoadW(uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
constexpr bpf_insn MovReg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
constexpr bpf_insn AluImm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
}
constexpr bpf_insn JneImm(uint8_t dst, int32_t imm, int16_t off) {
  return Insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm);
}
constexpr bpf_insn JeqImm(uint8_t dst, int32_t imm, int16_t off) {
  return Insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm);
}
constexpr bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Registers: r1 = ctx, r2 = access_type, r3 = device type, r4 = access, r5 = major,
// r6 = minor, r7 = scratch, r0 = verdict.
constexpr uint8_t kType = 3, kAccess = 4, kMajor = 5, kMinor = 6, kScratch = 7;

int32_t AccessBits(const std::string& access) {
  int32_t bits = 0;
  for (char c : access) {
    bits |= c == 'm'   ? BPF_DEVCG_ACC_MKNOD
            : c == 'r' ? BPF_DEVCG_ACC_READ
            : c == 'w' ? BPF_DEVCG_ACC_WRITE
                       : 0;
  }
  return bits;
}

}  // namespace

const std::vector<DeviceRule>& DockerDefaultDeviceRules() {
  static const auto* rules = new std::vector<DeviceRule>{
      {false, 'a', -1, -1, "rwm"},                                                      // deny all
      {true, 'c', -1, -1, "m"},    {true, 'b', -1, -1, "m"}, {true, 'c', 1, 3, "rwm"},  // null
      {true, 'c', 1, 5, "rwm"},                                                         // zero
      {true, 'c', 1, 7, "rwm"},                                                         // full
      {true, 'c', 1, 8, "rwm"},                                                         // random
      {true, 'c', 1, 9, "rwm"},                                                         // urandom
      {true, 'c', 5, 0, "rwm"},                                                         // tty
      {true, 'c', 5, 1, "rwm"},                                                         // console
      {true, 'c', 5, 2, "rwm"},                                                         // ptmx
      {true, 'c', 136, -1, "rwm"},  // /dev/pts/*
  };
  return *rules;
}

std::string DeviceRuleLine(const DeviceRule& r) {
  if (r.type == 'a') return "a";
  auto num = [](int64_t n) { return n < 0 ? std::string("*") : absl::StrCat(n); };
  return absl::StrCat(std::string(1, r.type), " ", num(r.major), ":", num(r.minor), " ", r.access);
}

std::vector<bpf_insn> BuildDeviceProgram(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> p = {
      LoadW(2, 1, offsetof(bpf_cgroup_dev_ctx, access_type)),
      MovReg(kType, 2),
      AluImm(BPF_AND, kType, 0xffff),
      MovReg(kAccess, 2),
      AluImm(BPF_RSH, kAccess, 16),
      LoadW(kMajor, 1, offsetof(bpf_cgroup_dev_ctx, major)),
      LoadW(kMinor, 1, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRule& r = *it;
    const int32_t bits = AccessBits(r.access);
    constexpr int32_t kAll = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    // Each check is one or three instructions ending in "if mismatch goto next rule"; the
    // jump offsets are filled in once the block's length is known.
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;
    auto skip_if = [&](bpf_insn jump) {
      jumps.push_back(block.size());
      block.push_back(jump);
    };
    if (r.type != 'a') {
      skip_if(JneImm(kType, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0));
    }
    if ((bits & kAll) != kAll) {
      block.push_back(MovReg(kScratch, kAccess));
      if (r.allow) {
        // An allow rule covers a request only if it grants every requested bit:
        // (access & ~bits) == 0.
        block.push_back(AluImm(BPF_AND, kScratch, ~bits & kAll));
        skip_if(JneImm(kScratch, 0, 0));
      } else {
        // A deny rule refuses a request asking for any of its bits (v1 semantics with a
        // default-allow list): (access & bits) != 0.
        block.push_back(AluImm(BPF_AND, kScratch, bits));
        skip_if(JeqImm(kScratch, 0, 0));
      }
    }
    if (r.major >= 0) skip_if(JneImm(kMajor, static_cast<int32_t>(r.major), 0));
    if (r.minor >= 0) skip_if(JneImm(kMinor, static_cast<int32_t>(r.minor), 0));
    block.push_back(AluImm(BPF_MOV, 0, r.allow ? 1 : 0));
    block.push_back(Exit());
    for (size_t j : jumps) block[j].off = static_cast<int16_t>(block.size() - j - 1);
    p.insert(p.end(), block.begin(), block.end());
    if (jumps.empty()) return p;  // matches everything: older rules are unreachable
  }
  p.push_back(AluImm(BPF_MOV, 0, 0));  // no rule matched: deny
  p.push_back(Exit());
  return p;
}

}  // namespace shoal::kernel
