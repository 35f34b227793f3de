// Mount helpers for container setup (runtime.md §1.7, §8).
//
// Every path inside a container rootfs is resolved relative to a root dirfd with openat2;
// strings are never joined into host paths. The *Raw functions make raw syscalls only, take
// caller-owned buffers and return 0/fd or -errno: they are safe in a child forked from a
// multithreaded process. Thread safety: no shared state.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace shoal::kernel {

// Docker's masked and read-only paths (moby daemon/pkg/oci/defaults.go).
const std::vector<std::string>& DockerMaskedPaths();
const std::vector<std::string>& DockerReadonlyPaths();

// openat2(root, path, flags|O_CLOEXEC, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): symlinks are
// followed as if `root` were "/", so nothing resolves outside it. Returns fd or -errno.
int OpenInRootRaw(int root, const char* path, int flags);

// Creates `path` (relative to `root`, '/'-separated, no "..") and missing parents inside the
// root, the last component as a directory or an empty file. Returns an O_PATH fd of it or
// -errno. `scratch` must hold strlen(path)+1 bytes.
int MkdirAllInRootRaw(int root, const char* path, bool last_is_file, char* scratch);

// Parent-side check before the child runs: walks `path` below the directory `rootfs` with
// RESOLVE_BENEATH; INVALID_ARGUMENT naming `field` if a symlink or ".." leads outside.
// Missing components are fine (the child creates them).
absl::Status CheckInsideRoot(const std::string& rootfs, const std::string& path,
                             const std::string& field);

// A detached overlayfs mount (fsopen/fsconfig/fsmount, Linux >= 5.2) created with the caller's
// credentials, so its layers' trusted.overlay.* xattrs are honoured even when it is then
// attached (move_mount MOVE_MOUNT_F_EMPTY_PATH) inside a user namespace. Closing the fd
// before it is attached frees it: nothing is left behind on error.
absl::StatusOr<base::UniqueFd> OpenOverlayMount(const std::vector<std::string>& lower_dirs,
                                                const std::string& upper_dir,
                                                const std::string& work_dir);

// mount(2) flags + fs data parsed from fstab-style options ("ro,nosuid,size=64m,mode=755").
struct MountOptions {
  unsigned long flags = 0;  // MS_*
  std::string data;         // options the filesystem gets
  bool recursive_bind = false;
  bool readonly = false;
  unsigned long propagation = 0;  // MS_PRIVATE/MS_SLAVE/MS_SHARED (|MS_REC)
};
// INVALID_ARGUMENT naming the option for unknown flag-like options ("rw"/"ro"/"bind"/...).
absl::StatusOr<MountOptions> ParseMountOptions(const std::vector<std::string>& options);

}  // namespace shoal::kernel
