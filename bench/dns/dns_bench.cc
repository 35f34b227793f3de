// CPU cost of answering one query from a table of 10k services (no sockets).
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "dns/answer.h"

namespace shoal::dns {
namespace {

void BM_AnswerQuery(benchmark::State& state) {
  RecordTable table;
  for (int i = 0; i < 10000; ++i) {
    (void)table.SetService("net", {absl::StrCat("svc-", i),
                                   {},
                                   {*ParseIp(absl::StrCat("10.1.", i / 256, ".", i % 256))},
                                   false,
                                   {}});
  }
  Message q;
  q.header.id = 1;
  q.questions.push_back({"svc-4242", kTypeA, kClassIn});
  std::string packet = *BuildMessage(q);
  std::vector<std::string> nets = {"net"};
  QueryContext ctx{&table, &nets, false, false, 0};
  for (auto _ : state) benchmark::DoNotOptimize(AnswerQuery(ctx, packet));
}
BENCHMARK(BM_AnswerQuery);

void BM_ParseMessage(benchmark::State& state) {
  Message q;
  q.questions.push_back({"tasks.some-service.network", kTypeA, kClassIn});
  q.edns = Edns{1232, 0, false, ""};
  std::string packet = *BuildMessage(q);
  for (auto _ : state) benchmark::DoNotOptimize(ParseMessage(packet));
}
BENCHMARK(BM_ParseMessage);

}  // namespace
}  // namespace shoal::dns
