#include "lb/ipvs_backend.h"

#include <arpa/inet.h>

#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/nft/plan.h"

namespace shoal::lb {
namespace ipvs = kernel::ipvs;
namespace nft = kernel::nft;
namespace {

std::string Bytes(const std::string& ip, uint16_t* af) {
  std::string out(16, '\0');
  if (inet_pton(AF_INET, ip.c_str(), out.data()) == 1) {
    *af = AF_INET;
    out.resize(4);
  } else {
    inet_pton(AF_INET6, ip.c_str(), out.data());
    *af = AF_INET6;
  }
  return out;
}

using Marks = std::map<std::string, uint32_t>;

uint32_t MarkFor(const Marks& marks, const Service& s) {
  if (s.frontend != Frontend::kPublished) return 0;
  auto it = marks.find(s.name);
  return it == marks.end() ? 0 : it->second;
}

// A VIP is an address service; a published port is a fwmark service (IPv4: published ports
// support IPv4 backends only).
ipvs::ServiceSpec SpecOf(const Service& s, const Marks& marks) {
  ipvs::ServiceSpec spec;
  if (s.frontend == Frontend::kPublished) {
    spec.key.af = AF_INET;
    spec.key.fwmark = MarkFor(marks, s);
  } else {
    spec.key.protocol = static_cast<uint16_t>(s.protocol);
    spec.key.addr = Bytes(s.vip, &spec.key.af);
    spec.key.port = s.port;
  }
  spec.scheduler = s.scheduler == Scheduler::kMaglev ? "mh" : "wrr";
  return spec;
}

ipvs::DestSpec DestOf(const BackendAddr& b) {
  ipvs::DestSpec d;
  d.addr = Bytes(b.ip, &d.af);
  d.port = b.port;
  d.weight = b.weight;
  d.fwd_method = ipvs::kFwdMasq;
  return d;
}

// Operations with their inverses, undone in reverse order on failure.
class Journal {
 public:
  absl::Status Do(std::function<absl::Status()> op, std::function<absl::Status()> undo) {
    RETURN_IF_ERROR(op());
    undo_.push_back(std::move(undo));
    return absl::OkStatus();
  }
  absl::Status Rollback(const absl::Status& cause) {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      if (absl::Status s = (*it)(); !s.ok()) {
        return base::Annotate(cause, absl::StrCat("(rollback also failed: ", s.message(), ")"));
      }
    }
    return cause;
  }

 private:
  std::vector<std::function<absl::Status()>> undo_;
};

absl::Status AddAll(Journal& j, ipvs::Ipvs& k, const Service& s, const Marks& m) {
  ipvs::ServiceSpec spec = SpecOf(s, m);
  RETURN_IF_ERROR(j.Do([&, spec] { return k.AddService(spec); },
                       [&, key = spec.key] { return k.DeleteService(key); }));
  for (const BackendAddr& b : s.backends) {
    ipvs::DestSpec d = DestOf(b);
    RETURN_IF_ERROR(j.Do([&, key = spec.key, d] { return k.AddDest(key, d); },
                         [&, key = spec.key, d] { return k.DeleteDest(key, d); }));
  }
  return absl::OkStatus();
}

absl::Status RemoveAll(Journal& j, ipvs::Ipvs& k, const Service& s, const Marks& m) {
  ipvs::ServiceSpec spec = SpecOf(s, m);
  // Deleting the service drops its destinations; the undo re-creates both.
  return j.Do([&, key = spec.key] { return k.DeleteService(key); },
              [&, s] {
                Journal inner;
                return AddAll(inner, k, s, m);
              });
}

absl::Status Change1(Journal& j, ipvs::Ipvs& k, const Service& old, const Service& neu,
                     const Marks& m) {
  ipvs::ServiceSpec o = SpecOf(old, m), n = SpecOf(neu, m);
  if (!(o.key == n.key)) {  // frontend moved: replace the service
    RETURN_IF_ERROR(RemoveAll(j, k, old, m));
    return AddAll(j, k, neu, m);
  }
  if (!(o == n)) {
    RETURN_IF_ERROR(
        j.Do([&, n] { return k.UpdateService(n); }, [&, o] { return k.UpdateService(o); }));
  }
  std::map<std::pair<std::string, uint16_t>, BackendAddr> before, after;
  for (const BackendAddr& b : old.backends) before[{b.ip, b.port}] = b;
  for (const BackendAddr& b : neu.backends) after[{b.ip, b.port}] = b;
  for (const auto& [key, b] : before) {
    if (after.contains(key)) continue;
    ipvs::DestSpec d = DestOf(b);
    RETURN_IF_ERROR(j.Do([&, sk = n.key, d] { return k.DeleteDest(sk, d); },
                         [&, sk = n.key, d] { return k.AddDest(sk, d); }));
  }
  for (const auto& [key, b] : after) {
    ipvs::DestSpec d = DestOf(b);
    auto it = before.find(key);
    if (it == before.end()) {
      RETURN_IF_ERROR(j.Do([&, sk = n.key, d] { return k.AddDest(sk, d); },
                           [&, sk = n.key, d] { return k.DeleteDest(sk, d); }));
    } else if (it->second.weight != b.weight) {  // includes drain (weight 0)
      ipvs::DestSpec was = DestOf(it->second);
      RETURN_IF_ERROR(j.Do([&, sk = n.key, d] { return k.UpdateDest(sk, d); },
                           [&, sk = n.key, was] { return k.UpdateDest(sk, was); }));
    }
  }
  return absl::OkStatus();
}

}  // namespace

