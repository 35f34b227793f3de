// FakeIpvs: IPVS state in memory with the kernel's observable errors (EEXIST on duplicate
// service/destination, ESRCH/ENOENT on missing ones) mapped as in netlink_ipvs.cc.
#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "kernel/ipvs/ipvs.h"

namespace shoal::kernel::ipvs {
namespace {

std::string KeyText(const ServiceKey& k) {
  if (k.fwmark) return absl::StrCat("fwmark ", k.fwmark);
  return absl::StrCat("proto ", k.protocol, " port ", k.port);
}

class FakeIpvs final : public Ipvs {
 public:
  absl::Status AddService(const ServiceSpec& s) override {
    std::lock_guard lock(mu_);
    if (Find(s.key)) return absl::AlreadyExistsError("ipvs add service: " + KeyText(s.key));
    if (s.scheduler.empty()) return absl::InvalidArgumentError("ipvs add service: scheduler");
    services_.push_back({s, {}});
    return absl::OkStatus();
  }
  absl::Status UpdateService(const ServiceSpec& s) override {
    std::lock_guard lock(mu_);
    ServiceState* st = Find(s.key);
    if (!st) return absl::NotFoundError("ipvs update service: " + KeyText(s.key));
    st->spec = s;
    return absl::OkStatus();
  }
  absl::Status DeleteService(const ServiceKey& k) override {
    std::lock_guard lock(mu_);
    auto it = std::find_if(services_.begin(), services_.end(),
                           [&](const ServiceState& s) { return s.spec.key == k; });
    if (it == services_.end()) return absl::NotFoundError("ipvs delete service: " + KeyText(k));
    services_.erase(it);
    return absl::OkStatus();
  }
  absl::Status AddDest(const ServiceKey& k, const DestSpec& d) override {
    std::lock_guard lock(mu_);
    ServiceState* st = Find(k);
    if (!st) return absl::NotFoundError("ipvs add dest: no service " + KeyText(k));
    if (FindDest(*st, d)) return absl::AlreadyExistsError("ipvs add dest: exists");
    st->dests.push_back(d);
    return absl::OkStatus();
  }
  absl::Status UpdateDest(const ServiceKey& k, const DestSpec& d) override {
    std::lock_guard lock(mu_);
    ServiceState* st = Find(k);
    if (!st) return absl::NotFoundError("ipvs update dest: no service " + KeyText(k));
    DestSpec* x = FindDest(*st, d);
    if (!x) return absl::NotFoundError("ipvs update dest: no such destination");
    *x = d;
    return absl::OkStatus();
  }
  absl::Status DeleteDest(const ServiceKey& k, const DestSpec& d) override {
    std::lock_guard lock(mu_);
    ServiceState* st = Find(k);
    if (!st) return absl::NotFoundError("ipvs delete dest: no service " + KeyText(k));
    auto it = std::find_if(st->dests.begin(), st->dests.end(),
                           [&](const DestSpec& x) { return x.addr == d.addr && x.port == d.port; });
    if (it == st->dests.end()) return absl::NotFoundError("ipvs delete dest: no such destination");
    st->dests.erase(it);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ServiceState>> List() override {
    std::lock_guard lock(mu_);
    return services_;
  }
  absl::Status Flush() override {
    std::lock_guard lock(mu_);
    services_.clear();
    return absl::OkStatus();
  }

 private:
  ServiceState* Find(const ServiceKey& k) {
    for (ServiceState& s : services_) {
      if (s.spec.key == k) return &s;
    }
    return nullptr;
  }
  static DestSpec* FindDest(ServiceState& s, const DestSpec& d) {
    for (DestSpec& x : s.dests) {
      if (x.addr == d.addr && x.port == d.port) return &x;
    }
    return nullptr;
  }

  std::mutex mu_;
  std::vector<ServiceState> services_;
};

}  // namespace

std::unique_ptr<Ipvs> NewFakeIpvs() { return std::make_unique<FakeIpvs>(); }

}  // namespace shoal::kernel::ipvs
