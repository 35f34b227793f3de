// Decides what the resolver does with one incoming packet: answer it from the RecordTable,
// forward it upstream, or drop it. Pure (no I/O), so it is unit-tested and fuzzed directly.
//
// Rules (reference/dataplane.md §5, with Docker's SERVFAIL-for-unknown replaced by NXDOMAIN
// when nothing can be forwarded):
//   - shorter than a header, or a response (QR set): dropped, never answered (no loops);
//   - otherwise malformed: FORMERR echoing the id; opcode other than QUERY: NOTIMP;
//     qdcount != 1: FORMERR; EDNS version > 0: BADVERS; class other than IN or zone transfer:
//     REFUSED;
//   - a name the table knows: NOERROR + AA with the records of the asked type (none = NODATA);
//   - "tasks.<x>" or "<x>.<attached network>" that the table does not know: NXDOMAIN (these
//     names are ours; asking the upstream would leak them);
//   - anything else: forwarded when the endpoint has upstreams, else NXDOMAIN.
// Replies fit the client's limit: 512 bytes, or its EDNS payload size (capped at 4096) over
// UDP, 65535 over TCP; larger answers are truncated with TC set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "dns/records.h"

namespace shoal::dns {

inline constexpr uint16_t kOurUdpPayload = 4096;

struct QueryContext {
  const RecordTable* table = nullptr;
  const std::vector<std::string>* networks = nullptr;
  bool can_forward = false;
  bool over_tcp = false;
  uint32_t rotation = 0;  // rotates multi-address answers (cheap load spreading)
};

struct Outcome {
  enum Action { kDrop, kReply, kForward } action = kDrop;
  std::string reply;  // kReply: the encoded response
};

Outcome AnswerQuery(const QueryContext& ctx, absl::string_view packet);

// A SERVFAIL reply for `packet` (used when forwarding fails or is over its limit); empty when
// the packet cannot be answered at all.
std::string ServFailFor(absl::string_view packet);

// True when `reply` is a response (QR set) with exactly one question that equals the question
// of `query` (name compared case-insensitively, type and class exactly). An upstream answer
// that fails this is ignored: besides the 16-bit id and the upstream's address, an off-path
// spoofer must also match the question (RFC 5452 §3). Both questions sit right after the
// header and cannot be compressed (there is nothing before them to point at).
bool AnswersQuestion(absl::string_view query, absl::string_view reply);

}  // namespace shoal::dns
