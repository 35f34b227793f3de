// Domain names in presentation form ("www.example.com", no trailing dot, "" = root).
//
// Labels may hold any byte on the wire; in text a '.' or '\' inside a label is written as
// "\." / "\\" and a non-printable byte as "\DDD" (RFC 1035 §5.1). All functions are pure and
// thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::dns {

inline constexpr size_t kMaxLabelLength = 63;
inline constexpr size_t kMaxNameWireLength = 255;

// Splits a presentation-form name into raw labels (escapes decoded). A single trailing dot is
// accepted ("a.b." == "a.b"). InvalidArgument on an empty label, a label longer than 63 bytes,
// a name longer than 255 bytes on the wire, or a bad escape.
absl::StatusOr<std::vector<std::string>> SplitName(absl::string_view name);

// Joins raw labels into presentation form, escaping as above.
std::string JoinLabels(const std::vector<std::string>& labels);

// ASCII-lowercased copy for case-insensitive comparison (RFC 4343).
std::string CanonicalName(absl::string_view name);

// The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" for 1.2.3.4, nibble form
// under ip6.arpa for IPv6. `addr` holds 4 or 16 bytes.
std::string ReverseName(absl::string_view addr);

// Inverse of ReverseName; NotFound when `name` is not a complete reverse name.
absl::StatusOr<std::string> AddressFromReverseName(absl::string_view name);

}  // namespace shoal::dns