nft::Table IpvsBackend::MarksTable(const std::vector<Service>& services, const Marks& marks,
                                   const IpvsBackendOptions& options) {
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = options.marks_table;
  constexpr int kPriorityMangle = -150;
  t.chains.push_back({"output", nft::BaseChain{nft::ChainType::kRoute, nft::Hook::kOutput,
                                               kPriorityMangle, false}});
  t.chains.push_back({"prerouting", nft::BaseChain{nft::ChainType::kFilter, nft::Hook::kPrerouting,
                                                   kPriorityMangle, false}});
  nft::Set map;
  map.name = "pub-marks";
  map.key = {nft::FieldType::kInetProto, nft::FieldType::kInetService};
  map.data = {nft::FieldType::kMark};
  for (const Service& s : services) {
    uint32_t mark = MarkFor(marks, s);
    if (mark == 0) continue;
    nft::Element e;
    e.key = {nft::Proto(static_cast<uint8_t>(s.protocol)), nft::Port(s.port)};
    e.data = {nft::U32(mark)};
    map.elements.push_back(std::move(e));
  }
  t.sets.push_back(std::move(map));
  for (const char* chain : {"output", "prerouting"}) {
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, chain)
                          .FibDaddrLocal()
                          .MarkMap({nft::Field::kL4Proto, nft::Field::kDport}, "pub-marks"));
  }
  return t;
}

absl::Status IpvsBackend::Apply(const Change& change) {
  std::lock_guard lock(mu_);
  if (nft_ == nullptr) {
    for (const Service& s : change.upsert) {
      if (s.frontend == Frontend::kPublished) {
        return absl::FailedPreconditionError(
            absl::StrCat("service ", s.name,
                         ": published ports on the IPVS backend need an nft adapter for the "
                         "fwmark rules"));
      }
    }
  }
  ASSIGN_OR_RETURN(Delta delta, services_.Plan(change));
  if (delta.empty()) return absl::OkStatus();
  // Marks of every service before and after (a changed service keeps its mark).
  Marks marks = marks_;
  std::set<uint32_t> used;
  for (const auto& [n, mark] : marks) used.insert(mark);
  auto allocate = [&](const Service& s) {
    if (s.frontend != Frontend::kPublished || marks.contains(s.name)) return;
    uint32_t mark = options_.first_mark;
    while (used.contains(mark)) ++mark;
    used.insert(mark);
    marks[s.name] = mark;
  };
  for (const auto& [old, neu] : delta.changed) allocate(neu);
  for (const Service& s : delta.added) allocate(s);

  Journal j;
  absl::Status st;
  for (const Service& s : delta.removed) {
    if (st.ok()) st = RemoveAll(j, *ipvs_, s, marks);
  }
  for (const auto& [old, neu] : delta.changed) {
    if (st.ok()) st = Change1(j, *ipvs_, old, neu, marks);
  }
  for (const Service& s : delta.added) {
    if (st.ok()) st = AddAll(j, *ipvs_, s, marks);
  }
  Marks kept = marks;
  for (const Service& s : delta.removed) kept.erase(s.name);
  for (const auto& [old, neu] : delta.changed) {
    if (neu.frontend != Frontend::kPublished) kept.erase(neu.name);
  }
  if (st.ok() && nft_ != nullptr) {
    ServiceSet after = services_;
    after.Commit(delta);
    st = nft::SyncTable(*nft_, MarksTable(after.All(), kept, options_)).status();
  }
  if (!st.ok()) return j.Rollback(st);
  services_.Commit(delta);
  marks_ = std::move(kept);
  return absl::OkStatus();
}

uint32_t IpvsBackend::MarkOf(const std::string& service) const {
  std::lock_guard lock(mu_);
  auto it = marks_.find(service);
  return it == marks_.end() ? 0 : it->second;
}

std::vector<Service> IpvsBackend::Services() const {
  std::lock_guard lock(mu_);
  return services_.All();
}

}  // namespace shoal::lb
