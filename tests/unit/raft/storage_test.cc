// Storage: WAL round trips, group-commit records, torn tails, lost unsynced writes, flipped
// bits, snapshots and compaction, on real files in a temp directory.
#include "manager/raft/storage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "base/file.h"
#include "gtest/gtest.h"

namespace shoal::manager::raft {
namespace {

namespace fs = std::filesystem;

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoaltest-raft-storage-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static api::Entry E(uint64_t index, uint64_t term, std::string data = "") {
    api::Entry e;
    e.set_index(index);
    e.set_term(term);
    e.set_data(data.empty() ? "data-" + std::to_string(index) + "-" + std::to_string(term) : data);
    return e;
  }
  static Ready R(std::vector<api::Entry> ents, uint64_t term, uint64_t commit) {
    Ready rd;
    rd.entries = std::move(ents);
    api::HardState hs;
    hs.set_term(term);
    hs.set_commit(commit);
    rd.hard_state = hs;
    return rd;
  }
  std::vector<std::string> Segments() {
    std::vector<std::string> out;
    for (auto& p : fs::directory_iterator(dir_ + "/wal")) out.push_back(p.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  static void FlipBit(const std::string& path, uint64_t offset) {
    std::string data = *base::ReadFile(path);
    ASSERT_LT(offset, data.size());
    data[offset] ^= 0x10;
    ASSERT_TRUE(base::WriteFileAtomic(path, data, 0600).ok());
  }

  std::string dir_;
};

TEST_F(StorageTest, RoundTripAcrossSegmentsWithConflictTruncation) {
  StorageOptions opts;
  opts.segment_bytes = 512;
  {
    auto s = Storage::Open(dir_, opts);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE((*s)->recovery().fresh);
    for (uint64_t i = 1; i <= 40; ++i) ASSERT_TRUE((*s)->Save(R({E(i, 1)}, 1, i - 1)).ok());
    // A new leader overwrites 31..40 with a shorter term-2 suffix.
    ASSERT_TRUE((*s)->Save(R({E(31, 2), E(32, 2)}, 2, 30)).ok());
    EXPECT_GE((*s)->segment_count(), 3u);
    EXPECT_GE((*s)->syncs(), 41u);
  }
  auto s = Storage::Open(dir_, opts);
  ASSERT_TRUE(s.ok()) << s.status();
  DurableState ds = (*s)->TakeRecovered();
  EXPECT_FALSE((*s)->recovery().fresh);
  ASSERT_EQ(ds.entries.size(), 32u);
  EXPECT_EQ(ds.entries[29].term(), 1u);
  EXPECT_EQ(ds.entries[30].term(), 2u);
  EXPECT_EQ(ds.entries[31].data(), "data-32-2");
  EXPECT_EQ(ds.hard_state.term(), 2u);
  EXPECT_EQ(ds.hard_state.commit(), 30u);
  // Appending after recovery continues the log.
  ASSERT_TRUE((*s)->Save(R({E(33, 2)}, 2, 32)).ok());
  s = Storage::Open(dir_, opts);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->TakeRecovered().entries.size(), 33u);
}

// Crash model: everything acknowledged (Save returned) was fdatasync'ed; whatever the last,
// unacknowledged write left behind is arbitrary: nothing, a prefix, or zero-filled blocks.
TEST_F(StorageTest, TornTailAndLostUnsyncedWritesNeverLoseAcknowledgedEntries) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 40; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fs::remove_all(dir_);
    uint64_t acked = 0;
    std::string seg;
    StorageOptions opts;
    opts.preallocate = round % 2 == 1;
    opts.segment_bytes = 1 << 20;  // one segment (the test rewrites it whole)
    {
      auto s = Storage::Open(dir_, opts);
      ASSERT_TRUE(s.ok()) << s.status();
      int n = 1 + rng() % 20;
      for (int i = 0; i < n; ++i) {
        std::vector<api::Entry> batch;
        int k = 1 + rng() % 4;  // group commit: several entries, one record, one sync
        for (int j = 0; j < k; ++j) batch.push_back(E(++acked, 1, std::string(rng() % 300, 'x')));
        ASSERT_TRUE((*s)->Save(R(batch, 1, acked)).ok());
      }
      seg = Segments().back();
    }
    // The unacknowledged next write, partly persisted.
    api::WalRecord rec;
    for (int j = 0; j < 3; ++j) *rec.add_entries() = E(acked + 1 + j, 1, std::string(200, 'y'));
    std::string frame = FrameRecord(rec.SerializeAsString());
    std::string tail;
    switch (round % 3) {
      case 0:
        tail = frame.substr(0, rng() % frame.size());  // prefix
        break;
      case 1:
        tail = std::string(rng() % 4096 + 1, '\0');  // size extended, data never written
        break;
      default:
        tail = frame;  // fully written but the crash came before fdatasync: keep or lose
        tail[rng() % tail.size()] ^= 1;                // ...here: one damaged block
        break;
    }
    {
      // The write lands right after the last record: at the end of the file, or inside the
      // preallocated (zero) space. The last record's last byte is never zero here.
      std::string data = *base::ReadFile(seg);
      size_t end = data.size();
      while (end > 0 && data[end - 1] == 0) --end;
      if (opts.preallocate) {
        ASSERT_GT(data.size(), end + tail.size());
        data.replace(end, tail.size(), tail);
      } else {
        ASSERT_EQ(end, data.size());
        data += tail;
      }
      ASSERT_TRUE(base::WriteFileAtomic(seg, data, 0600).ok());
    }
    auto s = Storage::Open(dir_, opts);
    ASSERT_TRUE(s.ok()) << s.status();
    DurableState ds = (*s)->TakeRecovered();
    ASSERT_EQ(ds.entries.size(), acked) << "lost or invented entries";
    for (uint64_t i = 0; i < acked; ++i) ASSERT_EQ(ds.entries[i].index(), i + 1);
    EXPECT_EQ(ds.hard_state.commit(), acked);
    // Zeros after the last record are unused space, not a torn record.
    std::string written = tail;
    while (!written.empty() && written.back() == 0) written.pop_back();
    EXPECT_EQ((*s)->recovery().torn_bytes, written.size());
    // The truncated log accepts new writes and recovers them.
    ASSERT_TRUE((*s)->Save(R({E(acked + 1, 1)}, 1, acked + 1)).ok());
    s = Storage::Open(dir_, opts);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->TakeRecovered().entries.size(), acked + 1);
  }
}

