// The training-curve charts: what render() draws where, the PNG file read back with libpng,
// and the errors.
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/plot.hpp"
#include "train/train_support.hpp"

namespace edgelm {
namespace {

constexpr uint32_t kRed = 0xd62728, kGreen = 0x2ca02c;

uint32_t at(const std::vector<uint8_t>& px, int w, int x, int y) {
  const uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
  return static_cast<uint32_t>(p[0]) << 16 | static_cast<uint32_t>(p[1]) << 8 | p[2];
}

// The rows (top to bottom) where column x has the colour, and the columns of row y.
std::vector<int> rows_of(const std::vector<uint8_t>& px, int w, int h, int x, uint32_t rgb) {
  std::vector<int> r;
  for (int y = 0; y < h; ++y)
    if (at(px, w, x, y) == rgb) r.push_back(y);
  return r;
}

double mean(const std::vector<int>& v) {
  double s = 0;
  for (int x : v) s += x;
  return v.empty() ? NAN : s / static_cast<double>(v.size());
}

train::Chart two_lines() {
  train::Chart c{.title = "loss", .x_label = "update", .y_label = "loss"};
  // A falling line y = 10 - x and a constant one, on x in [0, 10].
  train::ChartSeries a{.label = "falling", .rgb = kRed, .width = 1};
  train::ChartSeries b{.label = "flat", .rgb = kGreen, .width = 3};
  for (int x = 0; x <= 10; ++x) {
    a.points.push_back({x, 10.0 - x});
    b.points.push_back({x, 5.0});
  }
  c.series = {a, b};
  return c;
}

TEST(Plot, LinesGoWhereTheirValuesAre) {
  const train::Chart c = two_lines();
  const std::vector<uint8_t> px = train::render(c);
  ASSERT_EQ(px.size(), static_cast<size_t>(c.width) * c.height * 3);
  // In a column in the middle of the plot, the flat line is 3 pixels thick; the falling line
  // crosses it there (x = 5: y = 5), so near it both colours meet, while to the left the
  // falling line is above (smaller row) and to the right below.
  const int left_x = c.width * 3 / 10, right_x = c.width * 7 / 10;
  for (int x : {left_x, right_x}) {
    const auto flat = rows_of(px, c.width, c.height, x, kGreen);
    const auto fall = rows_of(px, c.width, c.height, x, kRed);
    ASSERT_EQ(flat.size(), 3u) << "column " << x;
    ASSERT_FALSE(fall.empty()) << "column " << x;
    if (x == left_x) EXPECT_LT(mean(fall), mean(flat));
    else EXPECT_GT(mean(fall), mean(flat));
  }
  // The flat line is level: the same rows at both columns.
  EXPECT_EQ(rows_of(px, c.width, c.height, left_x, kGreen), rows_of(px, c.width, c.height, right_x, kGreen));
  // Linear axis: the falling line's row moves evenly with x.
  const double r1 = mean(rows_of(px, c.width, c.height, c.width * 4 / 10, kRed));
  const double r2 = mean(rows_of(px, c.width, c.height, c.width * 5 / 10, kRed));
  const double r3 = mean(rows_of(px, c.width, c.height, c.width * 6 / 10, kRed));
  EXPECT_NEAR(r2 - r1, r3 - r2, 2.0);
}

TEST(Plot, LogAxisMakesAnExponentialStraight) {
  train::Chart c{.title = "t", .x_label = "x", .y_label = "y"};
  train::ChartSeries s{.label = "exp", .rgb = kRed, .width = 1};
  for (int x = 0; x <= 10; ++x) s.points.push_back({x, std::pow(10.0, -0.4 * x)});  // 1 .. 1e-4
  c.series = {s};
  auto rows = [&](const std::vector<uint8_t>& px, int frac) {
    return mean(rows_of(px, c.width, c.height, c.width * frac / 10, kRed));
  };
  const std::vector<uint8_t> log_px = train::render(c);  // auto: the ys span 1e4, so log
  const double l1 = rows(log_px, 3), l2 = rows(log_px, 5), l3 = rows(log_px, 7);
  EXPECT_NEAR(l2 - l1, l3 - l2, 2.0) << "straight on a log axis";
  c.y_scale = train::Chart::YScale::kLinear;
  const std::vector<uint8_t> lin_px = train::render(c);
  const double a1 = rows(lin_px, 3), a2 = rows(lin_px, 5), a3 = rows(lin_px, 7);
  EXPECT_GT(a2 - a1, 3 * (a3 - a2)) << "bent on a linear one";
}

TEST(Plot, MarkersAndGapsAndTheLegend) {
  train::Chart c{.title = "t", .x_label = "x", .y_label = "y"};
  train::ChartSeries s{.label = "val", .rgb = kGreen, .markers = true, .width = 0};
  s.points = {{0, 1}, {1, NAN}, {2, 3}};
  c.series = {s};
  const std::vector<uint8_t> px = train::render(c);
  size_t n = 0;
  for (int y = 0; y < c.height; ++y)
    for (int x = 0; x < c.width; ++x) n += at(px, c.width, x, y) == kGreen;
  // Two dots of radius 4 in the plot and one in the legend, no lines: about 3 x 61 pixels.
  EXPECT_GT(n, 3u * 40);
  EXPECT_LT(n, 3u * 90);
}

TEST(Plot, PngFileReadsBackAsTheRenderedPixels) {
  const train::Chart c = two_lines();
  const std::string path = test::temp_path("chart.png");
  train::write_png(c, path);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&img, path.c_str())) << img.message;
  ASSERT_EQ(img.width, static_cast<png_uint_32>(c.width));
  ASSERT_EQ(img.height, static_cast<png_uint_32>(c.height));
  img.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> back(PNG_IMAGE_SIZE(img));
  ASSERT_TRUE(png_image_finish_read(&img, nullptr, back.data(), 0, nullptr)) << img.message;
  EXPECT_TRUE(back == train::render(c));
  std::filesystem::remove(path);
}

TEST(Plot, BadChartsAndPathsAreErrors) {
  train::Chart empty{.title = "t", .x_label = "x", .y_label = "y"};
  EXPECT_THROW(train::render(empty), Error);
  train::Chart c = two_lines();
  c.series[0].points = {{0, NAN}};
  c.series[1].points = {{1, INFINITY}};
  EXPECT_THROW(train::render(c), Error);
  c = two_lines();
  c.width = 10;
  EXPECT_THROW(train::render(c), Error);
  c = two_lines();
  c.y_scale = train::Chart::YScale::kLog;  // the falling line reaches 0
  EXPECT_THROW(train::render(c), Error);
  const std::string bad = "/nonexistent-folder-for-edgelm/chart.png";
  try {
    train::write_png(two_lines(), bad);
    FAIL() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgelm
