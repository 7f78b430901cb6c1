// CSV reading for sensor series: strict about what it accepts so that a bad row is reported
// with its line number instead of silently becoming a zero.
#include "edgelm/anomaly/csv_series.hpp"

#include <charconv>
#include <cmath>
#include <fstream>

#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '"' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_cells(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  for (;;) {
    size_t comma = line.find(',', start);
    cells.push_back(trim(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return cells;
    start = comma + 1;
  }
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// Reads exactly `digits` decimal digits at `pos`.
bool read_digits(std::string_view s, size_t pos, int digits, int& out) {
  if (pos + digits > s.size()) return false;
  out = 0;
  for (int i = 0; i < digits; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic: 400-year cycles).
int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<int64_t> parse_timestamp_ms(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  // Date-time form: YYYY-MM-DD[ T]HH:MM:SS[.fff...]
  int y, mo, d, h, mi, se;
  if (text.size() >= 19 && text[4] == '-' && text[7] == '-' && (text[10] == ' ' || text[10] == 'T') &&
      text[13] == ':' && text[16] == ':' && read_digits(text, 0, 4, y) && read_digits(text, 5, 2, mo) &&
      read_digits(text, 8, 2, d) && read_digits(text, 11, 2, h) && read_digits(text, 14, 2, mi) &&
      read_digits(text, 17, 2, se)) {
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
    int64_t ms = 0;
    std::string_view rest = text.substr(19);
    if (!rest.empty() && rest.back() == 'Z') rest.remove_suffix(1);
    if (!rest.empty()) {
      if (rest[0] != '.' || rest.size() < 2) return std::nullopt;
      int scale = 100;
      for (size_t i = 1; i < rest.size(); ++i) {
        if (rest[i] < '0' || rest[i] > '9') return std::nullopt;
        ms += (rest[i] - '0') * scale;
        scale /= 10;
      }
    }
    return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000 + ms;
  }
  // Epoch seconds.
  auto v = parse_double(text);
  if (!v || !std::isfinite(*v) || std::fabs(*v) > 9.0e15) return std::nullopt;
  return static_cast<int64_t>(std::llround(*v * 1000.0));
}

CsvSampleReader::CsvSampleReader(std::istream& in, std::string source, bool allow_backward_time)
    : in_(in), source_(source == "-" ? "<stdin>" : std::move(source)), allow_backward_time_(allow_backward_time) {}

void CsvSampleReader::fail(const std::string& what) const {
  throw Error(source_ + ":" + std::to_string(line_) + ": " + what,
              "each row must be `timestamp,value` with increasing timestamps");
}

bool CsvSampleReader::try_header(const std::vector<std::string_view>& cells) {
  // A first row whose first cell is not a timestamp is a header naming the columns.
  if (parse_timestamp_ms(cells[0])) return false;
  bool have_t = false, have_v = false;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (equals_ignore_case(cells[i], "timestamp")) timestamp_col_ = i, have_t = true;
    if (equals_ignore_case(cells[i], "value")) value_col_ = i, have_v = true;
  }
  if (!have_t || !have_v)
    fail("header must name a 'timestamp' and a 'value' column, found '" + line_text_ + "'");
  min_columns_ = std::max(timestamp_col_, value_col_) + 1;
  return true;
}

std::optional<CsvSample> CsvSampleReader::next() {
  while (std::getline(in_, line_text_)) {
    ++line_;
    if (!line_text_.empty() && line_text_.back() == '\r') line_text_.pop_back();
    if (trim(line_text_).empty()) continue;
    auto cells = split_cells(line_text_);
    if (first_row_) {
      first_row_ = false;
      if (try_header(cells)) continue;
    }
    if (cells.size() < min_columns_)
      fail("expected " + std::to_string(min_columns_) + " columns (timestamp,value), found " +
           std::to_string(cells.size()));
    std::string_view t_text = cells[timestamp_col_];
    std::string_view v_text = cells[value_col_];
    auto t = parse_timestamp_ms(t_text);
    if (!t) fail("timestamp '" + std::string(t_text) + "' is neither YYYY-MM-DD HH:MM:SS nor epoch seconds");
    auto v = parse_double(v_text);
    if (v_text.empty()) fail("missing value");
    if (!v || !std::isfinite(*v)) fail("value '" + std::string(v_text) + "' is not a finite number");
    if (*t < last_timestamp_ms_ && !allow_backward_time_)
      fail("timestamp '" + std::string(t_text) + "' is earlier than the one on line " +
           std::to_string(last_timestamp_line_) + " (rows must be sorted by time)");
    last_timestamp_ms_ = *t;
    last_timestamp_line_ = line_;
    return CsvSample{*t, static_cast<float>(*v), std::string(t_text), std::string(v_text), line_};
  }
  if (in_.bad()) fail("read error");
  return std::nullopt;
}

Series read_series_csv(std::istream& in, const std::string& source, bool allow_backward_time) {
  Series s;
  CsvSampleReader reader(in, source, allow_backward_time);
  while (auto row = reader.next()) {
    s.timestamp_ms.push_back(row->timestamp_ms);
    s.value.push_back(row->value);
    s.timestamp_text.push_back(std::move(row->timestamp_text));
  }
  return s;
}

Series read_series_csv_file(const std::string& path, bool allow_backward_time) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open '" + path + "'", "check the path and permissions");
  return read_series_csv(in, path, allow_backward_time);
}

}  // namespace edgelm::anomaly
