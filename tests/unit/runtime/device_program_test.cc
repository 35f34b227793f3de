// The cgroup v2 device program builder, checked by running the generated instructions in a
// small interpreter of the subset it emits (the real kernel run is the priv suite in tests/vm).
#include <set>

#include "gtest/gtest.h"
#include "kernel/cgroup/devices.h"
#include "kernel/cgroup/plan.h"

namespace shoal::kernel {
namespace {

struct Request {
  char type;  // 'c' or 'b'
  uint32_t major, minor;
  std::string access;  // "r", "rw", "m"
};

// Executes `p` on one request; fails the test on an instruction outside the expected subset.
int Eval(const std::vector<bpf_insn>& p, const Request& q) {
  uint32_t access = 0;
  for (char c : q.access) {
    access |= c == 'm' ? BPF_DEVCG_ACC_MKNOD : c == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
  }
  bpf_cgroup_dev_ctx ctx = {
      (access << 16) | (q.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR), q.major,
      q.minor};
  uint64_t r[11] = {};
  for (size_t pc = 0; pc < p.size(); ++pc) {
    const bpf_insn& i = p[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        EXPECT_EQ(i.src_reg, 1);  // only the context is read
        r[i.dst_reg] =
            *reinterpret_cast<const uint32_t*>(reinterpret_cast<const char*>(&ctx) + i.off);
        break;
      case BPF_ALU64 | BPF_MOV | BPF_X:
        r[i.dst_reg] = r[i.src_reg];
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        r[i.dst_reg] = static_cast<uint64_t>(int64_t{i.imm});
        break;
      case BPF_ALU64 | BPF_AND | BPF_K:
        r[i.dst_reg] &= static_cast<uint64_t>(int64_t{i.imm});
        break;
      case BPF_ALU64 | BPF_RSH | BPF_K:
        r[i.dst_reg] >>= i.imm;
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[i.dst_reg] != static_cast<uint64_t>(int64_t{i.imm})) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (r[i.dst_reg] == static_cast<uint64_t>(int64_t{i.imm})) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT:
        return static_cast<int>(r[0]);
      default:
        ADD_FAILURE() << "unexpected opcode " << int{i.code} << " at " << pc;
        return -1;
    }
  }
  ADD_FAILURE() << "fell off the end of the program";
  return -1;
}

// Every instruction reachable and every jump inside the program (the verifier's rules).
void ExpectWellFormed(const std::vector<bpf_insn>& p) {
  std::set<size_t> seen;
  std::vector<size_t> todo = {0};
  while (!todo.empty()) {
    size_t pc = todo.back();
    todo.pop_back();
    if (!seen.insert(pc).second) continue;
    ASSERT_LT(pc, p.size());
    const bpf_insn& i = p[pc];
    if (i.code == (BPF_JMP | BPF_EXIT)) continue;
    if (BPF_CLASS(i.code) == BPF_JMP) todo.push_back(pc + 1 + i.off);
    todo.push_back(pc + 1);
  }
  EXPECT_EQ(seen.size(), p.size()) << "unreachable instructions";
}

TEST(DeviceProgram, DockerDefaults) {
  auto p = BuildDeviceProgram(DockerDefaultDeviceRules());
  ExpectWellFormed(p);
  EXPECT_EQ(Eval(p, {'c', 1, 3, "rw"}), 1);    // /dev/null
  EXPECT_EQ(Eval(p, {'c', 1, 9, "r"}), 1);     // /dev/urandom
  EXPECT_EQ(Eval(p, {'c', 5, 2, "rw"}), 1);    // /dev/ptmx
  EXPECT_EQ(Eval(p, {'c', 136, 7, "rw"}), 1);  // /dev/pts/7
  EXPECT_EQ(Eval(p, {'c', 1, 1, "m"}), 1);     // mknod of anything
  EXPECT_EQ(Eval(p, {'b', 8, 0, "m"}), 1);
  EXPECT_EQ(Eval(p, {'c', 1, 1, "r"}), 0);      // ...but not opening it: /dev/mem
  EXPECT_EQ(Eval(p, {'c', 10, 229, "rw"}), 0);  // /dev/fuse
  EXPECT_EQ(Eval(p, {'b', 8, 0, "r"}), 0);      // a disk
  EXPECT_EQ(Eval(p, {'c', 1, 3, "rwm"}), 1);
  EXPECT_EQ(Eval(p, {'c', 4, 3, "w"}), 0);
}

TEST(DeviceProgram, LaterRulesOverrideEarlierOnes) {
  std::vector<DeviceRule> rules = {{true, 'a', -1, -1, "rwm"},
                                   {false, 'c', 1, 3, "w"},
                                   {true, 'c', 1, 3, "w"},
                                   {false, 'b', -1, -1, "rwm"}};
  auto p = BuildDeviceProgram(rules);
  ExpectWellFormed(p);
  EXPECT_EQ(Eval(p, {'c', 1, 3, "w"}), 1);  // re-allowed by the third rule
  EXPECT_EQ(Eval(p, {'b', 7, 0, "r"}), 0);  // all block devices denied last
  EXPECT_EQ(Eval(p, {'c', 9, 9, "r"}), 1);  // the first rule's default
  // A deny of "w" refuses a read-write open; an allow of "r" does not grant it.
  auto q = BuildDeviceProgram({{true, 'a', -1, -1, "rwm"}, {false, 'c', 1, 5, "w"}});
  EXPECT_EQ(Eval(q, {'c', 1, 5, "rw"}), 0);
  EXPECT_EQ(Eval(q, {'c', 1, 5, "r"}), 1);
  auto r = BuildDeviceProgram({{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 5, "r"}});
  EXPECT_EQ(Eval(r, {'c', 1, 5, "rw"}), 0);
  EXPECT_EQ(Eval(r, {'c', 1, 5, "r"}), 1);
}

TEST(DeviceProgram, RuleMatchingEverythingEndsTheProgram) {
  // Rules older than a match-all are shadowed; emitting them would be unreachable code.
  auto p = BuildDeviceProgram({{true, 'c', 1, 3, "rwm"}, {false, 'a', -1, -1, "rwm"}});
  ExpectWellFormed(p);
  EXPECT_EQ(Eval(p, {'c', 1, 3, "r"}), 0);
  ASSERT_GE(p.size(), 2u);
  EXPECT_EQ(p.back().code, BPF_JMP | BPF_EXIT);
  EXPECT_EQ(p[p.size() - 2].imm, 0);
  // No rules: everything is denied.
  auto none = BuildDeviceProgram({});
  ExpectWellFormed(none);
  EXPECT_EQ(Eval(none, {'c', 1, 3, "r"}), 0);
}

TEST(DeviceProgram, ExactInstructionsOfOneRule) {
  // Header (7 insns) + "c 1:3 r" allow block + default deny.
  auto p = BuildDeviceProgram({{true, 'c', 1, 3, "r"}});
  ASSERT_EQ(p.size(), 7u + 8u + 2u);
  const bpf_insn* b = &p[7];
  EXPECT_EQ(b[0].code, BPF_JMP | BPF_JNE | BPF_K);  // type != char -> next
  EXPECT_EQ(b[0].imm, BPF_DEVCG_DEV_CHAR);
  EXPECT_EQ(b[0].off, 7);
  EXPECT_EQ(b[2].imm, (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_WRITE));  // access & ~granted
  EXPECT_EQ(b[3].off, 4);
  EXPECT_EQ(b[4].imm, 1);  // major
  EXPECT_EQ(b[5].imm, 3);  // minor
  EXPECT_EQ(b[5].off, 2);
  EXPECT_EQ(b[6].imm, 1);  // allow
}

TEST(DeviceProgram, V1LinesComeFromTheSameRules) {
  auto w = PlanV1Devices();
  ASSERT_EQ(w.size(), DockerDefaultDeviceRules().size());
  EXPECT_EQ(w[0], (CgroupWrite{"devices", "devices.deny", "a"}));
  EXPECT_EQ(w[1], (CgroupWrite{"devices", "devices.allow", "c *:* m"}));
  EXPECT_EQ(w.back(), (CgroupWrite{"devices", "devices.allow", "c 136:* rwm"}));
}

}  // namespace
}  // namespace shoal::kernel