TEST_F(StorageTest, FlippedBitInTheMiddleIsRefusedWithFileAndOffset) {
  StorageOptions opts;
  opts.segment_bytes = 400;
  {
    auto s = Storage::Open(dir_, opts);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 30; ++i) ASSERT_TRUE((*s)->Save(R({E(i, 1)}, 1, i)).ok());
  }
  auto segs = Segments();
  ASSERT_GE(segs.size(), 3u);
  for (const std::string& victim : {segs[1], segs.back()}) {
    SCOPED_TRACE(victim);
    std::string before = *base::ReadFile(victim);
    FlipBit(victim, 60);  // inside the second record: more records follow
    auto s = Storage::Open(dir_, opts);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(s.status().message().find(victim), absl::string_view::npos) << s.status();
    EXPECT_NE(s.status().message().find("offset"), absl::string_view::npos) << s.status();
    ASSERT_TRUE(base::WriteFileAtomic(victim, before, 0600).ok());
  }
  // A flipped bit in a record header is refused too (not mistaken for a torn tail).
  FlipBit(segs.back(), 2);
  auto s = Storage::Open(dir_, opts);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
}

TEST_F(StorageTest, SnapshotsCompactionInstallAndCorruptSnapshot) {
  StorageOptions opts;
  opts.segment_bytes = 300;
  {
    auto s = Storage::Open(dir_, opts);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 50; ++i) ASSERT_TRUE((*s)->Save(R({E(i, 1)}, 1, i)).ok());
    size_t before = (*s)->segment_count();
    SnapshotData sd;
    sd.metadata.set_index(40);
    sd.metadata.set_term(1);
    sd.metadata.mutable_conf_state()->add_voters(1);
    sd.data = std::make_shared<const std::string>("state@40");
    ASSERT_TRUE((*s)->SaveSnapshot(sd, 35).ok());
    EXPECT_LT((*s)->segment_count(), before) << "compaction deleted nothing";
  }
  {
    auto s = Storage::Open(dir_, opts);
    ASSERT_TRUE(s.ok()) << s.status();
    DurableState ds = (*s)->TakeRecovered();
    ASSERT_TRUE(ds.snapshot.has_value());
    EXPECT_EQ(*ds.snapshot->data, "state@40");
    ASSERT_EQ(ds.entries.size(), 10u);
    EXPECT_EQ(ds.entries.front().index(), 41u);
    // A snapshot installed from a leader discards the log after it.
    Ready rd = R({}, 2, 100);
    SnapshotData sd;
    sd.metadata.set_index(100);
    sd.metadata.set_term(2);
    sd.data = std::make_shared<const std::string>("state@100");
    rd.snapshot = sd;
    ASSERT_TRUE((*s)->Save(rd).ok());
    ASSERT_TRUE((*s)->Save(R({E(101, 2)}, 2, 101)).ok());
  }
  auto s = Storage::Open(dir_, opts);
  ASSERT_TRUE(s.ok()) << s.status();
  DurableState ds = (*s)->TakeRecovered();
  EXPECT_EQ(*ds.snapshot->data, "state@100");
  ASSERT_EQ(ds.entries.size(), 1u);
  EXPECT_EQ(ds.entries[0].index(), 101u);
  s->reset();
  // Corrupt the newest snapshot file: refused.
  std::string newest;
  for (auto& p : fs::directory_iterator(dir_ + "/snap")) newest = std::max(newest, p.path().string());
  FlipBit(newest, 10);
  s = Storage::Open(dir_, opts);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  EXPECT_NE(s.status().message().find(newest), absl::string_view::npos);
}

}  // namespace
}  // namespace shoal::manager::raft
