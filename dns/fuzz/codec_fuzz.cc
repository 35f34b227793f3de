// Fuzzes the DNS wire codec and the query handler: whatever arrives on the socket must never
// crash, hang or read out of bounds, and everything the codec accepts must survive a
// build/parse round trip; every reply must parse and fit the client's size limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dns/answer.h"
#include "dns/message.h"
#include "dns/records.h"

namespace {

const shoal::dns::RecordTable& Table() {
  static const auto* table = [] {
    auto* t = new shoal::dns::RecordTable();
    (void)t->SetService(
        "net", {"web", {"www"}, {*shoal::dns::ParseIp("10.0.0.2")}, false, {{"http", "tcp", 80}}});
    (void)t->SetService("net", {"rr", {}, {}, true, {}});
    for (int i = 0; i < 40; ++i) {
      (void)t->SetTask("net", {"t" + std::to_string(i),
                               i % 2 ? "web" : "rr",
                               {"task" + std::to_string(i)},
                               {*shoal::dns::ParseIp("10.0.1." + std::to_string(i + 1))}});
    }
    return t;
  }();
  return *table;
}

void Check(bool cond) {
  if (!cond) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::dns;
  absl::string_view packet(reinterpret_cast<const char*>(data), size);
  auto m = ParseMessage(packet);
  if (m.ok()) {
    auto wire = BuildMessage(*m);
    Check(wire.ok());
    auto again = ParseMessage(*wire);
    Check(again.ok());
    if (!again->header.tc) {
      Check(again->questions.size() == m->questions.size());
      Check(again->answers.size() == m->answers.size());
    }
  }
  static const std::vector<std::string> nets = {"net"};
  for (bool tcp : {false, true}) {
    QueryContext ctx{&Table(), &nets, size % 2 == 0, tcp, static_cast<uint32_t>(size)};
    Outcome o = AnswerQuery(ctx, packet);
    if (o.action == Outcome::kReply) {
      Check(ParseMessage(o.reply).ok());
      Check(o.reply.size() <= (tcp ? kMaxMessageSize : kOurUdpPayload));
    }
  }
  // Upstream-reply validation reads both packets: any split of the input is a query + reply.
  size_t half = size / 2;
  (void)AnswersQuestion(packet.substr(0, half), packet.substr(half));
  (void)AnswersQuestion(packet, packet);
  return 0;
}
