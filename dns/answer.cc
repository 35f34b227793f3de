#include "dns/answer.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "dns/name.h"

namespace shoal::dns {
namespace {

std::string HeaderOnly(const Header& q, uint16_t rcode) {
  Message m;
  m.header.id = q.id;
  m.header.qr = true;
  m.header.opcode = q.opcode;
  m.header.rd = q.rd;
  m.header.rcode = rcode;
  auto out = BuildMessage(m);
  return out.ok() ? *std::move(out) : std::string();
}

Outcome Reply(const Message& resp, size_t limit) {
  Outcome o;
  auto out = BuildMessage(resp, limit);
  if (!out.ok()) {
    // Only reachable for records the table accepted but cannot encode; fail closed.
    o.reply = HeaderOnly(resp.header, kServFail);
  } else {
    o.reply = *std::move(out);
  }
  o.action = Outcome::kReply;
  return o;
}

bool OursOnly(const std::string& name, const std::vector<std::string>& networks) {
  if (absl::StartsWith(name, "tasks.")) return true;
  for (const std::string& n : networks) {
    std::string net = CanonicalName(n);
    if (name == net || absl::EndsWith(name, "." + net)) return true;
  }
  return false;
}

}  // namespace

std::string ServFailFor(absl::string_view packet) {
  auto h = ParseHeader(packet);
  if (!h.ok() || h->qr) return {};
  auto m = ParseMessage(packet);
  if (!m.ok()) return HeaderOnly(*h, kServFail);
  Message r = MakeResponse(*m, kServFail, kOurUdpPayload);
  auto out = BuildMessage(r, kClassicUdpSize);
  return out.ok() ? *std::move(out) : HeaderOnly(*h, kServFail);
}

bool AnswersQuestion(absl::string_view query, absl::string_view reply) {
  if (query.size() < kHeaderSize || reply.size() < kHeaderSize) return false;
  if ((static_cast<uint8_t>(reply[2]) & 0x80) == 0) return false;
  if (reply[4] != 0 || reply[5] != 1) return false;  // qdcount == 1
  // Length of the query's question: uncompressed labels, the root byte, type and class.
  size_t i = kHeaderSize;
  while (i < query.size() && query[i] != 0) {
    uint8_t len = static_cast<uint8_t>(query[i]);
    if (len > kMaxLabelLength) return false;
    i += 1 + len;
  }
  size_t end = i + 1 + 4;
  if (i >= query.size() || end > query.size() || end > reply.size()) return false;
  // Label-length bytes are < 64, so lowercasing leaves them alone; type and class are exact.
  return absl::EqualsIgnoreCase(query.substr(kHeaderSize, i - kHeaderSize),
                                reply.substr(kHeaderSize, i - kHeaderSize)) &&
         query.substr(i, 5) == reply.substr(i, 5);
}

Outcome AnswerQuery(const QueryContext& ctx, absl::string_view packet) {
  Outcome drop;
  auto h = ParseHeader(packet);
  if (!h.ok() || h->qr) return drop;
  auto parsed = ParseMessage(packet);
  if (!parsed.ok()) {
    return Outcome{Outcome::kReply, HeaderOnly(*h, kFormErr)};
  }
  const Message& q = *parsed;
  if (q.header.opcode != kOpQuery) return Outcome{Outcome::kReply, HeaderOnly(*h, kNotImp)};
  if (q.questions.size() != 1) return Outcome{Outcome::kReply, HeaderOnly(*h, kFormErr)};

  size_t limit = kClassicUdpSize;
  if (ctx.over_tcp) {
    limit = kMaxMessageSize;
  } else if (q.edns) {
    limit = std::clamp<size_t>(q.edns->udp_size, kClassicUdpSize, kOurUdpPayload);
  }
  if (q.edns && q.edns->version > 0) {
    Message r = MakeResponse(q, kBadVers, kOurUdpPayload);
    r.questions.clear();
    return Reply(r, limit);
  }
  const Question& question = q.questions.front();
  if (question.klass != kClassIn || question.type == 251 || question.type == 252) {
    return Reply(MakeResponse(q, kRefused, kOurUdpPayload), limit);
  }

  LookupResult res = ctx.table->Lookup(*ctx.networks, question);
  if (res.kind == LookupResult::kAnswer) {
    Message r = MakeResponse(q, kNoError, kOurUdpPayload);
    r.header.aa = true;
    r.header.ra = ctx.can_forward;
    if (res.answers.size() > 1 && res.answers.front().type != kTypeSrv) {
      std::rotate(res.answers.begin(), res.answers.begin() + (ctx.rotation % res.answers.size()),
                  res.answers.end());
    }
    r.answers = std::move(res.answers);
    r.additional = std::move(res.additional);
    return Reply(r, limit);
  }
  std::string name = CanonicalName(question.name);
  if (ctx.can_forward && !OursOnly(name, *ctx.networks)) {
    return Outcome{Outcome::kForward, {}};
  }
  Message r = MakeResponse(q, kNxDomain, kOurUdpPayload);
  r.header.aa = true;
  r.header.ra = ctx.can_forward;
  return Reply(r, limit);
}

}  // namespace shoal::dns
