// Image references, parsed and normalized exactly as the Docker CLI does
// (distribution/reference grammar + ParseNormalizedNamed + TagNameOnly):
//
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [ domain "/" ] path          (at most 255 characters in total)
//   domain    := host [ ":" port ]            host: DNS name, IPv4, or "[" IPv6 "]"
//   path      := component ( "/" component )*  component: [a-z0-9]+ ( sep [a-z0-9]+ )*,
//                                              sep: "." | "_" | "__" | "-"+
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest    := "sha256:" 64 lowercase hex
//
// Normalization: the first path element is a registry domain only if it contains "." or ":",
// or is "localhost", or has an uppercase letter; otherwise the domain is "docker.io".
// "index.docker.io" becomes "docker.io"; a single-element docker.io path gets "library/".
// Without a tag and without a digest the tag is "latest"; with a digest and no tag there is no
// tag. A bare 64-hex string is refused (it is an image ID, not a name).
//
// Errors: INVALID_ARGUMENT "invalid reference \"<input>\": <reason>".
// Thread safety: pure functions on values.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/images/digest.h"

namespace shoal::runtime::images {

inline constexpr char kDefaultDomain[] = "docker.io";
inline constexpr char kDefaultTag[] = "latest";

struct Reference {
  std::string domain;  // "docker.io", "localhost:5000", "[::1]:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // "latest"; empty when only a digest was given
  Digest digest;       // empty unless "@sha256:..." was given

  // "docker.io/library/busybox"
  std::string Repository() const { return domain + "/" + path; }
  // Fully qualified: "docker.io/library/busybox:latest@sha256:..."
  std::string String() const;
  // The short form users type: "busybox:latest", "localhost:5000/x/y@sha256:..."
  std::string Familiar() const;
  // Host[:port] to contact: "registry-1.docker.io" for docker.io, else the domain.
  std::string RegistryHost() const;
  // What to ask the registry for: the digest if present, else the tag.
  std::string ManifestReference() const { return digest.empty() ? tag : digest.String(); }

  bool operator==(const Reference& o) const = default;
};

// Parses and normalizes a user-supplied reference (see the file comment).
absl::StatusOr<Reference> ParseReference(absl::string_view input);

// Validates a tag alone (used by `tag` and push). INVALID_ARGUMENT with the reason.
absl::Status ValidateTag(absl::string_view tag);

}  // namespace shoal::runtime::images
