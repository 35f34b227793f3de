// Pure encoding/decoding of IPVS generic netlink messages (see ipvs.h). Encoders return the
// complete netlink message (nlmsghdr + genlmsghdr + attributes) for `family_id`, ready to send;
// decoders parse the nested service/destination attributes of a dump reply.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernel/ipvs/ipvs.h"

namespace shoal::kernel::ipvs {

// cmd is one of IPVS_CMD_* (linux/ip_vs.h). `full` adds scheduler/flags/timeout/netmask
// (needed by NEW/SET, not by DEL or the key of a dest command).
absl::StatusOr<std::string> EncodeServiceMsg(uint16_t family_id, uint8_t cmd, const ServiceSpec& s,
                                             bool full, uint16_t flags);
absl::StatusOr<std::string> EncodeDestMsg(uint16_t family_id, uint8_t cmd, const ServiceKey& k,
                                          const DestSpec& d, bool full, uint16_t flags);
// GET_SERVICE dump, GET_DEST dump for one service, FLUSH.
absl::StatusOr<std::string> EncodeGetServices(uint16_t family_id);
absl::StatusOr<std::string> EncodeGetDests(uint16_t family_id, const ServiceKey& k);
absl::StatusOr<std::string> EncodeFlush(uint16_t family_id);

// Decode one dump reply message (full netlink message bytes).
absl::StatusOr<ServiceSpec> DecodeServiceMsg(absl::string_view msg);
absl::StatusOr<DestSpec> DecodeDestMsg(absl::string_view msg);

}  // namespace shoal::kernel::ipvs
