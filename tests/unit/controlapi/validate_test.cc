#include "manager/controlapi/validate.h"

#include "gtest/gtest.h"

namespace shoal::manager::controlapi {
namespace {

api::ServiceSpec Valid() {
  api::ServiceSpec s;
  s.mutable_annotations()->set_name("web");
  s.mutable_replicated()->set_replicas(2);
  s.mutable_task()->mutable_container()->set_image("busybox:latest");
  return s;
}

void ExpectInvalid(const absl::Status& s, const std::string& field) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(field), std::string::npos) << "want '" << field << "' in: " << s;
}

TEST(ValidateTest, Names) {
  EXPECT_TRUE(ValidateName("n", "web").ok());
  EXPECT_TRUE(ValidateName("n", "my_web-1").ok());
  EXPECT_TRUE(ValidateName("n", std::string(63, 'a')).ok());
  ExpectInvalid(ValidateName("n", ""), "n: is required");
  ExpectInvalid(ValidateName("n", std::string(64, 'a')), "longer than 63");
  ExpectInvalid(ValidateName("n", "-web"), "must be letters");
  ExpectInvalid(ValidateName("n", "web-"), "must be letters");
  ExpectInvalid(ValidateName("n", "we.b"), "must be letters");
  ExpectInvalid(ValidateName("n", "we b"), "must be letters");
}

TEST(ValidateTest, ValidServicePasses) { EXPECT_TRUE(ValidateServiceSpec(Valid()).ok()); }

TEST(ValidateTest, ServiceFieldsAreChecked) {
  struct Case {
    std::function<void(api::ServiceSpec&)> edit;
    std::string field;
  } cases[] = {
      {[](auto& s) { s.clear_replicated(); }, "spec.mode"},
      {[](auto& s) { s.mutable_task()->mutable_container()->clear_image(); }, "spec.task.container.image"},
      {[](auto& s) { s.mutable_task()->mutable_resources()->mutable_limits()->set_memory_bytes(1 << 20); },
       "spec.task.resources.limits.memory_bytes: 1048576 is below the minimum of 4 MiB"},
      {[](auto& s) { s.mutable_task()->mutable_resources()->mutable_reservations()->set_nano_cpus(1000); },
       "spec.task.resources.reservations.nano_cpus"},
      {[](auto& s) {
         s.mutable_task()->mutable_resources()->mutable_limits()->set_memory_bytes(8 << 20);
         s.mutable_task()->mutable_resources()->mutable_reservations()->set_memory_bytes(16 << 20);
       },
       "exceeds the memory limit"},
      {[](auto& s) { s.mutable_task()->mutable_placement()->add_constraints("node.colour==red"); },
       "spec.task.placement.constraints[0]"},
      {[](auto& s) { s.mutable_task()->mutable_placement()->add_preferences()->set_spread_descriptor("node.id"); },
       "spec.task.placement.preferences[0]"},
      {[](auto& s) { s.mutable_update()->set_max_failure_ratio(1.5); }, "spec.update.max_failure_ratio"},
      {[](auto& s) {
         auto* m = s.mutable_task()->mutable_container()->add_mounts();
         m->set_target("data");
       },
       "spec.task.container.mounts[0].target"},
      {[](auto& s) {
         auto* m = s.mutable_task()->mutable_container()->add_mounts();
         m->set_target("/data");
         m->set_source("relative");
       },
       "spec.task.container.mounts[0].source"},
      {[](auto& s) {
         auto* p = s.mutable_endpoint()->add_ports();
         p->set_target_port(0);
       },
       "spec.endpoint.ports[0].target_port"},
      {[](auto& s) {
         for (int i = 0; i < 2; ++i) {
           auto* p = s.mutable_endpoint()->add_ports();
           p->set_target_port(80 + i);
           p->set_published_port(8080);
         }
       },
       "spec.endpoint.ports[1].published_port: port 8080 is published twice"},
      {[](auto& s) {
         s.mutable_endpoint()->set_mode(api::EndpointSpec::RESOLUTION_MODE_DNSRR);
         auto* p = s.mutable_endpoint()->add_ports();
         p->set_target_port(80);
         p->set_published_port(8080);
       },
       "need endpoint mode vip"},
      {[](auto& s) { s.mutable_task()->mutable_container()->mutable_healthcheck()->mutable_interval()->set_nanos(10); },
       "healthcheck.interval: must be at least 1ms"},
      {[](auto& s) {
         s.mutable_replicated_job();
         s.mutable_update()->set_parallelism(1);
       },
       "jobs cannot have an update config"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    api::ServiceSpec s = Valid();
    cases[i].edit(s);
    SCOPED_TRACE(i);
    ExpectInvalid(ValidateServiceSpec(s), cases[i].field);
  }
}

TEST(ValidateTest, SamePortOnTwoProtocolsAndHostModeDnsrrAreFine) {
  api::ServiceSpec s = Valid();
  for (auto proto : {api::PortConfig::PROTOCOL_TCP, api::PortConfig::PROTOCOL_UDP}) {
    auto* p = s.mutable_endpoint()->add_ports();
    p->set_target_port(53);
    p->set_published_port(53);
    p->set_protocol(proto);
  }
  EXPECT_TRUE(ValidateServiceSpec(s).ok());
  s.mutable_endpoint()->set_mode(api::EndpointSpec::RESOLUTION_MODE_DNSRR);
  for (auto& p : *s.mutable_endpoint()->mutable_ports()) p.set_publish_mode(api::PortConfig::PUBLISH_MODE_HOST);
  EXPECT_TRUE(ValidateServiceSpec(s).ok());
}

TEST(ValidateTest, ModeChangeIsRefused) {
  api::ServiceSpec old = Valid();
  api::ServiceSpec next = Valid();
  next.mutable_global();
  ExpectInvalid(ValidateServiceUpdate(old, next), "service mode change is not allowed");
  next = Valid();
  next.mutable_replicated()->set_replicas(10);
  EXPECT_TRUE(ValidateServiceUpdate(old, next).ok());
}

TEST(ValidateTest, NetworksSecretsConfigs) {
  api::NetworkSpec n;
  n.mutable_annotations()->set_name("backend");
  EXPECT_TRUE(ValidateNetworkSpec(n).ok());
  n.mutable_driver_config()->set_name("weave");
  ExpectInvalid(ValidateNetworkSpec(n), "unknown driver 'weave'");
  n.mutable_driver_config()->set_name("macvlan");
  n.set_ingress(true);
  ExpectInvalid(ValidateNetworkSpec(n), "spec.ingress");

  api::SecretSpec sec;
  sec.mutable_annotations()->set_name("db-pass");
  ExpectInvalid(ValidateSecretSpec(sec), "spec.data");
  sec.set_data("hunter2");
  EXPECT_TRUE(ValidateSecretSpec(sec).ok());
  sec.set_data(std::string(500 * 1024, 'x'));
  ExpectInvalid(ValidateSecretSpec(sec), "1 byte to 500 KiB");

  api::ConfigSpec cfg;
  cfg.mutable_annotations()->set_name("nginx.conf");
  cfg.set_data("x");
  ExpectInvalid(ValidateConfigSpec(cfg), "spec.annotations.name");
  cfg.mutable_annotations()->set_name("nginx-conf");
  EXPECT_TRUE(ValidateConfigSpec(cfg).ok());
}

}  // namespace
}  // namespace shoal::manager::controlapi
