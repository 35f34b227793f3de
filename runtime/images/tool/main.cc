// shoal-image: command-line front end of the image library (the `shoal image` commands will call
// the same functions). Usage: shoal-image [--root DIR] <pull|push|import|ls|inspect|rm|prune|
// tag|login|logout|lowerdirs> ...
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <set>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "runtime/images/import.h"
#include "runtime/images/registry.h"
#include "runtime/images/store.h"

namespace images = shoal::runtime::images;

namespace {

int Fail(const absl::Status& s) {
  std::cerr << "error: " << s.message() << "\n";
  return 1;
}

std::string HumanSize(int64_t n) {
  if (n >= (1 << 20)) return fmt::format("{:.1f}MiB", n / 1048576.0);
  if (n >= 1024) return fmt::format("{:.1f}KiB", n / 1024.0);
  return fmt::format("{}B", n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoal-image: pull, push, import and manage container images"};
  app.require_subcommand(1);
  std::string root = "/var/lib/shoal/images";
  std::vector<std::string> insecure;
  images::RegistryOptions ropts;
  bool quiet = false;
  app.add_option("--root", root, "image store root");
  app.add_option("--insecure-registry", insecure, "registry host:port reached over plain HTTP");
  app.add_option("--ca-file", ropts.ca_file, "extra CA bundle for registry certificates");
  app.add_flag("--tls-skip-verify", ropts.skip_verify, "do not verify registry certificates");
  app.add_option("--auth-file", ropts.auth_file, "credentials file written by login");
  app.add_option("--parallel", ropts.parallel, "parallel blob transfers")->check(CLI::Range(1, 32));
  app.add_flag("-q,--quiet", quiet, "no progress output");

  std::string ref_arg, target_arg, path_arg, host_arg, user, password;
  std::vector<std::string> tags;
  bool force = false, all = false, password_stdin = false;
  auto* pull = app.add_subcommand("pull", "pull an image from a registry");
  pull->add_option("reference", ref_arg)->required();
  bool no_unpack = false;
  pull->add_flag("--no-unpack", no_unpack, "store blobs only; layers unpack on first use");
  auto* unpack = app.add_subcommand("unpack", "unpack an image's layers now");
  unpack->add_option("image", ref_arg)->required();
  auto* push = app.add_subcommand("push", "push a stored image to a registry");
  push->add_option("image", ref_arg)->required();
  push->add_option("target", target_arg, "destination reference (default: the image name)");
  auto* import = app.add_subcommand("import", "import a docker save tarball or OCI layout");
  import->add_option("path", path_arg)->required();
  import->add_option("-t,--tag", tags, "extra tag for the imported image(s)");
  auto* ls = app.add_subcommand("ls", "list images");
  auto* inspect = app.add_subcommand("inspect", "show an image record as JSON");
  inspect->add_option("image", ref_arg)->required();
  auto* rm = app.add_subcommand("rm", "remove an image (or one of its tags)");
  rm->add_option("image", ref_arg)->required();
  rm->add_flag("-f,--force", force);
  auto* prune = app.add_subcommand("prune", "remove dangling images and unused layers and blobs");
  prune->add_flag("-a,--all", all, "also remove tagged images no container uses");
  auto* tag = app.add_subcommand("tag", "add a tag to an image");
  tag->add_option("source", ref_arg)->required();
  tag->add_option("target", target_arg)->required();
  auto* login = app.add_subcommand("login", "store registry credentials (verified first)");
  login->add_option("host", host_arg)->required();
  login->add_option("-u,--username", user)->required();
  login->add_option("-p,--password", password);
  login->add_flag("--password-stdin", password_stdin);
  auto* logout = app.add_subcommand("logout", "forget registry credentials");
  logout->add_option("host", host_arg)->required();
  auto* lower = app.add_subcommand("lowerdirs", "print the overlay lowerdirs, top-most first");
  lower->add_option("image", ref_arg)->required();
  CLI11_PARSE(app, argc, argv);

  std::set<std::string> insecure_hosts(insecure.begin(), insecure.end());
  std::mutex out_mu;
  bool tty = ::isatty(2);
  // On a terminal: one line per blob, redrawn in place (cursor up + clear line). Otherwise one
  // line per finished blob, so logs stay readable.
  std::vector<std::string> order;
  std::map<std::string, std::string> lines;
  size_t printed = 0;
  if (!quiet) {
    ropts.progress = [&](const images::Progress& p) {
      std::lock_guard<std::mutex> lock(out_mu);
      std::string line = fmt::format("{} {}: {} {}/{}", p.what, p.id, p.status,
                                     HumanSize(static_cast<int64_t>(p.done)),
                                     HumanSize(static_cast<int64_t>(p.total)));
      if (!tty) {
        if (p.status != "downloading") std::cerr << line << "\n";
        return;
      }
      if (lines.count(p.id) == 0) order.push_back(p.id);
      lines[p.id] = line;
      if (printed > 0) std::cerr << fmt::format("\033[{}A", printed);
      printed = order.size();
      for (const auto& id : order) std::cerr << "\033[2K" << lines[id] << "\n";
    };
  }

  if (login->parsed() || logout->parsed()) {
    if (logout->parsed()) {
      absl::Status s = images::CredentialStore(ropts.auth_file).Erase(host_arg);
      return s.ok() ? 0 : Fail(s);
    }
    if (password_stdin) std::getline(std::cin, password);
    ropts.plain_http = insecure_hosts.count(host_arg) != 0;
    absl::Status s = images::Login(host_arg, {user, password}, ropts);
    if (!s.ok()) return Fail(s);
    std::cout << "Login Succeeded\n";
    return 0;
  }

  auto store_or = images::Store::Open(root);
  if (!store_or.ok()) return Fail(store_or.status());
  images::Store& store = **store_or;

  if (pull->parsed()) {
    auto ref = images::ParseReference(ref_arg);
    if (!ref.ok()) return Fail(ref.status());
    ropts.plain_http = insecure_hosts.count(ref->domain) != 0;
    ropts.unpack = !no_unpack;
    auto rec = images::Pull(store, *ref, ropts);
    if (!rec.ok()) return Fail(rec.status());
    std::cout << "Digest: " << rec->manifest_digest.String() << "\n"
              << "Pulled " << ref->Familiar() << " (" << rec->id.String() << ")\n";
  } else if (push->parsed()) {
    auto ref = images::ParseReference(target_arg.empty() ? ref_arg : target_arg);
    if (!ref.ok()) return Fail(ref.status());
    ropts.plain_http = insecure_hosts.count(ref->domain) != 0;
    auto d = images::Push(store, ref_arg, *ref, ropts);
    if (!d.ok()) return Fail(d.status());
    std::cout << ref->Familiar() << ": digest: " << d->String() << "\n";
  } else if (import->parsed()) {
    images::ImportOptions iopts;
    for (const auto& t : tags) {
      auto r = images::ParseReference(t);
      if (!r.ok()) return Fail(r.status());
      iopts.extra_tags.push_back(*r);
    }
    auto recs = images::ImportImages(store, path_arg, iopts);
    if (!recs.ok()) return Fail(recs.status());
    for (const auto& r : *recs) {
      std::cout << "Loaded image " << r.id.String() << " "
                << (r.repo_tags.empty() ? "<none>" : r.repo_tags.front()) << "\n";
    }
  } else if (ls->parsed()) {
    auto list = store.List();
    if (!list.ok()) return Fail(list.status());
    std::cout << fmt::format("{:<50} {:<14} {:<10} {}\n", "REPOSITORY:TAG", "IMAGE ID", "SIZE",
                             "LAYERS");
    for (const auto& r : *list) {
      std::vector<std::string> names = r.repo_tags;
      if (names.empty()) names.push_back("<none>");
      for (const auto& n : names) {
        std::string shown = n;
        if (auto ref = images::ParseReference(n); ref.ok()) shown = ref->Familiar();
        std::cout << fmt::format("{:<50} {:<14} {:<10} {}\n", shown, r.id.hex.substr(0, 12),
                                 HumanSize(r.size), r.layers.size());
      }
    }
  } else if (inspect->parsed()) {
    auto r = store.Resolve(ref_arg);
    if (!r.ok()) return Fail(r.status());
    std::cout << images::ImageRecordToJson(*r, true) << "\n";
  } else if (rm->parsed() || prune->parsed()) {
    auto rep = rm->parsed() ? store.Remove(ref_arg, force) : store.Prune(all);
    if (!rep.ok()) return Fail(rep.status());
    for (const auto& u : rep->untagged) std::cout << "Untagged: " << u << "\n";
    for (const auto& d : rep->deleted_images) std::cout << "Deleted: " << d.String() << "\n";
    for (const auto& d : rep->deleted_layers) std::cout << "Deleted layer: " << d.String() << "\n";
    if (prune->parsed()) std::cout << "Reclaimed: " << HumanSize(rep->reclaimed_bytes) << "\n";
  } else if (tag->parsed()) {
    auto ref = images::ParseReference(target_arg);
    if (!ref.ok()) return Fail(ref.status());
    absl::Status s = store.Tag(ref_arg, *ref);
    if (!s.ok()) return Fail(s);
  } else if (unpack->parsed()) {
    absl::Status s = store.Unpack(ref_arg);
    if (!s.ok()) return Fail(s);
  } else if (lower->parsed()) {
    auto dirs = store.LowerDirs(ref_arg);
    if (!dirs.ok()) return Fail(dirs.status());
    for (const auto& d : *dirs) std::cout << d << "\n";
  }
  return 0;
}
