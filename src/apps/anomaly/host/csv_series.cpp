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
              "each row is `timestamp,value` or `timestamp,v1,v2,...` (as many cells as the header), "
              "sorted by time");
}

bool CsvSampleReader::try_header(const std::vector<std::string_view>& cells) {
  // A first row whose first cell is not a timestamp is a header naming the columns.
  if (parse_timestamp_ms(cells[0])) return false;
  bool have_t = false;
  size_t named_value = cells.size();
  for (size_t i = 0; i < cells.size(); ++i) {
    if (equals_ignore_case(cells[i], "timestamp") && !have_t) timestamp_col_ = i, have_t = true;
    if (equals_ignore_case(cells[i], "value") && named_value == cells.size()) named_value = i;
  }
  if (!have_t) fail("header must name a 'timestamp' column, found '" + line_text_ + "'");
  if (named_value < cells.size()) {
    value_cols_ = {named_value};
  } else {
    for (size_t i = 0; i < cells.size(); ++i)
      if (i != timestamp_col_) value_cols_.push_back(i);
  }
  if (value_cols_.empty()) fail("header '" + line_text_ + "' names no value column besides 'timestamp'");
  for (size_t c : value_cols_) value_names_.emplace_back(cells[c]);
  columns_ = cells.size();
  return true;
}

bool CsvSampleReader::next_line() {
  while (std::getline(in_, line_text_)) {
    ++line_;
    if (!line_text_.empty() && line_text_.back() == '\r') line_text_.pop_back();
    if (!trim(line_text_).empty()) return true;
  }
  if (in_.bad()) fail("read error");
  return false;
}

bool CsvSampleReader::read_columns() {
  if (columns_known_) return true;
  if (!next_line()) return false;
  columns_known_ = true;
  const auto cells = split_cells(line_text_);
  if (try_header(cells)) return true;
  // No header: column 1 is the time, every other column a value.
  if (cells.size() < 2) fail("expected a timestamp and at least one value column, found 1 column");
  for (size_t i = 1; i < cells.size(); ++i) value_cols_.push_back(i);
  for (size_t i = 1; i < cells.size(); ++i)
    value_names_.push_back(cells.size() == 2 ? "value" : "value" + std::to_string(i));
  columns_ = cells.size();
  pending_row_ = true;
  return true;
}

std::string CsvSampleReader::expected_columns() const {
  std::string names;
  for (size_t i = 0; i < columns_; ++i) {
    if (i) names += ",";
    if (i == timestamp_col_) {
      names += "timestamp";
    } else {
      size_t k = 0;
      while (k < value_cols_.size() && value_cols_[k] != i) ++k;
      names += k < value_cols_.size() ? value_names_[k] : "...";
    }
  }
  return std::to_string(columns_) + " columns (" + names + ")";
}

std::optional<CsvSample> CsvSampleReader::next() {
  if (!read_columns()) return std::nullopt;
  if (value_cols_.size() > static_cast<size_t>(kMaxChannels))
    fail(std::to_string(value_cols_.size()) + " value columns; the detector takes at most " +
         std::to_string(kMaxChannels));
  if (pending_row_) {
    pending_row_ = false;
  } else if (!next_line()) {
    return std::nullopt;
  }
  const auto cells = split_cells(line_text_);
  if (cells.size() != columns_)
    fail("expected " + expected_columns() + ", found " + std::to_string(cells.size()));
  std::string_view t_text = cells[timestamp_col_];
  auto t = parse_timestamp_ms(t_text);
  if (!t) fail("timestamp '" + std::string(t_text) + "' is neither YYYY-MM-DD HH:MM:SS nor epoch seconds");
  CsvSample out;
  out.timestamp_ms = *t;
  out.channels = static_cast<int>(value_cols_.size());
  for (size_t k = 0; k < value_cols_.size(); ++k) {
    std::string_view v_text = cells[value_cols_[k]];
    const std::string which = value_cols_.size() > 1 ? " in column '" + value_names_[k] + "'" : "";
    if (v_text.empty()) fail("missing value" + which);
    auto v = parse_double(v_text);
    if (!v || !std::isfinite(*v)) fail("value '" + std::string(v_text) + "'" + which + " is not a finite number");
    out.values[k] = static_cast<float>(*v);
    if (k) out.value_text += ",";
    out.value_text += v_text;
  }
  out.value = out.values[0];
  if (*t < last_timestamp_ms_ && !allow_backward_time_)
    fail("timestamp '" + std::string(t_text) + "' is earlier than the one on line " +
         std::to_string(last_timestamp_line_) + " (rows must be sorted by time)");
  last_timestamp_ms_ = *t;
  last_timestamp_line_ = line_;
  out.timestamp_text = std::string(t_text);
  out.line = line_;
  return out;
}

Series read_series_csv(std::istream& in, const std::string& source, bool allow_backward_time) {
  Series s;
  CsvSampleReader reader(in, source, allow_backward_time);
  if (reader.read_columns() && reader.channels() != 1)
    throw Error((source == "-" ? std::string("<stdin>") : source) + ": " + std::to_string(reader.channels()) +
                    " value columns where one series has one",
                "name the series' column 'value' in the header");
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
