#include "base/log.h"

#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"

namespace shoal::base {
namespace {

TEST(LogTest, ParsesLevels) {
  EXPECT_EQ(*ParseLogLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(*ParseLogLevel("WARNING"), spdlog::level::warn);
  EXPECT_EQ(*ParseLogLevel("error"), spdlog::level::err);
  auto bad = ParseLogLevel("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("loud"), std::string::npos);
}

TEST(LogTest, InitRejectsUnknownLevel) {
  EXPECT_FALSE(InitLogging("chatty").ok());
}

TEST(LogTest, ComponentLoggerWritesThroughDefaultSinksWithItsName) {
  ASSERT_TRUE(InitLogging("info").ok());
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::default_logger()->sinks().push_back(sink);
  auto logger = Logger("netdrv-test");
  logger->info("hello {}", 42);
  logger->debug("hidden");
  logger->flush();
  std::string text = out.str();
  EXPECT_NE(text.find("netdrv-test"), std::string::npos) << text;
  EXPECT_NE(text.find("hello 42"), std::string::npos) << text;
  EXPECT_EQ(text.find("hidden"), std::string::npos) << text;
  EXPECT_EQ(Logger("netdrv-test"), logger);  // same component, same logger
  spdlog::default_logger()->sinks().pop_back();
  spdlog::drop("netdrv-test");
}

}  // namespace
}  // namespace shoal::base
