// DNS wire codec (RFC 1035, EDNS0 per RFC 6891).
//
// ParseMessage() decodes a packet into a Message; it never reads out of bounds, follows only
// backward compression pointers (so it cannot loop) and returns InvalidArgument naming the
// field that is malformed. BuildMessage() encodes with name compression and, when the result
// would exceed `max_size`, drops the answer/authority/additional records (keeping the OPT
// record) and sets TC so the client retries over TCP (RFC 2181 §9). All functions are pure and
// thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::dns {

enum Type : uint16_t {
  kTypeA = 1,
  kTypeNs = 2,
  kTypeCname = 5,
  kTypeSoa = 6,
  kTypePtr = 12,
  kTypeMx = 15,
  kTypeTxt = 16,
  kTypeAaaa = 28,
  kTypeSrv = 33,
  kTypeOpt = 41,
  kTypeAny = 255,
};
inline constexpr uint16_t kClassIn = 1;

enum Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,  // extended rcode, carried partly in the OPT record
};
enum Opcode : uint8_t { kOpQuery = 0 };

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kClassicUdpSize = 512;
inline constexpr size_t kMaxMessageSize = 65535;

struct Header {
  uint16_t id = 0;
  bool qr = false;  // response
  uint8_t opcode = kOpQuery;
  bool aa = false, tc = false, rd = false, ra = false, ad = false, cd = false;
  uint16_t rcode = kNoError;  // full 12-bit rcode; the upper 8 bits travel in OPT
};

struct Question {
  std::string name;  // presentation form, original case
  uint16_t type = kTypeA;
  uint16_t klass = kClassIn;
};

struct SrvData {
  uint16_t priority = 0, weight = 0, port = 0;
  std::string target;
};
struct SoaData {
  std::string mname, rname;
  uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;
};
struct MxData {
  uint16_t preference = 0;
  std::string exchange;
};
struct RawData {
  std::string bytes;
};
using Ip4 = std::array<uint8_t, 4>;
using Ip6 = std::array<uint8_t, 16>;
// Name-valued rdata (CNAME, NS, PTR) is a std::string.
using Rdata = std::variant<RawData, Ip4, Ip6, std::string, SrvData, SoaData, MxData>;

struct Record {
  std::string name;
  uint16_t type = kTypeA;
  uint16_t klass = kClassIn;
  uint32_t ttl = 0;
  Rdata data;
};

struct Edns {
  uint16_t udp_size = kClassicUdpSize;  // requestor's payload size (values < 512 mean 512)
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::string options;  // raw option TLVs, passed through unparsed
};

struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers, authority, additional;  // additional excludes OPT
  std::optional<Edns> edns;
};

// Decodes the fixed 12-byte header only (for answering FORMERR to otherwise broken packets).
absl::StatusOr<Header> ParseHeader(absl::string_view packet);

absl::StatusOr<Message> ParseMessage(absl::string_view packet);

// Encodes `msg`; see the file comment for truncation. `max_size` >= 512 is expected (values
// below are raised to 512). InvalidArgument when a name or rdata cannot be encoded.
absl::StatusOr<std::string> BuildMessage(const Message& msg, size_t max_size = kMaxMessageSize);

// A response skeleton for `query`: same id, opcode, rd and question, qr set, EDNS echoed
// (payload size advertised `our_udp_size`) when the query had it.
Message MakeResponse(const Message& query, uint16_t rcode, uint16_t our_udp_size = 1232);

}  // namespace shoal::dns
