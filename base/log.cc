#include "base/log.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace shoal::base {

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(absl::string_view level) {
  const std::string l = absl::AsciiStrToLower(level);
  if (l == "trace") return spdlog::level::trace;
  if (l == "debug") return spdlog::level::debug;
  if (l == "info") return spdlog::level::info;
  if (l == "warn" || l == "warning") return spdlog::level::warn;
  if (l == "error") return spdlog::level::err;
  if (l == "critical" || l == "fatal") return spdlog::level::critical;
  if (l == "off") return spdlog::level::off;
  return absl::InvalidArgumentError(absl::StrCat(
      "log level: unknown level '", level, "' (want trace, debug, info, warn, error, critical or off)"));
}

absl::Status InitLogging(absl::string_view level, LogFormat format) {
  auto parsed = ParseLogLevel(level);
  if (!parsed.ok()) return parsed.status();
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("shoal", sink);
  if (format == LogFormat::kJson) {
    // One JSON object per line; %v is the message, escaped minimally by callers' text.
    logger->set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %n: %v");
  }
  logger->set_level(*parsed);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Logger(absl::string_view component) {
  std::string name(component);
  if (auto existing = spdlog::get(name)) return existing;
  auto parent = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(name, parent->sinks().begin(),
                                                 parent->sinks().end());
  logger->set_level(parent->level());
  // register_logger throws if a concurrent caller registered the same name first.
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    if (auto existing = spdlog::get(name)) return existing;
  }
  return logger;
}

}  // namespace shoal::base
