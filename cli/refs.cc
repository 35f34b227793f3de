#include "cli/refs.h"

#include <cstdio>

namespace shoal::cli {

std::string JsonArray(const std::vector<std::string>& docs) {
  std::string out = "[\n";
  for (size_t i = 0; i < docs.size(); ++i) {
    out += docs[i];
    out += i + 1 < docs.size() ? ",\n" : "\n";
  }
  return out + "]\n";
}

int ForEachRef(const Client& c, const std::vector<std::string>& refs, RefOutput output,
               const std::function<grpc::Status(const std::string& ref, std::string* doc)>& call) {
  const bool json = output == RefOutput::kJsonArray;
  int rc = 0;
  std::vector<std::string> docs;
  for (const auto& ref : refs) {
    std::string doc;
    grpc::Status s = call(ref, &doc);
    if (!s.ok()) {
      rc = c.Fail(s);
      if (json) return rc;
      continue;
    }
    if (json) {
      docs.push_back(std::move(doc));
    } else {
      std::printf("%s\n", ref.c_str());
    }
  }
  if (json) std::fputs(JsonArray(docs).c_str(), stdout);
  return rc;
}

}  // namespace shoal::cli
