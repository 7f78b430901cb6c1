// Reading sensor series from CSV (`timestamp,value`), one row at a time, with one-line errors
// that name the source and line.
//
//   std::ifstream in("cpu.csv");
//   edgelm::anomaly::CsvSampleReader reader(in, "cpu.csv");
//   while (auto s = reader.next()) detector.update(s->timestamp_ms, s->value);
//
// Accepted timestamps: `YYYY-MM-DD HH:MM:SS[.fff]` (also with `T`), or epoch seconds (may be
// fractional). A header line is optional; when present, the columns named `timestamp` and
// `value` are used, otherwise columns 1 and 2. Timestamps must not go backwards (repeats are
// allowed) unless the reader is told to accept it: NAB's own files contain a clock step back.
#pragma once
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::anomaly {

struct CsvSample {
  int64_t timestamp_ms = 0;
  float value = 0.0f;
  std::string timestamp_text;  // as written in the file, echoed back by the CLI
  std::string value_text;      // likewise
  long line = 0;               // 1-based line number in the source
};

// Parses `YYYY-MM-DD HH:MM:SS[.fraction]` / `...THH:MM:SS` (UTC) or epoch seconds into
// milliseconds since 1970. Returns nullopt when the text is neither.
std::optional<int64_t> parse_timestamp_ms(std::string_view text);

class CsvSampleReader {
 public:
  // `source` names the input in error messages ("-" reads as "<stdin>").
  CsvSampleReader(std::istream& in, std::string source, bool allow_backward_time = false);

  // The next data row, or nullopt at end of input. Throws edgelm::Error
  // ("cpu.csv:12: value 'abc' is not a number") on a malformed row.
  std::optional<CsvSample> next();

 private:
  [[noreturn]] void fail(const std::string& what) const;
  bool try_header(const std::vector<std::string_view>& cells);

  std::istream& in_;
  std::string source_;
  std::string line_text_;
  long line_ = 0;
  bool first_row_ = true;
  size_t timestamp_col_ = 0;
  size_t value_col_ = 1;
  size_t min_columns_ = 2;
  bool allow_backward_time_ = false;
  int64_t last_timestamp_ms_ = INT64_MIN;
  long last_timestamp_line_ = 0;
};

// Whole-file convenience used by the NAB runner and tests.
struct Series {
  std::vector<int64_t> timestamp_ms;
  std::vector<float> value;
  std::vector<std::string> timestamp_text;
};
Series read_series_csv(std::istream& in, const std::string& source, bool allow_backward_time = false);
Series read_series_csv_file(const std::string& path, bool allow_backward_time = false);

}  // namespace edgelm::anomaly
