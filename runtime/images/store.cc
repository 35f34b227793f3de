// Store: blobs, locks and layer unpacking. Image records live in store_images.cc.
#include "runtime/images/store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "runtime/images/extract.h"
#include "runtime/images/safe_path.h"

namespace shoal::runtime::images {
namespace {

using base::UniqueFd;

absl::Status MkdirP(const std::string& path) {
  std::string cur;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      cur = path.substr(0, i);
      if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
        return base::ErrnoStatus(errno, "mkdir ", cur);
      }
    }
  }
  return absl::OkStatus();
}

class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(const Store* store, std::string tmp_path, UniqueFd fd)
      : store_(store), tmp_path_(std::move(tmp_path)), fd_(std::move(fd)) {}
  ~FileBlobWriter() override {
    if (!committed_) ::unlink(tmp_path_.c_str());
  }

  absl::Status Write(absl::string_view data) override {
    hash_.Update(data);
    written_ += data.size();
    return base::WriteAll(fd_.get(), data, "write blob");
  }
  uint64_t written() const override { return written_; }

  absl::Status Commit(const Digest& expected, int64_t expected_size) override {
    if (committed_) return absl::FailedPreconditionError("blob already committed");
    if (expected.algorithm != "sha256") {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported digest algorithm ", expected.algorithm));
    }
    Digest got = hash_.Finish();
    if (expected_size >= 0 && static_cast<uint64_t>(expected_size) != written_) {
      return absl::DataLossError(absl::StrCat("size mismatch for ", expected.String(),
                                              ": expected ", expected_size, " bytes, got ",
                                              written_));
    }
    if (got != expected) {
      return absl::DataLossError(
          absl::StrCat("digest mismatch: expected ", expected.String(), ", got ", got.String()));
    }
    if (::fsync(fd_.get()) != 0) return base::ErrnoStatus(errno, "fsync ", tmp_path_);
    std::string dst = store_->BlobPath(expected);
    if (::rename(tmp_path_.c_str(), dst.c_str()) != 0) {
      return base::ErrnoStatus(errno, "rename blob to ", dst);
    }
    committed_ = true;
    return base::FsyncDir(store_->root() + "/blobs/sha256");
  }

 private:
  const Store* store_;
  std::string tmp_path_;
  UniqueFd fd_;
  Sha256 hash_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& root) {
  if (root.empty() || root.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("store root \"", root, "\" must be absolute"));
  }
  for (const char* sub : {"/blobs/sha256", "/layers", "/images", "/leases", "/tmp"}) {
    RETURN_IF_ERROR(MkdirP(root + sub));
  }
  return std::unique_ptr<Store>(new Store(root));
}

absl::StatusOr<UniqueFd> Store::Lock(const char* name, int op) const {
  std::string path = absl::StrCat(root_, "/", name);
  ASSIGN_OR_RETURN(UniqueFd fd, base::Open(path, O_RDWR | O_CREAT, 0600));
  while (::flock(fd.get(), op) != 0) {
    if (errno != EINTR) return base::ErrnoStatus(errno, "flock ", path);
  }
  return fd;
}

absl::StatusOr<Store::GcLease> Store::AcquireGcLease() {
  ASSIGN_OR_RETURN(UniqueFd fd, Lock("gc.lock", LOCK_SH));
  return GcLease(std::move(fd));
}

std::string Store::BlobPath(const Digest& d) const {
  return absl::StrCat(root_, "/blobs/", d.algorithm, "/", d.hex);
}

bool Store::HasBlob(const Digest& d) const {
  return !d.empty() && ::access(BlobPath(d).c_str(), F_OK) == 0;
}

absl::StatusOr<std::string> Store::ReadBlob(const Digest& d) const {
  auto data = base::ReadFile(BlobPath(d));
  if (!data.ok() && data.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("blob ", d.String(), " is not in the store"));
  }
  return data;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> Store::NewBlobWriter() {
  std::string tmpl = TmpDir() + "/ingest-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "create ", tmpl);
  ::fchmod(fd, 0644);
  return std::unique_ptr<BlobWriter>(new FileBlobWriter(this, tmpl, UniqueFd(fd)));
}

absl::Status Store::PutBlob(absl::string_view data, const Digest& expected) {
  if (HasBlob(expected)) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto w, NewBlobWriter());
  RETURN_IF_ERROR(w->Write(data));
  return w->Commit(expected, static_cast<int64_t>(data.size()));
}

absl::Status Store::EnsureLayer(const LayerInfo& layer, const Digest& parent) {
  std::string final_dir = absl::StrCat(LayersDir(), "/", layer.chain_id.hex);
  if (::access((final_dir + "/layer.json").c_str(), F_OK) == 0) return absl::OkStatus();
  std::string tmpl = TmpDir() + "/layer-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return base::ErrnoStatus(errno, "mkdtemp ", tmpl);
  struct Cleanup {
    std::string dir;
    bool keep = false;
    ~Cleanup() {
      if (keep) return;
      int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      (void)RemoveTreeAt(fd, dir.substr(1));
      ::close(fd);
    }
  } cleanup{tmpl};
  std::string diff = tmpl + "/diff";
  if (::mkdir(diff.c_str(), 0755) != 0) return base::ErrnoStatus(errno, "mkdir ", diff);
  ASSIGN_OR_RETURN(UniqueFd blob, base::Open(BlobPath(layer.blob.digest), O_RDONLY));
  ASSIGN_OR_RETURN(UniqueFd dest, base::Open(diff, O_RDONLY | O_DIRECTORY));
  auto stats = ExtractLayer(blob.get(), dest.get());
  if (!stats.ok()) {
    return base::Annotate(stats.status(),
                          absl::StrCat("unpack layer ", layer.blob.digest.String()));
  }
  if (stats->diff_id != layer.diff_id) {
    return absl::DataLossError(absl::StrCat(
        "layer ", layer.blob.digest.String(), ": uncompressed content is ", stats->diff_id.String(),
        " but the image config says diff_id ", layer.diff_id.String()));
  }
  nlohmann::json meta = {{"chain_id", layer.chain_id.String()},
                         {"diff_id", layer.diff_id.String()},
                         {"parent", parent.String()},
                         {"size", stats->tar_bytes}};
  RETURN_IF_ERROR(base::WriteFileAtomic(tmpl + "/layer.json", meta.dump()));
  if (::rename(tmpl.c_str(), final_dir.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return absl::OkStatus();  // someone else won
    return base::ErrnoStatus(errno, "rename layer to ", final_dir);
  }
  cleanup.keep = true;
  return base::FsyncDir(LayersDir());
}

}  // namespace shoal::runtime::images
