// Logging over spdlog.
//
// InitLogging() configures the process-wide default logger once at start (daemon/CLI main);
// libraries take a component logger from Logger("netdrv") and never configure sinks.
// spdlog loggers are thread-safe (the _mt sinks are used).
#pragma once

#include <memory>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "spdlog/spdlog.h"

namespace shoal::base {

enum class LogFormat { kText, kJson };

// Parses "trace|debug|info|warn|warning|error|critical|off" (case-insensitive).
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(absl::string_view level);

// Sends logs to stderr in `format` at `level`. Returns InvalidArgument for an unknown level.
absl::Status InitLogging(absl::string_view level, LogFormat format = LogFormat::kText);

// A logger named `component` that shares the default logger's sinks and level.
std::shared_ptr<spdlog::logger> Logger(absl::string_view component);

}  // namespace shoal::base
