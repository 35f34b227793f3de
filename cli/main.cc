// shoal: the command-line client. Commands talk to shoald over its control socket once the
// daemon is integrated; today `version` and `features` work locally.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "kernel/features.h"

int main(int argc, char** argv) {
  CLI::App app{"shoal: manage a Shoal cluster"};
  app.require_subcommand(1);
  auto* version = app.add_subcommand("version", "print the client version");
  auto* features = app.add_subcommand("features", "probe this host's kernel for what Shoal uses");
  CLI11_PARSE(app, argc, argv);

  if (*version) {
    std::printf("shoal %s\n", SHOAL_VERSION);
    return 0;
  }
  if (*features) {
    auto f = shoal::kernel::ProbeFeatures();
    if (!f.ok()) {
      std::fprintf(stderr, "shoal features: %s\n", f.status().ToString().c_str());
      return 1;
    }
    std::printf("kernel            %s\n", f->kernel_release.c_str());
    std::printf("cgroups           %s\n", shoal::kernel::CgroupModeName(f->cgroup_mode));
    std::printf("clone3            %s\n", f->clone3 ? "yes" : "no");
    std::printf("CLONE_INTO_CGROUP %s\n", f->clone_into_cgroup ? "yes" : "no");
    std::printf("openat2           %s\n", f->openat2 ? "yes" : "no");
    std::printf("cgroup.kill       %s\n", f->cgroup_kill ? "yes" : "no");
    std::printf("IPVS              %s\n", f->ipvs ? "yes" : "no (load balancing uses nftables)");
    std::printf("nftables          %s\n", f->nftables ? "yes" : "no");
    std::printf("user namespaces   %s\n", f->user_namespaces ? "yes" : "no");
    std::printf("BPF               %s\n", f->bpf ? "yes" : "no");
    return 0;
  }
  return 0;
}
