// Line charts as PNG: a small rasterizer (lines, dots, a 5x7 bitmap font) and libpng.
#include "edgelm/plot.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <limits>

#include "edgelm/error.hpp"
#include "gguf/atomic_file_writer.hpp"

namespace edgelm::train {
namespace {

// 5x7 glyphs on 9 rows (two for the descenders of g, j, p, q, y), one byte per row from the
// top, bit 4 the leftmost pixel. Characters without a glyph are drawn as '?'.
struct Glyph {
  char ch;
  uint8_t rows[9];
};
constexpr Glyph kFont[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00, 0x00}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00, 0x00, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08, 0x00, 0x00}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c, 0x00, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00, 0x00, 0x00}},
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e, 0x00, 0x00}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f, 0x00, 0x00}},
    {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e, 0x00, 0x00}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02, 0x00, 0x00}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e, 0x00, 0x00}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e, 0x00, 0x00}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00, 0x00}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e, 0x00, 0x00}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c, 0x00, 0x00}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00, 0x00, 0x00}},
    {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00}},
    {'?', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00, 0x00}},
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e, 0x00, 0x00}},
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e, 0x00, 0x00}},
    {'D', {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c, 0x00, 0x00}},
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f, 0x00, 0x00}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10, 0x00, 0x00}},
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f, 0x00, 0x00}},
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c, 0x00, 0x00}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00, 0x00}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f, 0x00, 0x00}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00, 0x00}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10, 0x00, 0x00}},
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d, 0x00, 0x00}},
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11, 0x00, 0x00}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e, 0x00, 0x00}},
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00, 0x00}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a, 0x00, 0x00}},
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11, 0x00, 0x00}},
    {'Y', {0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x00, 0x00}},
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00}},
    {'a', {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f, 0x00, 0x00}},
    {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e, 0x00, 0x00}},
    {'c', {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e, 0x00, 0x00}},
    {'d', {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f, 0x00, 0x00}},
    {'e', {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e, 0x00, 0x00}},
    {'f', {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08, 0x00, 0x00}},
    {'g', {0x00, 0x00, 0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e}},
    {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'i', {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}},
    {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00, 0x00}},
    {'l', {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}},
    {'m', {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11, 0x00, 0x00}},
    {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'o', {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00}},
    {'p', {0x00, 0x00, 0x1e, 0x11, 0x11, 0x11, 0x1e, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x01}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00}},
    {'s', {0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e, 0x00, 0x00}},
    {'t', {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d, 0x00, 0x00}},
    {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00, 0x00}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a, 0x00, 0x00}},
    {'x', {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x00, 0x00}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e}},
    {'z', {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f, 0x00, 0x00}},
};

const uint8_t* glyph(char ch) {
  for (const Glyph& g : kFont)
    if (g.ch == ch) return g.rows;
  for (const Glyph& g : kFont)
    if (g.ch == '?') return g.rows;
  return nullptr;
}

constexpr int kScale = 2;                    // font pixels per glyph pixel
constexpr int kAdvance = 6 * kScale;         // glyph width plus one column of space
constexpr int kTextHeight = 7 * kScale;     // above the baseline; descenders reach 2 rows below

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }
  std::vector<uint8_t>& pixels() { return px_; }

  void set(int x, int y, uint32_t rgb) {
    if (x < clip_x0_ || y < clip_y0_ || x >= clip_x1_ || y >= clip_y1_) return;
    uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
    p[0] = static_cast<uint8_t>(rgb >> 16);
    p[1] = static_cast<uint8_t>(rgb >> 8);
    p[2] = static_cast<uint8_t>(rgb);
  }
  void clip(int x0, int y0, int x1, int y1) { clip_x0_ = x0, clip_y0_ = y0, clip_x1_ = x1, clip_y1_ = y1; }
  void unclip() { clip(0, 0, w_, h_); }

  void fill(int x0, int y0, int x1, int y1, uint32_t rgb) {
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) set(x, y, rgb);
  }
  void dot(int cx, int cy, int r, uint32_t rgb) {
    for (int dy = -r; dy <= r; ++dy)
      for (int dx = -r; dx <= r; ++dx)
        if (dx * dx + dy * dy <= r * r + r) set(cx + dx, cy + dy, rgb);
  }
  // A line `width` pixels wide (Bresenham, a square stamp per step).
  void line(int x0, int y0, int x1, int y1, int width, uint32_t rgb) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    const int lo = -(width - 1) / 2, hi = width / 2;
    int err = dx + dy;
    for (;;) {
      for (int oy = lo; oy <= hi; ++oy)
        for (int ox = lo; ox <= hi; ++ox) set(x0 + ox, y0 + oy, rgb);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  // Text with its top-left corner at (x, y); `vertical` runs it upwards from (x, y) as its
  // bottom-left corner (a y-axis label).
  void text(int x, int y, const std::string& s, uint32_t rgb, bool vertical = false) {
    int pos = 0;
    for (char ch : s) {
      const uint8_t* g = glyph(ch);
      for (int r = 0; r < 9; ++r)
        for (int c = 0; c < 5; ++c)
          if (g[r] & (0x10 >> c))
            for (int a = 0; a < kScale; ++a)
              for (int b = 0; b < kScale; ++b) {
                const int gx = pos + c * kScale + b, gy = r * kScale + a;
                if (vertical) set(x + gy, y - gx, rgb);
                else set(x + gx, y + gy, rgb);
              }
      pos += kAdvance;
    }
  }
  static int text_width(const std::string& s) { return static_cast<int>(s.size()) * kAdvance - kScale; }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
  int clip_x0_ = 0, clip_y0_ = 0, clip_x1_ = std::numeric_limits<int>::max(), clip_y1_ = std::numeric_limits<int>::max();
};

std::string tick_label(double v, double step) {
  char buf[32];
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e5 || a < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 6), v);
  }
  return buf;
}

// About `n` round ticks (1, 2 or 5 times a power of ten apart) within [lo, hi].
std::vector<double> linear_ticks(double lo, double hi, int n, double* step_out) {
  const double raw = (hi - lo) / n;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  *step_out = step;
  return t;
}

// 1, 2 and 5 times the powers of ten within [lo, hi] (only the powers when that gives too many).
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  for (int pass = 0; pass < 2; ++pass) {
    t.clear();
    for (int d = static_cast<int>(std::floor(std::log10(lo))); d <= static_cast<int>(std::ceil(std::log10(hi))); ++d)
      for (int k : {1, 2, 5}) {
        if (pass == 1 && k != 1) continue;
        const double v = k * std::pow(10.0, d);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
      }
    if (t.size() <= 12) break;
  }
  return t;
}

void png_write_to_vector(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

// libpng reports errors by longjmp: only plain data is live across the setjmp.
bool encode_png(const uint8_t* rgb, int w, int h, std::vector<uint8_t>* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    return false;
  }
  png_set_write_fn(png, out, png_write_to_vector, nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; ++y) png_write_row(png, const_cast<png_bytep>(rgb + static_cast<size_t>(y) * w * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::vector<uint8_t> render(const Chart& c) {
  if (c.width < 200 || c.height < 200 || c.width > 8000 || c.height > 8000)
    throw Error("a chart of " + std::to_string(c.width) + " x " + std::to_string(c.height) +
                " pixels is outside 200..8000 on a side");
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  bool all_positive = true;
  for (const ChartSeries& s : c.series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
      all_positive = all_positive && y > 0;
    }
  if (!(x_lo <= x_hi)) throw Error("nothing to plot: the chart has no finite point");
  const bool log_y = c.y_scale == Chart::YScale::kLog ? all_positive
                     : c.y_scale == Chart::YScale::kAuto ? all_positive && y_hi > 20 * y_lo
                                                          : false;
  if (c.y_scale == Chart::YScale::kLog && !all_positive) throw Error("a logarithmic axis needs positive values");
  if (x_lo == x_hi) x_lo -= 1, x_hi += 1;
  // Axis ranges with a margin; a log axis works on log10(y).
  auto fy = [&](double y) { return log_y ? std::log10(y) : y; };
  double a_lo = fy(y_lo), a_hi = fy(y_hi);
  if (a_lo == a_hi) {
    const double d = log_y ? 0.5 : std::max(std::abs(a_lo) * 0.1, 0.5);
    a_lo -= d, a_hi += d;
  }
  const double pad = (a_hi - a_lo) * 0.05;
  a_lo -= pad, a_hi += pad;

  double y_step = 0, x_step = 0;
  const std::vector<double> y_ticks = log_y ? log_ticks(std::pow(10.0, a_lo), std::pow(10.0, a_hi))
                                            : linear_ticks(a_lo, a_hi, 6, &y_step);
  const std::vector<double> x_ticks = linear_ticks(x_lo, x_hi, 8, &x_step);
  std::vector<std::string> y_labels;
  int label_w = 0;
  for (double v : y_ticks) {
    y_labels.push_back(log_y ? tick_label(v, v) : tick_label(v, y_step));
    label_w = std::max(label_w, Canvas::text_width(y_labels.back()));
  }

  Canvas cv(c.width, c.height);
  const int left = 16 + kTextHeight + 12 + label_w + 8, right = c.width - 24;
  const int top = 20 + kTextHeight + 16, bottom = c.height - (16 + 2 * kTextHeight + 16);
  if (right - left < 50 || bottom - top < 50) throw Error("the chart is too small for its labels");
  auto px = [&](double x) { return left + static_cast<int>(std::lround((x - x_lo) / (x_hi - x_lo) * (right - left))); };
  auto py = [&](double y) { return bottom - static_cast<int>(std::lround((fy(y) - a_lo) / (a_hi - a_lo) * (bottom - top))); };

  constexpr uint32_t kGrid = 0xe6e6e6, kAxis = 0x404040, kText = 0x202020;
  for (size_t i = 0; i < y_ticks.size(); ++i) {
    const int y = py(y_ticks[i]);
    cv.line(left, y, right, y, 1, kGrid);
    cv.text(left - 8 - Canvas::text_width(y_labels[i]), y - kTextHeight / 2, y_labels[i], kText);
  }
  for (double v : x_ticks) {
    const int x = px(v);
    cv.line(x, top, x, bottom, 1, kGrid);
    const std::string l = tick_label(v, x_step);
    cv.text(x - Canvas::text_width(l) / 2, bottom + 8, l, kText);
  }
  cv.line(left, top, left, bottom, 1, kAxis);
  cv.line(left, bottom, right, bottom, 1, kAxis);
  cv.line(left, top, right, top, 1, kAxis);
  cv.line(right, top, right, bottom, 1, kAxis);
  cv.text((left + right - Canvas::text_width(c.title)) / 2, 20, c.title, kText);
  cv.text((left + right - Canvas::text_width(c.x_label)) / 2, bottom + 16 + kTextHeight, c.x_label, kText);
  const std::string y_label = log_y ? c.y_label + " (log)" : c.y_label;
  cv.text(16, (top + bottom + Canvas::text_width(y_label)) / 2, y_label, kText, /*vertical=*/true);

  cv.clip(left + 1, top + 1, right, bottom);
  for (const ChartSeries& s : c.series) {
    bool have = false;
    int lx = 0, ly = 0;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        have = false;  // a gap
        continue;
      }
      const int X = px(x), Y = py(y);
      if (have && s.width > 0) cv.line(lx, ly, X, Y, s.width, s.rgb);
      if (s.markers) cv.dot(X, Y, 4, s.rgb);
      lx = X, ly = Y, have = true;
    }
  }
  // The legend, top right inside the plot.
  int legend_w = 0;
  for (const ChartSeries& s : c.series) legend_w = std::max(legend_w, Canvas::text_width(s.label));
  const int lx0 = right - 12 - legend_w - 40, row = kTextHeight + 8;
  int ly0 = top + 12;
  if (!c.series.empty()) {
    cv.fill(lx0 - 8, ly0 - 6, right - 6, ly0 + row * static_cast<int>(c.series.size()) - 2, 0xffffff);
    for (const ChartSeries& s : c.series) {
      const int mid = ly0 + kTextHeight / 2;
      if (s.width > 0) cv.line(lx0, mid, lx0 + 28, mid, std::max(s.width, 2), s.rgb);
      if (s.markers) cv.dot(lx0 + 14, mid, 4, s.rgb);
      cv.text(lx0 + 40, ly0, s.label, kText);
      ly0 += row;
    }
  }
  cv.unclip();
  return std::move(cv.pixels());
}

void write_png(const Chart& c, const std::string& path) {
  const std::vector<uint8_t> rgb = render(c);
  std::vector<uint8_t> png;
  if (!encode_png(rgb.data(), c.width, c.height, &png)) throw Error("cannot encode the chart " + path + " as PNG");
  gguf::AtomicFileWriter f(path);
  f.write(png.data(), png.size());
  f.commit();
}

}  // namespace edgelm::train
