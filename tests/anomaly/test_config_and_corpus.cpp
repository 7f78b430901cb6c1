// Detector configuration files and NAB-style folders.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "edgelm/anomaly/detector_config_io.hpp"
#include "edgelm/anomaly/nab_corpus.hpp"
#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace {
namespace fs = std::filesystem;

TEST(DetectorConfigIo, JsonSetsFieldsAndRoundTrips) {
  DetectorConfig c = parse_detector_config(R"({"rest_period": 500, "scale_0": 8, "symbol_bayes_mixture": true})", "c.json");
  EXPECT_EQ(c.rest_period, 500);
  EXPECT_EQ(c.scale[0], 8);
  EXPECT_TRUE(c.symbol.bayes_mixture);
  DetectorConfig d = parse_detector_config(config_to_json(c), "dump");
  EXPECT_EQ(config_to_json(c), config_to_json(d));
}

TEST(DetectorConfigIo, UnknownFieldsAndBadValuesAreErrors) {
  EXPECT_THROW(parse_detector_config(R"({"no_such_field": 1})", "c.json"), Error);
  EXPECT_THROW(parse_detector_config(R"({"rest_period": "long"})", "c.json"), Error);
  EXPECT_THROW(parse_detector_config(R"({"symbol_levels": 99})", "c.json"), Error);
  EXPECT_THROW(parse_detector_config("[1, 2]", "c.json"), Error);
  EXPECT_THROW(parse_detector_config("{", "c.json"), Error);
}

TEST(DetectorConfigIo, Overrides) {
  DetectorConfig c;
  apply_config_override(c, "warmup=10");
  apply_config_override(c, "symbol_bayes_mixture=true");
  EXPECT_EQ(c.warmup, 10);
  EXPECT_TRUE(c.symbol.bayes_mixture);
  EXPECT_THROW(apply_config_override(c, "warmup"), Error);
  EXPECT_THROW(apply_config_override(c, "warmup=ten"), Error);
  EXPECT_THROW(apply_config_override(c, "bogus=1"), Error);
}

TEST(DetectorConfig, ValidateNamesTheBadField) {
  DetectorConfig c;
  EXPECT_EQ(validate(c), nullptr);
  c.scale[0] = 0;
  EXPECT_STREQ(validate(c), "scale entries must be 1..4096");
  c = DetectorConfig{};
  c.symbol.expert_mask = 0;
  EXPECT_NE(validate(c), nullptr);
}

class NabFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("edgelm_nab_test_" + std::to_string(::getpid()));
    fs::create_directories(root_ / "data" / "cat");
    fs::create_directories(root_ / "labels");
    std::ofstream(root_ / "data" / "cat" / "a.csv") << "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  void labels(const std::string& text) { std::ofstream(root_ / "labels" / "combined_windows.json") << text; }
  fs::path root_;
};

TEST_F(NabFolder, LoadsFilesAndWindows) {
  labels(R"({"cat/a.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:05:00.000000"]]})");
  auto corpus = load_nab_corpus(root_.string());
  ASSERT_EQ(corpus.size(), 1u);
  EXPECT_EQ(corpus[0].name, "cat/a.csv");
  EXPECT_EQ(corpus[0].category, "cat");
  ASSERT_EQ(corpus[0].windows.size(), 1u);
  EXPECT_EQ(corpus[0].windows[0].start_ms, corpus[0].series.timestamp_ms[1]);
}

TEST_F(NabFolder, MissingLabelsAreErrors) {
  labels(R"({"cat/other.csv": []})");
  EXPECT_THROW(load_nab_corpus(root_.string()), Error);
  labels(R"({"cat/a.csv": [["2014-01-01 00:05:00"]]})");
  EXPECT_THROW(load_nab_corpus(root_.string()), Error);
  EXPECT_THROW(load_nab_corpus((root_ / "nowhere").string()), Error);
}

}  // namespace
}  // namespace edgelm::anomaly
