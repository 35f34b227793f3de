#include "manager/raft/storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "manager/raft/crc32c.h"

namespace shoal::manager::raft {
namespace {

constexpr size_t kHeader = 12;

void Put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

absl::Status MkdirP(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return base::ErrnoStatus(errno, "mkdir ", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir, absl::string_view ext) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return base::ErrnoStatus(errno, "opendir ", dir);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > ext.size() && name[0] != '.' &&
        name.compare(name.size() - ext.size(), ext.size(), ext.data(), ext.size()) == 0) {
      out.push_back(name);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// Writes a snapshot file atomically (temp file, fsync, rename, fsync dir) in 1 MiB chunks, each
// written back before the next (sync_file_range), so a snapshot of tens of MiB never queues
// one large flush in front of the WAL's fdatasync on the same disk: the log's commit latency
// stays bounded by one chunk while a snapshot is written.
absl::Status WriteSnapshotPaced(const std::string& dir, const std::string& name,
                                absl::string_view data) {
  const std::string path = absl::StrCat(dir, "/", name);
  const std::string tmp = absl::StrCat(dir, "/.", name, ".tmp-", ::gettid());
  ASSIGN_OR_RETURN(base::UniqueFd fd, base::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  auto fail = [&](absl::Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  constexpr size_t kChunk = 1 << 20;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    absl::string_view chunk = data.substr(off, kChunk);
    if (auto s = base::WriteAll(fd.get(), chunk, tmp); !s.ok()) return fail(s);
    if (::sync_file_range(fd.get(), static_cast<off_t>(off), static_cast<off_t>(chunk.size()),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      return fail(base::ErrnoStatus(errno, "sync_file_range ", tmp));
    }
  }
  if (::fsync(fd.get()) != 0) return fail(base::ErrnoStatus(errno, "fsync ", tmp));
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(base::ErrnoStatus(errno, "rename ", tmp, " to ", path));
  }
  return base::FsyncDir(dir);
}

}  // namespace

std::string FrameRecord(absl::string_view payload) {
  std::string out;
  out.reserve(kHeader + payload.size());
  Put32(out, static_cast<uint32_t>(payload.size()));
  Put32(out, Crc32c(payload));
  Put32(out, Crc32c(absl::string_view(out.data(), 8)));
  out.append(payload.data(), payload.size());
  return out;
}

absl::StatusOr<std::unique_ptr<Storage>> Storage::Open(const std::string& dir,
                                                       StorageOptions opts) {
  std::unique_ptr<Storage> s(new Storage(dir, opts));
  RETURN_IF_ERROR(MkdirP(dir));
  RETURN_IF_ERROR(MkdirP(dir + "/wal"));
  RETURN_IF_ERROR(MkdirP(dir + "/snap"));
  RETURN_IF_ERROR(s->Recover());
  return s;
}

absl::Status Storage::LoadSnapshot() {
  ASSIGN_OR_RETURN(auto names, ListDir(dir_ + "/snap", ".snap"));
  if (names.empty()) return absl::OkStatus();
  const std::string path = dir_ + "/snap/" + names.back();
  ASSIGN_OR_RETURN(std::string raw, base::ReadFile(path));
  api::SnapshotFile f;
  if (raw.size() < 4 || Get32(raw.data()) != Crc32c(absl::string_view(raw).substr(4)) ||
      !f.ParseFromArray(raw.data() + 4, static_cast<int>(raw.size() - 4))) {
    return absl::DataLossError(absl::StrCat("raft storage: snapshot ", path,
                                            " is corrupt (checksum mismatch); refusing to start"));
  }
  SnapshotData sd;
  sd.metadata = f.metadata();
  sd.data = std::make_shared<const std::string>(std::move(*f.mutable_data()));
  snap_meta_ = sd.metadata;
  recovered_.snapshot = std::move(sd);
  info_.fresh = false;
  return absl::OkStatus();
}

absl::Status Storage::Recover() {
  RETURN_IF_ERROR(LoadSnapshot());
  ASSIGN_OR_RETURN(auto names, ListDir(dir_ + "/wal", ".wal"));
  for (const std::string& n : names) {
    uint64_t seq = 0, first = 0;
    if (std::sscanf(n.c_str(), "%16" SCNx64 "-%16" SCNx64 ".wal", &seq, &first) != 2) {
      return absl::DataLossError(absl::StrCat("raft storage: unexpected WAL file ", dir_, "/wal/", n));
    }
    segments_.push_back({seq, first, dir_ + "/wal/" + n});
  }
  std::vector<api::Entry> ents;
  for (size_t i = 0; i < segments_.size(); ++i) RETURN_IF_ERROR(ReplaySegment(i, ents));
  info_.segments = segments_.size();
  if (!segments_.empty()) info_.fresh = false;
  last_index_ = ents.empty() ? snap_meta_.index() : ents.back().index();
  // Keep only the entries after the snapshot; they must continue it without a gap.
  const uint64_t si = recovered_.snapshot ? recovered_.snapshot->metadata.index() : 0;
  std::vector<api::Entry> after;
  for (auto& e : ents) {
    if (e.index() > si) after.push_back(std::move(e));
  }
  if (!after.empty() && after.front().index() != si + 1) {
    return absl::DataLossError(absl::StrCat("raft storage: log in ", dir_, "/wal starts at ",
                                            after.front().index(), " but the snapshot ends at ",
                                            si, "; entries are missing"));
  }
  recovered_.entries = std::move(after);
  recovered_.hard_state = hs_;
  if (segments_.empty()) return Roll();
  const Segment& last = segments_.back();
  ASSIGN_OR_RETURN(fd_, base::Open(last.path, O_WRONLY));
  seg_size_ = tail_offset_;  // the next record overwrites whatever follows the last good one
  return Preallocate(last.path);
}

absl::Status Storage::Preallocate(const std::string& path) {
  if (!opts_.preallocate || seg_size_ >= opts_.segment_bytes) return absl::OkStatus();
  // Mode 0 extends the file size: appends then only fill allocated blocks, and fdatasync no
  // longer has to commit a new file size per record (etcd preallocates its WAL the same way).
  int r = ::fallocate(fd_.get(), 0, 0, static_cast<off_t>(opts_.segment_bytes));
  if (r != 0 && errno != EOPNOTSUPP) return base::ErrnoStatus(errno, "fallocate ", path);
  if (r == 0 && opts_.sync && ::fdatasync(fd_.get()) != 0) {
    return base::ErrnoStatus(errno, "fdatasync ", path);
  }
  return absl::OkStatus();
}

absl::Status Storage::WriteAt(absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(seg_size_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::ErrnoStatus(errno, "write ", path);
    data.remove_prefix(static_cast<size_t>(n));
    seg_size_ += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status Storage::ReplaySegment(size_t i, std::vector<api::Entry>& ents) {
  const Segment& seg = segments_[i];
  const bool last_segment = i + 1 == segments_.size();
  ASSIGN_OR_RETURN(std::string data, base::ReadFile(seg.path));
  // Segments are preallocated: the data ends at the last non-zero byte; zeros after it are
  // space never written (no record is all zeros: its header checksum is not).
  size_t data_end = data.size();
  while (data_end > 0 && data[data_end - 1] == 0) --data_end;
  size_t off = 0;
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(
        "raft storage: corrupt WAL record in ", seg.path, " at offset ", off, " (", why,
        "); refusing to start — restore this member from a snapshot or remove and re-add it"));
  };
  while (off < data_end) {
    absl::string_view rest = absl::string_view(data).substr(off);
    // A torn tail: the end of the last segment holds an incomplete record followed by nothing
    // but zeros (the rest of a write that never completed, or preallocated space).
    bool can_be_torn = last_segment;
    std::string why;
    uint32_t len = 0;
    if (rest.size() < kHeader) {
      why = "incomplete header";
    } else if (Get32(rest.data() + 8) != Crc32c(rest.substr(0, 8))) {
      why = "header checksum mismatch";
      can_be_torn = can_be_torn && off + kHeader >= data_end;
    } else {
      len = Get32(rest.data());
      if (rest.size() < kHeader + len) {
        why = "record extends past the end of the file";
      } else if (Crc32c(rest.substr(kHeader, len)) != Get32(rest.data() + 4)) {
        why = "payload checksum mismatch";
        can_be_torn = can_be_torn && off + kHeader + len >= data_end;
      }
    }
    api::WalRecord rec;
    if (why.empty() && !rec.ParseFromArray(rest.data() + kHeader, static_cast<int>(len))) {
      why = "undecodable record";
      can_be_torn = false;
    }
    if (!why.empty()) {
      if (!can_be_torn) return corrupt(why);
      // Never acknowledged (fdatasync had not returned): cut it off (Recover preallocates the
      // segment again).
      if (::truncate(seg.path.c_str(), static_cast<off_t>(off)) != 0) {
        return base::ErrnoStatus(errno, "truncate ", seg.path);
      }
      info_.torn_bytes = data_end - off;
      info_.torn_segment = seg.path;
      tail_offset_ = off;
      return absl::OkStatus();
    }
    ++info_.records;
    if (rec.has_hard_state()) hs_ = rec.hard_state();
    if (rec.has_snapshot()) {
      if (rec.reset_log()) ents.clear();
    }
    for (api::Entry& e : *rec.mutable_entries()) {
      while (!ents.empty() && ents.back().index() >= e.index()) ents.pop_back();
      if (!ents.empty() && e.index() != ents.back().index() + 1) {
        return corrupt(absl::StrCat("gap before entry ", e.index()));
      }
      ents.push_back(std::move(e));
    }
    off += kHeader + len;
  }
  tail_offset_ = off;
  return absl::OkStatus();
}

absl::Status Storage::Roll() {
  uint64_t seq = segments_.empty() ? 1 : segments_.back().seq + 1;
  Segment seg{seq, last_index_ + 1,
              absl::StrCat(dir_, "/wal/", Hex16(seq), "-", Hex16(last_index_ + 1), ".wal")};
  if (fd_.get() >= 0 && opts_.sync && ::fdatasync(fd_.get()) != 0) {
    return base::ErrnoStatus(errno, "fdatasync ", segments_.back().path);
  }
  ASSIGN_OR_RETURN(fd_, base::Open(seg.path, O_WRONLY | O_CREAT | O_EXCL, 0600));
  segments_.push_back(seg);
  seg_size_ = 0;
  RETURN_IF_ERROR(Preallocate(seg.path));
  api::WalRecord head;
  *head.mutable_hard_state() = hs_;
  RETURN_IF_ERROR(WriteAt(FrameRecord(head.SerializeAsString()), seg.path));
  if (opts_.sync) {
    if (::fdatasync(fd_.get()) != 0) return base::ErrnoStatus(errno, "fdatasync ", seg.path);
    RETURN_IF_ERROR(base::FsyncDir(dir_ + "/wal"));
  }
  return absl::OkStatus();
}

absl::Status Storage::Append(const api::WalRecord& rec, bool sync, bool* deferred) {
  if (seg_size_ >= opts_.segment_bytes) RETURN_IF_ERROR(Roll());
  RETURN_IF_ERROR(WriteAt(FrameRecord(rec.SerializeAsString()), segments_.back().path));
  if (opts_.sync && sync && deferred != nullptr) {
    *deferred = true;
  } else if (opts_.sync && sync) {
    if (opts_.before_sync) opts_.before_sync();
    // An fdatasync error leaves the page cache state unknown (fsyncgate, 2018): the caller
    // must crash rather than retry.
    if (::fdatasync(fd_.get()) != 0) {
      return base::ErrnoStatus(errno, "fdatasync ", segments_.back().path);
    }
    ++syncs_;
  }
  return absl::OkStatus();
}

absl::StatusOr<base::UniqueFd> Storage::SyncHandle() const {
  int fd = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return base::ErrnoStatus(errno, "dup ", segments_.back().path);
  return base::UniqueFd(fd);
}

absl::Status Storage::Save(const Ready& rd, bool* deferred) {
  if (deferred != nullptr) *deferred = false;
  api::WalRecord rec;
  if (rd.snapshot) {
    RETURN_IF_ERROR(WriteSnapshotFile(*rd.snapshot));
    *rec.mutable_snapshot() = rd.snapshot->metadata;
    rec.set_reset_log(true);
    snap_meta_ = rd.snapshot->metadata;
    last_index_ = snap_meta_.index();
  }
  // Like etcd's MustSync: a record that only advances the commit index need not be synced
  // before anything is acknowledged (the commit index is recovered from the quorum); new
  // entries, a snapshot, a new term or a vote must be.
  bool sync = !rd.entries.empty() || rd.snapshot.has_value();
  bool sync_state_changed = false;
  if (rd.hard_state) {
    sync_state_changed =
        rd.hard_state->term() != hs_.term() || rd.hard_state->vote() != hs_.vote();
    sync = sync || sync_state_changed;
    hs_ = *rd.hard_state;
    *rec.mutable_hard_state() = hs_;
  }
  for (const api::Entry& e : rd.entries) *rec.add_entries() = e;
  if (!rd.snapshot && !rd.hard_state && rd.entries.empty()) return absl::OkStatus();
  if (!rd.entries.empty()) last_index_ = rd.entries.back().index();
  // Only entries may wait: a snapshot, term or vote must be durable before anything is sent.
  const bool may_defer = !rd.snapshot && !rd.entries.empty() &&
                         (!rd.hard_state || !sync_state_changed);
  return Append(rec, sync, may_defer ? deferred : nullptr);
}

absl::Status Storage::SaveState(const api::HardState& hs,
                                const std::vector<api::Entry>& entries) {
  Ready rd;
  rd.hard_state = hs;
  rd.entries = entries;
  return Save(rd);
}

absl::Status Storage::WriteSnapshotFile(const SnapshotData& snap) {
  api::SnapshotFile f;
  *f.mutable_metadata() = snap.metadata;
  f.set_data(*snap.data);
  std::string body = f.SerializeAsString();
  std::string out;
  Put32(out, Crc32c(body));
  out += body;
  return WriteSnapshotPaced(
      dir_ + "/snap",
      absl::StrCat(Hex16(snap.metadata.index()), "-", Hex16(snap.metadata.term()), ".snap"), out);
}

absl::Status Storage::DeleteOldSnapshots() {
  ASSIGN_OR_RETURN(auto names, ListDir(dir_ + "/snap", ".snap"));
  for (size_t i = 0; i + opts_.keep_snapshots < names.size(); ++i) {
    std::string p = dir_ + "/snap/" + names[i];
    if (::unlink(p.c_str()) != 0) return base::ErrnoStatus(errno, "unlink ", p);
  }
  return absl::OkStatus();
}

absl::Status Storage::SaveSnapshot(const SnapshotData& snap, uint64_t compact_to) {
  RETURN_IF_ERROR(WriteSnapshotFile(snap));
  snap_meta_ = snap.metadata;
  return CompactTo(compact_to);
}

absl::Status Storage::CompactTo(uint64_t compact_to) {
  // Segment i holds only entries < segments_[i+1].first_index; never delete the current one.
  size_t drop = 0;
  while (drop + 1 < segments_.size() && segments_[drop + 1].first_index <= compact_to + 1) ++drop;
  for (size_t i = 0; i < drop; ++i) {
    if (::unlink(segments_[i].path.c_str()) != 0) {
      return base::ErrnoStatus(errno, "unlink ", segments_[i].path);
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + drop);
  if (drop > 0) RETURN_IF_ERROR(base::FsyncDir(dir_ + "/wal"));
  return DeleteOldSnapshots();
}

}  // namespace shoal::manager::raft
