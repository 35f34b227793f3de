// The loop of the commands that take several references (inspect, rm of nodes, services,
// networks, secrets, configs) and what it prints, as the docker CLI does.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cli/client.h"

namespace shoal::cli {

// docker inspect's output: the documents as one JSON array, "[\n<doc>,\n<doc>\n]\n"
// ("[\n]\n" for none).
std::string JsonArray(const std::vector<std::string>& docs);

enum class RefOutput {
  kJsonArray,  // inspect: all documents as one JsonArray; the first error ends the command
  kRefs,       // rm: each reference that succeeded on its own line; errors do not stop the loop
};

// Runs `call(ref, &doc)` for each of `refs` in order and prints per `output` to stdout. Errors
// are reported with c.Fail (stderr). Returns the exit status: 0, or 1 when a call failed.
int ForEachRef(const Client& c, const std::vector<std::string>& refs, RefOutput output,
               const std::function<grpc::Status(const std::string& ref, std::string* doc)>& call);

}  // namespace shoal::cli
