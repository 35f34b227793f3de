// images_unpack_bench <layer-blob> <scratch-dir> [runs]: extracts the layer `runs` times into
// fresh directories under scratch-dir and prints the best uncompressed MiB/s. Used by
// bench/images.sh side by side with GNU tar.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "runtime/images/extract.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <layer-blob> <scratch-dir> [runs]\n", argv[0]);
    return 2;
  }
  int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  double best = 0;
  for (int i = 0; i < runs; ++i) {
    std::string dest = std::string(argv[2]) + "/u" + std::to_string(i);
    std::filesystem::create_directories(dest);
    int blob = ::open(argv[1], O_RDONLY | O_CLOEXEC);
    int dir = ::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto t0 = std::chrono::steady_clock::now();
    auto stats = shoal::runtime::images::ExtractLayer(blob, dir);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ::close(blob);
    ::close(dir);
    if (!stats.ok()) {
      std::fprintf(stderr, "extract: %s\n", std::string(stats.status().message()).c_str());
      return 1;
    }
    best = std::max(best, stats->tar_bytes / 1048576.0 / secs);
    std::filesystem::remove_all(dest);
  }
  std::printf("%.1f\n", best);
  return 0;
}
