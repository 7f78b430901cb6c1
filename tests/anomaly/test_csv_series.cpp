// CSV reading: what is accepted, and that every malformed row is reported with its line.
#include <gtest/gtest.h>

#include <sstream>

#include "edgelm/anomaly/csv_series.hpp"
#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace {

Series read(const std::string& text, bool allow_backward = false) {
  std::istringstream in(text);
  return read_series_csv(in, "test.csv", allow_backward);
}

std::string error_of(const std::string& text) {
  try {
    read(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CsvSeries, ParsesNabStyleFile) {
  Series s = read("timestamp,value\n2014-04-01 00:00:00,20.5\n2014-04-01 00:05:00,21\n");
  ASSERT_EQ(s.value.size(), 2u);
  EXPECT_EQ(s.timestamp_ms[1] - s.timestamp_ms[0], 300000);
  EXPECT_FLOAT_EQ(s.value[0], 20.5f);
  EXPECT_EQ(s.timestamp_text[1], "2014-04-01 00:05:00");
}

TEST(CsvSeries, TimestampFormats) {
  EXPECT_EQ(*parse_timestamp_ms("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(*parse_timestamp_ms("1970-01-02T00:00:01.250"), 86401250);
  EXPECT_EQ(*parse_timestamp_ms("2000-03-01 00:00:00"), 951868800000LL);  // after a leap day
  EXPECT_EQ(*parse_timestamp_ms("1396310400"), 1396310400000LL);
  EXPECT_EQ(*parse_timestamp_ms("12.5"), 12500);
  EXPECT_FALSE(parse_timestamp_ms("yesterday"));
  EXPECT_FALSE(parse_timestamp_ms("2014-13-01 00:00:00"));
  EXPECT_FALSE(parse_timestamp_ms(""));
}

TEST(CsvSeries, HeaderIsOptionalAndColumnsAreFoundByName) {
  Series a = read("0,1\n60,2\n");
  EXPECT_EQ(a.value.size(), 2u);
  Series b = read("value,timestamp,extra\r\n3,2014-04-01 00:00:00,x\r\n\r\n4,2014-04-01 00:01:00,y\r\n");
  ASSERT_EQ(b.value.size(), 2u);
  EXPECT_FLOAT_EQ(b.value[1], 4.0f);
  Series c = read("\"timestamp\",\"value\"\n\"2014-04-01 00:00:00\",\"7\"\n");
  EXPECT_FLOAT_EQ(c.value[0], 7.0f);
}

TEST(CsvSeries, MissingColumnNamesTheLine) {
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00\n"),
            "test.csv:3: expected 2 columns (timestamp,value), found 1");
}

TEST(CsvSeries, EmptyValueNamesTheLine) {
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:00:00,\n"), "test.csv:2: missing value");
}

TEST(CsvSeries, NonNumericValueNamesTheLine) {
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n"),
            "test.csv:3: value 'abc' is not a finite number");
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:00:00,nan\n"), "test.csv:2: value 'nan' is not a finite number");
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:00:00,1.5x\n"), "test.csv:2: value '1.5x' is not a finite number");
}

TEST(CsvSeries, BadTimestampNamesTheLine) {
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:00:00,1\nnoon,2\n"),
            "test.csv:3: timestamp 'noon' is neither YYYY-MM-DD HH:MM:SS nor epoch seconds");
}

TEST(CsvSeries, UnsortedTimestampsNameBothLines) {
  EXPECT_EQ(error_of("timestamp,value\n2014-04-01 00:10:00,1\n\n2014-04-01 00:05:00,2\n"),
            "test.csv:4: timestamp '2014-04-01 00:05:00' is earlier than the one on line 2 "
            "(rows must be sorted by time)");
  // Repeated timestamps are not out of order; a step back is accepted when asked for.
  EXPECT_EQ(read("0,1\n0,2\n").value.size(), 2u);
  EXPECT_EQ(read("60,1\n0,2\n", /*allow_backward=*/true).value.size(), 2u);
}

TEST(CsvSeries, HeaderWithoutTheColumnsIsAnError) {
  EXPECT_EQ(error_of("time,reading\n1,2\n"), "test.csv:1: header must name a 'timestamp' column, found 'time,reading'");
  EXPECT_EQ(error_of("timestamp\n1\n"), "test.csv:1: header 'timestamp' names no value column besides 'timestamp'");
  EXPECT_EQ(error_of("1\n2\n"), "test.csv:1: expected a timestamp and at least one value column, found 1 column");
}

// Reads every row of a (possibly multi-column) CSV with the streaming reader.
std::vector<CsvSample> read_rows(const std::string& text) {
  std::istringstream in(text);
  CsvSampleReader r(in, "test.csv");
  std::vector<CsvSample> rows;
  while (auto s = r.next()) rows.push_back(*s);
  return rows;
}

std::string row_error_of(const std::string& text) {
  try {
    read_rows(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CsvSeries, SeveralValueColumnsAreChannels) {
  std::istringstream in("timestamp,temp,pressure\n2014-04-01 00:00:00,20.5,1013\n2014-04-01 00:05:00,20.6,1012\n");
  CsvSampleReader r(in, "dev.csv");
  ASSERT_TRUE(r.read_columns());
  EXPECT_EQ(r.channels(), 2);
  EXPECT_EQ(r.value_names(), (std::vector<std::string>{"temp", "pressure"}));
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->channels, 2);
  EXPECT_FLOAT_EQ(a->values[0], 20.5f);
  EXPECT_FLOAT_EQ(a->values[1], 1013.0f);
  EXPECT_EQ(a->value_text, "20.5,1013");
  // Without a header: the first column is the time, the others are values.
  auto rows = read_rows("0,1,2,3\n60,4,5,6\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].channels, 3);
  EXPECT_FLOAT_EQ(rows[1].values[2], 6.0f);
  // The timestamp column may be anywhere.
  rows = read_rows("a,timestamp,b\n1,0,2\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FLOAT_EQ(rows[0].values[0], 1.0f);
  EXPECT_FLOAT_EQ(rows[0].values[1], 2.0f);
}

TEST(CsvSeries, BadMultiColumnFilesNameTheProblem) {
  EXPECT_EQ(row_error_of("timestamp,a,b\n0,1,2\n60,3\n"), "test.csv:3: expected 3 columns (timestamp,a,b), found 2");
  EXPECT_EQ(row_error_of("timestamp,a,b\n0,1,2\n60,3,4,5\n"), "test.csv:3: expected 3 columns (timestamp,a,b), found 4");
  EXPECT_EQ(row_error_of("0,1,2\n60,3\n"), "test.csv:2: expected 3 columns (timestamp,value1,value2), found 2");
  EXPECT_EQ(row_error_of("timestamp,a,b\n0,1,x\n"), "test.csv:2: value 'x' in column 'b' is not a finite number");
  EXPECT_EQ(row_error_of("timestamp,a,b\n0,,1\n"), "test.csv:2: missing value in column 'a'");
  EXPECT_EQ(row_error_of("timestamp,a,b,c,d\n0,1,2,3,4\n"),
            "test.csv:1: 4 value columns; the detector takes at most 3");
  // A one-series reader refuses several value columns instead of taking the first.
  EXPECT_NE(error_of("timestamp,a,b\n0,1,2\n").find("2 value columns where one series has one"), std::string::npos);
}

TEST(CsvSeries, ErrorMessageIncludesAHint) {
  try {
    read("0,x\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_FALSE(e.hint().empty());
    EXPECT_EQ(e.message().find('\n'), std::string::npos);  // one line
  }
}

TEST(CsvSeries, StreamingReaderReturnsRowsOneAtATime) {
  std::istringstream in("timestamp,value\n0,1\n60,2\n");
  CsvSampleReader r(in, "-");
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->line, 2);
  EXPECT_EQ(a->value_text, "1");
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->timestamp_ms, 60000);
  EXPECT_FALSE(r.next());
}

TEST(CsvSeries, StdinIsNamedInErrors) {
  std::istringstream in("0,1\n0,bad\n");
  CsvSampleReader r(in, "-");
  r.next();
  try {
    r.next();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "<stdin>:2: value 'bad' is not a finite number");
  }
}

}  // namespace
}  // namespace edgelm::anomaly
