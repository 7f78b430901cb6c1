// Reading sensor series from CSV (`timestamp,value` or `timestamp,v1,v2,...`), one row at a
// time, with one-line errors that name the source and line.
//
//   std::ifstream in("cpu.csv");
//   edgelm::anomaly::CsvSampleReader reader(in, "cpu.csv");
//   while (auto s = reader.next()) detector.update(s->timestamp_ms, s->values);
//
// Accepted timestamps: `YYYY-MM-DD HH:MM:SS[.fff]` (also with `T`), or epoch seconds (may be
// fractional). A header line is optional. With a header, the column named `timestamp` is the
// time; the value columns are the column named `value` if there is one, otherwise every other
// column (several sensors of one device, up to kMaxChannels). Without a header, column 1 is
// the time and every other column a value. Every row must have as many cells as the header (or
// the first row). Timestamps must not go backwards (repeats are allowed) unless the reader is
// told to accept it: NAB's own files contain a clock step back.
#pragma once
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/anomaly/detector.hpp"

namespace edgelm::anomaly {

struct CsvSample {
  int64_t timestamp_ms = 0;
  float value = 0.0f;               // the first value column (values[0])
  float values[kMaxChannels] = {};  // every value column, in file order
  int channels = 1;                 // how many of values[] are set
  std::string timestamp_text;       // as written in the file, echoed back by the CLI
  std::string value_text;           // likewise: the value cells joined with ','
  long line = 0;                    // 1-based line number in the source
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

  // Reads up to the first row (consuming a header) so that the columns are known before any
  // sample is returned; returns false on an empty input. next() calls it as needed.
  bool read_columns();
  // Number of value columns and their names (from the header, else "value" / "value1"...).
  int channels() const { return static_cast<int>(value_cols_.size()); }
  const std::vector<std::string>& value_names() const { return value_names_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  bool try_header(const std::vector<std::string_view>& cells);
  bool next_line();  // the next non-blank line into line_text_; false at end of input
  std::string expected_columns() const;

  std::istream& in_;
  std::string source_;
  std::string line_text_;
  long line_ = 0;
  bool columns_known_ = false;
  bool pending_row_ = false;  // line_text_ holds the first data row, not yet returned
  size_t timestamp_col_ = 0;
  std::vector<size_t> value_cols_;
  std::vector<std::string> value_names_;
  size_t columns_ = 2;        // cells every row must have
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
