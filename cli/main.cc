// shoal: the command-line client. Cluster commands talk to shoald over its unix socket
// (--host/-H or SHOAL_HOST, default /run/shoal/shoald.sock); `version` and `features` are local.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/commands.h"
#include "kernel/features.h"

namespace {

int Features() {
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

// A repeatable option takes one value per occurrence (`-p 80 IMAGE` must not take IMAGE), as
// in the docker CLI.
void OneValuePerFlag(CLI::App* app) {
  for (CLI::Option* opt : app->get_options()) {
    if (!opt->get_positional()) opt->allow_extra_args(false);
  }
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) OneValuePerFlag(sub);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoal: manage a Shoal cluster"};
  app.require_subcommand(1);
  shoal::cli::Cli cli;
  app.add_option("-H,--host", cli.host,
                 "shoald socket (unix:///path or /path; default $SHOAL_HOST, else "
                 "/run/shoal/shoald.sock)");
  auto* version = app.add_subcommand("version", "print the client version");
  version->callback([&cli] {
    cli.action = [] {
      std::printf("shoal %s\n", SHOAL_VERSION);
      return 0;
    };
  });
  auto* features = app.add_subcommand("features", "probe this host's kernel for what Shoal uses");
  features->callback([&cli] { cli.action = Features; });
  shoal::cli::AddSwarmCommands(app, cli);
  shoal::cli::AddNodeCommands(app, cli);
  shoal::cli::AddServiceCommands(app, cli);
  shoal::cli::AddObjectCommands(app, cli);
  OneValuePerFlag(&app);
  CLI11_PARSE(app, argc, argv);
  return cli.action ? cli.action() : 0;
}
