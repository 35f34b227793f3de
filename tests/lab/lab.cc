#include "tests/lab/lab.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/sysctl.h"

namespace shoal::lab {

using kernel::LinkKind;
using kernel::LinkSpec;

Lab::Lab(LabOptions options) : options_(std::move(options)), store_(options_.netns_dir) {}

Lab::~Lab() {
  hosts_.clear();
  outside_.reset();
  lab_ns_.Reset();
  Purge(options_);
}

void Lab::Purge(const LabOptions& o) {
  kernel::BindMountNetnsStore store(o.netns_dir);
  auto names = store.List();
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    if (!absl::StartsWith(n, o.prefix)) continue;
    std::string rest = n.substr(o.prefix.size());
    bool ours = rest == "lab" || rest == "out" ||
                (rest.size() > 1 && rest[0] == 'h' &&
                 rest.find_first_not_of("0123456789", 1) == std::string::npos);
    if (ours) (void)store.Delete(n);
  }
}

absl::StatusOr<std::unique_ptr<Lab>> Lab::Create(const LabOptions& options) {
  if (options.hosts < 1 || options.hosts > 200) {
    return absl::InvalidArgumentError(absl::StrCat("lab hosts ", options.hosts, " not in 1..200"));
  }
  Purge(options);
  std::unique_ptr<Lab> lab(new Lab(options));
  absl::Status st = lab->Build();
  if (!st.ok()) return st;  // the destructor purges what was built
  return lab;
}

absl::Status Lab::Build() {
  kernel::LibnlNetlinkFactory f;
  ASSIGN_OR_RETURN(lab_ns_, store_.Create(options_.prefix + "lab"));
  ASSIGN_OR_RETURN(auto nl, f.Open(lab_ns_.get()));
  LinkSpec br;
  br.kind = LinkKind::kBridge;
  br.name = "ul0";
  br.mtu = options_.underlay_mtu;
  br.up = true;
  RETURN_IF_ERROR(nl->CreateLink(br).status());
  for (int i = 1; i <= options_.hosts; ++i) {
    ASSIGN_OR_RETURN(LabHost h,
                     AddHost(absl::StrCat(options_.prefix, "h", i), absl::StrCat("h", i),
                             absl::StrCat(options_.subnet, ".", i),
                             absl::StrCat(options_.subnet6, absl::Hex(i)), options_.outside));
    hosts_.push_back(std::move(h));
  }
  if (options_.outside) {
    ASSIGN_OR_RETURN(LabHost o,
                     AddHost(options_.prefix + "out", "out", absl::StrCat(options_.subnet, ".254"),
                             options_.subnet6 + "fe", false));
    outside_ = std::make_unique<LabHost>(std::move(o));
  }
  return absl::OkStatus();
}

absl::StatusOr<LabHost> Lab::AddHost(const std::string& name, const std::string& port,
                                     const std::string& ip, const std::string& ip6,
                                     bool default_route) {
  kernel::LibnlNetlinkFactory f;
  LabHost h;
  h.name = name;
  ASSIGN_OR_RETURN(h.netns, store_.Create(name));
  ASSIGN_OR_RETURN(h.ip, kernel::IpAddr::Parse(ip));
  if (options_.ipv6) {
    ASSIGN_OR_RETURN(h.ip6, kernel::IpAddr::Parse(ip6));
    // eth0 (created below) inherits "default": no duplicate address detection, so the address
    // is not "tentative" (unusable as a source) for the first second or two.
    RETURN_IF_ERROR(kernel::WriteSysctl(h.netns.get(), "net/ipv6/conf/default/accept_dad", "0"));
  }
  ASSIGN_OR_RETURN(auto lab_nl, f.Open(lab_ns_.get()));
  ASSIGN_OR_RETURN(kernel::Link ul, lab_nl->GetLink("ul0"));
  LinkSpec v;
  v.kind = LinkKind::kVeth;
  v.name = port;
  v.mtu = options_.underlay_mtu;
  v.veth.peer_name = "eth0";
  v.veth.peer_netns_fd = h.netns.get();
  ASSIGN_OR_RETURN(kernel::Link lab_end, lab_nl->CreateLink(v));
  RETURN_IF_ERROR(lab_nl->SetLinkMaster(lab_end.index, ul.index));
  RETURN_IF_ERROR(lab_nl->SetLinkUp(lab_end.index, true));
  ASSIGN_OR_RETURN(auto nl, f.Open(h.netns.get()));
  ASSIGN_OR_RETURN(kernel::Link eth0, nl->GetLink("eth0"));
  RETURN_IF_ERROR(nl->AddAddress({eth0.index, kernel::IpPrefix{h.ip, 24}}));
  if (options_.ipv6) RETURN_IF_ERROR(nl->AddAddress({eth0.index, kernel::IpPrefix{h.ip6, 64}}));
  ASSIGN_OR_RETURN(kernel::Link lo, nl->GetLink("lo"));
  RETURN_IF_ERROR(nl->SetLinkUp(lo.index, true));
  RETURN_IF_ERROR(nl->SetLinkUp(eth0.index, true));
  if (default_route) {
    ASSIGN_OR_RETURN(kernel::IpAddr gw, kernel::IpAddr::Parse(options_.subnet + ".254"));
    RETURN_IF_ERROR(nl->AddRoute({kernel::IpPrefix{kernel::IpAddr::V4(0, 0, 0, 0), 0}, gw, 0}));
  }
  return h;
}

absl::StatusOr<CommandResult> Lab::Run(int i, const std::string& cmd) {
  return RunIn(host(i).netns.get(), cmd);
}

std::vector<std::string> Leftovers(const std::string& prefix) {
  std::vector<std::string> out;
  auto scan = [&](const std::string& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (absl::StartsWith(e.path().filename().string(), prefix)) out.push_back(e.path().string());
    }
  };
  scan("/run/netns");
  scan("/run");
  scan("/tmp");
  scan("/sys/fs/cgroup");
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    if (e.is_directory(ec)) scan(e.path().string());
  }
  return out;
}

}  // namespace shoal::lab
