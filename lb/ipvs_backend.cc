#include "lb/ipvs_backend.h"

#include <arpa/inet.h>

#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::lb {
namespace ipvs = kernel::ipvs;
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

ipvs::ServiceSpec SpecOf(const Service& s) {
  ipvs::ServiceSpec spec;
  spec.key.protocol = static_cast<uint16_t>(s.protocol);
  spec.key.addr = Bytes(s.vip, &spec.key.af);
  spec.key.port = s.port;
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

absl::Status AddAll(Journal& j, ipvs::Ipvs& k, const Service& s) {
  ipvs::ServiceSpec spec = SpecOf(s);
  RETURN_IF_ERROR(j.Do([&, spec] { return k.AddService(spec); },
                       [&, key = spec.key] { return k.DeleteService(key); }));
  for (const BackendAddr& b : s.backends) {
    ipvs::DestSpec d = DestOf(b);
    RETURN_IF_ERROR(j.Do([&, key = spec.key, d] { return k.AddDest(key, d); },
                         [&, key = spec.key, d] { return k.DeleteDest(key, d); }));
  }
  return absl::OkStatus();
}

absl::Status RemoveAll(Journal& j, ipvs::Ipvs& k, const Service& s) {
  ipvs::ServiceSpec spec = SpecOf(s);
  // Deleting the service drops its destinations; the undo re-creates both.
  return j.Do([&, key = spec.key] { return k.DeleteService(key); },
              [&, s] {
                Journal inner;
                return AddAll(inner, k, s);
              });
}

absl::Status Change1(Journal& j, ipvs::Ipvs& k, const Service& old, const Service& neu) {
  ipvs::ServiceSpec o = SpecOf(old), n = SpecOf(neu);
  if (!(o.key == n.key)) {  // frontend moved: replace the service
    RETURN_IF_ERROR(RemoveAll(j, k, old));
    return AddAll(j, k, neu);
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

absl::Status IpvsBackend::Apply(const Change& change) {
  for (const Service& s : change.upsert) {
    if (s.frontend == Frontend::kPublished) {
      return absl::UnimplementedError(
          absl::StrCat("service ", s.name,
                       ": published ports on the IPVS backend need fwmark rules "
                       "(nft meta mark set), not available yet; use the nft backend"));
    }
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Delta delta, services_.Plan(change));
  Journal j;
  absl::Status st;
  for (const Service& s : delta.removed) {
    if (st.ok()) st = RemoveAll(j, *ipvs_, s);
  }
  for (const auto& [old, neu] : delta.changed) {
    if (st.ok()) st = Change1(j, *ipvs_, old, neu);
  }
  for (const Service& s : delta.added) {
    if (st.ok()) st = AddAll(j, *ipvs_, s);
  }
  if (!st.ok()) return j.Rollback(st);
  services_.Commit(delta);
  return absl::OkStatus();
}

std::vector<Service> IpvsBackend::Services() const {
  std::lock_guard lock(mu_);
  return services_.All();
}

}  // namespace shoal::lb
