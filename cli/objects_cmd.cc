// shoal network create|ls|inspect|rm, secret create|ls|inspect|rm, config create|ls|inspect|rm
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "cli/commands.h"
#include "cli/refs.h"
#include "cli/spec_flags.h"
#include "cli/table.h"

namespace shoal::cli {
namespace {

// Registers ls/inspect/rm on `parent`. `list` fills a table (or ids with -q); `get` and
// `remove` act on one reference.
void AddListInspectRm(CLI::App* parent, Cli& cli,
                      std::function<grpc::Status(Client&, bool quiet, Table&)> list,
                      std::function<grpc::Status(Client&, const std::string&, std::string*)> get,
                      std::function<grpc::Status(Client&, const std::string&)> remove,
                      std::vector<std::string> header) {
  auto quiet = std::make_shared<bool>(false);
  auto* ls = parent->add_subcommand("ls", "list");
  ls->alias("list");
  ls->add_flag("-q,--quiet", *quiet, "only IDs");
  ls->callback([&cli, quiet, list, header] {
    cli.action = [&cli, quiet, list, header] {
      Client c = cli.Connect();
      Table t(header);
      grpc::Status s = list(c, *quiet, t);
      if (!s.ok()) return c.Fail(s);
      if (!*quiet) t.Print();
      return 0;
    };
  });
  auto inspect_refs = std::make_shared<std::vector<std::string>>();
  auto* inspect = parent->add_subcommand("inspect", "show as JSON");
  inspect->add_option("NAME", *inspect_refs, "names or ids")->required();
  inspect->callback([&cli, inspect_refs, get] {
    cli.action = [&cli, inspect_refs, get] {
      Client c = cli.Connect();
      return ForEachRef(c, *inspect_refs, RefOutput::kJsonArray,
                        [&](const std::string& ref, std::string* out) { return get(c, ref, out); });
    };
  });
  auto rm_refs = std::make_shared<std::vector<std::string>>();
  auto* rm = parent->add_subcommand("rm", "remove");
  rm->alias("remove");
  rm->add_option("NAME", *rm_refs, "names or ids")->required();
  rm->callback([&cli, rm_refs, remove] {
    cli.action = [&cli, rm_refs, remove] {
      Client c = cli.Connect();
      return ForEachRef(c, *rm_refs, RefOutput::kRefs,
                        [&](const std::string& ref, std::string*) { return remove(c, ref); });
    };
  });
}

std::string DriverScope(const api::Network& n) {
  return n.spec().driver_config().name() == "bridge" ? "local" : "swarm";
}

void AddNetworkCommands(CLI::App& app, Cli& cli) {
  auto* network = app.add_subcommand("network", "manage networks");
  network->require_subcommand(1);
  struct Flags {
    std::string name, driver = "overlay", subnet, gateway, ip_range;
    bool attachable = false, internal = false, ingress = false;
    std::vector<std::string> opts, labels;
  };
  auto f = std::make_shared<Flags>();
  auto* create = network->add_subcommand("create", "create a network");
  create->add_option("-d,--driver", f->driver, "overlay, macvlan or bridge")
      ->capture_default_str();
  create->add_option("--subnet", f->subnet, "subnet in CIDR form");
  create->add_option("--gateway", f->gateway, "gateway address");
  create->add_option("--ip-range", f->ip_range, "allocate task addresses from this range");
  create->add_flag("--attachable", f->attachable, "standalone containers may attach");
  create->add_flag("--internal", f->internal, "no egress");
  create->add_flag("--ingress", f->ingress, "the routing-mesh network");
  create->add_option("-o,--opt", f->opts, "driver option key=value");
  create->add_option("--label", f->labels, "label key=value");
  create->add_option("NAME", f->name, "network name")->required();
  create->callback([&cli, f] {
    cli.action = [&cli, f] {
      if ((!f->gateway.empty() || !f->ip_range.empty()) && f->subnet.empty()) {
        return FailLocal(absl::InvalidArgumentError(
            !f->gateway.empty() ? "--gateway: needs --subnet" : "--ip-range: needs --subnet"));
      }
      api::CreateNetworkRequest req;
      auto* spec = req.mutable_spec();
      spec->mutable_annotations()->set_name(f->name);
      for (const auto& l : f->labels) {
        auto [k, v] = SplitKeyValue(l);
        (*spec->mutable_annotations()->mutable_labels())[k] = v;
      }
      spec->mutable_driver_config()->set_name(f->driver);
      for (const auto& o : f->opts) {
        auto [k, v] = SplitKeyValue(o);
        (*spec->mutable_driver_config()->mutable_options())[k] = v;
      }
      spec->set_attachable(f->attachable);
      spec->set_internal(f->internal);
      spec->set_ingress(f->ingress);
      if (!f->subnet.empty()) {
        auto* cfg = spec->mutable_ipam()->add_configs();
        cfg->set_subnet(f->subnet);
        cfg->set_gateway(f->gateway);
        cfg->set_range(f->ip_range);
      }
      Client c = cli.Connect();
      api::CreateNetworkResponse resp;
      auto ctx = Client::Context();
      grpc::Status s = c.control().CreateNetwork(ctx.get(), req, &resp);
      if (!s.ok()) return c.Fail(s);
      std::printf("%s\n", resp.network().id().c_str());
      return 0;
    };
  });
  AddListInspectRm(
      network, cli,
      [](Client& c, bool quiet, Table& t) {
        std::vector<api::Network> nets;
        grpc::Status s = ListAll<api::Network, api::ListNetworksRequest, api::ListNetworksResponse>(
            api::ListNetworksRequest{},
            [&](grpc::ClientContext* ctx, const api::ListNetworksRequest& r,
                api::ListNetworksResponse* o) { return c.control().ListNetworks(ctx, r, o); },
            [](const api::ListNetworksResponse& r) { return r.networks(); }, &nets);
        std::sort(nets.begin(), nets.end(), [](const api::Network& a, const api::Network& b) {
          return a.spec().annotations().name() < b.spec().annotations().name();
        });
        for (const auto& n : nets) {
          if (quiet) std::printf("%s\n", n.id().c_str());
          t.Add({ShortId(n.id()), n.spec().annotations().name(), n.spec().driver_config().name(),
                 DriverScope(n)});
        }
        return s;
      },
      [](Client& c, const std::string& ref, std::string* out) {
        api::GetNetworkRequest req;
        req.set_network_id(ref);
        api::GetNetworkResponse resp;
        auto ctx = Client::Context();
        grpc::Status s = c.control().GetNetwork(ctx.get(), req, &resp);
        *out = ToJson(resp.network());
        return s;
      },
      [](Client& c, const std::string& ref) {
        api::RemoveNetworkRequest req;
        req.set_network_id(ref);
        api::RemoveNetworkResponse resp;
        auto ctx = Client::Context();
        return c.control().RemoveNetwork(ctx.get(), req, &resp);
      },
      {"NETWORK ID", "NAME", "DRIVER", "SCOPE"});
}

// Reads FILE, or stdin for "-".
absl::StatusOr<std::string> ReadData(const std::string& path) {
  if (path == "-") {
    std::string data((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return data;
  }
  auto data = base::ReadFile(path);
  if (!data.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("FILE: ", data.status().message()));
  }
  return data;
}

// secret and config have the same shape; `Traits` binds the kind's messages and calls.
template <typename T>
void AddDataCommands(CLI::App& app, Cli& cli, const char* kind) {
  auto* cmd = app.add_subcommand(kind, absl::StrCat("manage ", kind, "s"));
  cmd->require_subcommand(1);
  struct Flags {
    std::string name, file;
    std::vector<std::string> labels;
  };
  auto f = std::make_shared<Flags>();
  auto* create = cmd->add_subcommand("create", absl::StrCat("create a ", kind, " from a file"));
  create->add_option("-l,--label", f->labels, "label key=value");
  create->add_option("NAME", f->name, "name")->required();
  create->add_option("FILE", f->file, "file with the content, or - for stdin")->required();
  create->callback([&cli, f] {
    cli.action = [&cli, f] {
      auto data = ReadData(f->file);
      if (!data.ok()) return FailLocal(data.status());
      typename T::CreateReq req;
      req.mutable_spec()->mutable_annotations()->set_name(f->name);
      for (const auto& l : f->labels) {
        auto [k, v] = SplitKeyValue(l);
        (*req.mutable_spec()->mutable_annotations()->mutable_labels())[k] = v;
      }
      req.mutable_spec()->set_data(*data);
      Client c = cli.Connect();
      typename T::CreateResp resp;
      auto ctx = Client::Context();
      grpc::Status s = T::Create(c.control(), ctx.get(), req, &resp);
      if (!s.ok()) return c.Fail(s);
      std::printf("%s\n", T::Obj(resp).id().c_str());
      return 0;
    };
  });
  AddListInspectRm(
      cmd, cli,
      [](Client& c, bool quiet, Table& t) {
        std::vector<typename T::Item> items;
        grpc::Status s = ListAll<typename T::Item, typename T::ListReq, typename T::ListResp>(
            typename T::ListReq{},
            [&](grpc::ClientContext* ctx, const typename T::ListReq& r,
                typename T::ListResp* o) { return T::List(c.control(), ctx, r, o); },
            [](const typename T::ListResp& r) { return T::Items(r); }, &items);
        absl::Time now = absl::Now();
        for (const auto& i : items) {
          if (quiet) std::printf("%s\n", i.id().c_str());
          t.Add({i.id(), i.spec().annotations().name(), Ago(i.meta().created_at(), now),
                 Ago(i.meta().updated_at(), now)});
        }
        return s;
      },
      [](Client& c, const std::string& ref, std::string* out) {
        typename T::GetReq req;
        T::SetId(req, ref);
        typename T::GetResp resp;
        auto ctx = Client::Context();
        grpc::Status s = T::Get(c.control(), ctx.get(), req, &resp);
        *out = ToJson(T::Obj(resp));
        return s;
      },
      [](Client& c, const std::string& ref) {
        typename T::RmReq req;
        T::SetId(req, ref);
        typename T::RmResp resp;
        auto ctx = Client::Context();
        return T::Remove(c.control(), ctx.get(), req, &resp);
      },
      {"ID", "NAME", "CREATED", "UPDATED"});
}

#define SHOAL_DATA_KIND(Traits, K, id_field)                                                   \
  struct Traits {                                                                              \
    using Item = api::K;                                                                       \
    using CreateReq = api::Create##K##Request;                                                 \
    using CreateResp = api::Create##K##Response;                                               \
    using GetReq = api::Get##K##Request;                                                       \
    using GetResp = api::Get##K##Response;                                                     \
    using ListReq = api::List##K##sRequest;                                                    \
    using ListResp = api::List##K##sResponse;                                                  \
    using RmReq = api::Remove##K##Request;                                                     \
    using RmResp = api::Remove##K##Response;                                                   \
    static grpc::Status Create(api::Control::Stub& s, grpc::ClientContext* c,                  \
                               const CreateReq& r, CreateResp* o) {                            \
      return s.Create##K(c, r, o);                                                             \
    }                                                                                          \
    static grpc::Status Get(api::Control::Stub& s, grpc::ClientContext* c, const GetReq& r,    \
                            GetResp* o) {                                                      \
      return s.Get##K(c, r, o);                                                                \
    }                                                                                          \
    static grpc::Status List(api::Control::Stub& s, grpc::ClientContext* c, const ListReq& r,  \
                             ListResp* o) {                                                    \
      return s.List##K##s(c, r, o);                                                            \
    }                                                                                          \
    static grpc::Status Remove(api::Control::Stub& s, grpc::ClientContext* c, const RmReq& r,  \
                               RmResp* o) {                                                    \
      return s.Remove##K(c, r, o);                                                             \
    }                                                                                          \
    static const api::K& Obj(const CreateResp& r) { return r.id_field(); }                     \
    static const api::K& Obj(const GetResp& r) { return r.id_field(); }                        \
    static auto Items(const ListResp& r) { return r.id_field##s(); }                           \
    template <typename R>                                                                      \
    static void SetId(R& r, const std::string& id) {                                           \
      r.set_##id_field##_id(id);                                                               \
    }                                                                                          \
  };
SHOAL_DATA_KIND(SecretKind, Secret, secret)
SHOAL_DATA_KIND(ConfigKind, Config, config)
#undef SHOAL_DATA_KIND

}  // namespace

void AddObjectCommands(CLI::App& app, Cli& cli) {
  AddNetworkCommands(app, cli);
  AddDataCommands<SecretKind>(app, cli, "secret");
  AddDataCommands<ConfigKind>(app, cli, "config");
}

}  // namespace shoal::cli
