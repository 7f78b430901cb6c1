// Line charts written as PNG files (libpng): the training curves of `edgelm finetune --plot`
// and `edgelm train-classifier --plot`. No fonts or plotting library needed: the labels use a
// built-in 5x7 bitmap font.
//
//   edgelm::train::Chart c{.title = "SmolLM2 LoRA r16", .x_label = "update", .y_label = "loss"};
//   c.series.push_back({.label = "train", .rgb = 0x1f77b4, .points = {{1, 2.3}, {2, 1.9}}});
//   c.series.push_back({.label = "validation", .rgb = 0xff7f0e, .markers = true, .points = {{2, 2.0}}});
//   edgelm::train::write_png(c, "loss.png");
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace edgelm::train {

struct ChartSeries {
  std::string label;
  uint32_t rgb = 0x1f77b4;
  bool markers = false;  // a dot at each point (for a few points, e.g. validations)
  int width = 2;         // line width in pixels (0: markers only)
  std::vector<std::pair<double, double>> points{};  // (x, y); a non-finite y leaves a gap
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series{};
  int width = 900, height = 540;  // pixels
  // Logarithmic y axis: "auto" picks it when all ys are positive and span more than 20x.
  enum class YScale { kAuto, kLinear, kLog } y_scale = YScale::kAuto;
};

// Renders an RGB image (width x height, 3 bytes per pixel, row-major from the top). Throws
// edgelm::Error for a chart with no finite point or a size outside 200..8000 pixels.
std::vector<uint8_t> render(const Chart& c);
// render() written as a PNG, atomically (a temporary file renamed into place). Throws
// edgelm::Error naming the path when it cannot be written.
void write_png(const Chart& c, const std::string& path);

}  // namespace edgelm::train
