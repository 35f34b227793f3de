// Storage: the durable state of one raft member in a directory.
//
//   <dir>/wal/<seq>-<first index>.wal   segmented write-ahead log (hex names). Each record is
//       [u32 length][u32 CRC32C(payload)][u32 CRC32C(first 8 bytes)][payload = WalRecord],
//       one record per Ready, written with ONE write and ONE fdatasync (group commit: every
//       proposal batched into that Ready is acknowledged by the same sync). A record that
//       only advances the commit index is not synced by itself (etcd's MustSync rule). A new segment
//       starts with a record carrying the current hard state, so old segments can be deleted.
//   <dir>/snap/<index>-<term>.snap       snapshot files, written atomically (temp + fsync +
//       rename + fsync dir), [u32 CRC32C][SnapshotFile].
//
// Segments are preallocated (fallocate to segment_bytes): records are written at the end of
// the previous one and the zeros after the last record are unused space, not data.
//
// Recovery (Open): a damaged record at the very end of the last segment (only zeros after it)
// is a torn write that was never acknowledged (the process died before fdatasync returned): it
// is truncated and reported in recovery(). Damage anywhere else — a bad record followed by more data, a bad
// non-last segment, a gap, a corrupt snapshot — is DataLoss naming the file and offset; the
// member refuses to start rather than serve a log with a hole. (A bit flip inside the last
// record is indistinguishable from a torn write and is treated as one.)
//
// Not thread-safe: the raft node's single I/O thread owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "manager/raft/core.h"

namespace shoal::manager::raft {

struct StorageOptions {
  uint64_t segment_bytes = 64ull << 20;
  // Allocate each segment's segment_bytes up front (fallocate), so an append does not grow
  // the file and its fdatasync does not have to persist a new file size (etcd does the same).
  bool preallocate = true;
  bool sync = true;  // fdatasync before Save returns (only tests of the format turn it off)
  int keep_snapshots = 2;
  // Fault injection for tests: runs before every fdatasync of a WAL record (e.g. blocks to
  // model a stalled disk). Null in production.
  std::function<void()> before_sync;
};

struct RecoveryInfo {
  bool fresh = true;             // nothing was on disk
  uint64_t torn_bytes = 0;       // truncated from the tail of the last segment
  std::string torn_segment;
  size_t segments = 0;
  size_t records = 0;
};

class Storage {
 public:
  static absl::StatusOr<std::unique_ptr<Storage>> Open(const std::string& dir,
                                                       StorageOptions opts = {});

  // The state recovered by Open (moved out once).
  DurableState TakeRecovered() { return std::move(recovered_); }
  const RecoveryInfo& recovery() const { return info_; }

  // Persists what a Ready asks for: snapshot file first (if any), then one WAL record with
  // the hard state and entries, then fdatasync. OK means durable.
  absl::Status Save(const Ready& rd) { return Save(rd, nullptr); }
  // As Save; with `deferred` non-null, a Ready holding only entries (and at most a commit
  // index) is written without the fdatasync and *deferred is set: the caller makes it
  // durable later with fdatasync on SyncHandle() (any thread). A Ready with a snapshot, a new
  // term or a vote is always synced here (*deferred false).
  absl::Status Save(const Ready& rd, bool* deferred);
  // A duplicate of the current segment's descriptor: fdatasync on it makes everything written
  // so far durable (a segment is synced before the next one starts).
  absl::StatusOr<base::UniqueFd> SyncHandle() const;
  // Persists initial state (bootstrap) as one record.
  absl::Status SaveState(const api::HardState& hs, const std::vector<api::Entry>& entries);
  // Writes a snapshot taken locally, then deletes WAL segments holding only entries <=
  // `compact_to` and all but the newest keep_snapshots snapshot files.
  absl::Status SaveSnapshot(const SnapshotData& snap, uint64_t compact_to);
  // The two halves of SaveSnapshot, so the file can be written off the raft loop thread:
  // WriteSnapshotFile touches only the snapshot directory and may run on another thread
  // concurrently with Save(); CompactTo (owner thread) runs once that file is durable.
  absl::Status WriteSnapshotFile(const SnapshotData& snap);
  absl::Status CompactTo(uint64_t compact_to);

  uint64_t syncs() const { return syncs_; }
  const std::string& dir() const { return dir_; }
  size_t segment_count() const { return segments_.size(); }

 private:
  struct Segment {
    uint64_t seq;
    uint64_t first_index;
    std::string path;
  };
  Storage(std::string dir, StorageOptions opts) : dir_(std::move(dir)), opts_(opts) {}
  absl::Status Recover();
  absl::Status ReplaySegment(size_t i, std::vector<api::Entry>& ents);
  absl::Status LoadSnapshot();
  absl::Status Append(const api::WalRecord& rec, bool sync, bool* deferred = nullptr);
  absl::Status Roll();
  absl::Status Preallocate(const std::string& path);  // current segment, from seg_size_ on
  absl::Status WriteAt(absl::string_view data, const std::string& path);  // at seg_size_
  absl::Status DeleteOldSnapshots();

  std::string dir_;
  StorageOptions opts_;
  DurableState recovered_;
  RecoveryInfo info_;
  std::vector<Segment> segments_;
  base::UniqueFd fd_;        // current (last) segment
  uint64_t seg_size_ = 0;     // end of the records in the current segment (write offset)
  uint64_t tail_offset_ = 0;  // recovery: end of the last good record of the last segment
  uint64_t last_index_ = 0;  // last entry index written
  api::HardState hs_;
  api::SnapshotMetadata snap_meta_;
  uint64_t syncs_ = 0;
};

// Frames a payload as a WAL record (exposed for the fault-injection tests).
std::string FrameRecord(absl::string_view payload);

}  // namespace shoal::manager::raft
