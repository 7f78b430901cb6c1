#include <gtest/gtest.h>

#include "server/stop_matcher.hpp"

namespace edgelm::server {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out;
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m;
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
  EXPECT_FALSE(m.matched());
}

TEST(StopMatcher, HoldsBackAPossibleStartAndReleasesItWhenItDiverges) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.push("Hello\n"), "Hello");
  EXPECT_EQ(m.push("World"), "\nWorld");
  EXPECT_FALSE(m.matched());
}

TEST(StopMatcher, StopSplitAcrossPiecesEndsTheOutputBeforeIt) {
  StopMatcher m({"END"});
  EXPECT_EQ(feed(m, {"one E", "N", "D two"}), "one ");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"xyz", "b"});
  EXPECT_EQ(m.push("a b xyz"), "a ");
  EXPECT_TRUE(m.matched());
}

TEST(StopMatcher, FlushReturnsAHeldTailWhenGenerationEnds) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("abc ST"), "abc ");
  EXPECT_EQ(m.flush(), "ST");
}

TEST(StopMatcher, LongestPossiblePrefixIsHeld) {
  StopMatcher m({"aab"});
  EXPECT_EQ(m.push("xaa"), "x");   // "aa" could start "aab"
  EXPECT_EQ(m.push("a"), "a");     // "aaa": only the last "aa" can still start it
  EXPECT_EQ(m.push("b"), "");
  EXPECT_TRUE(m.matched());
}

TEST(StopMatcher, MultiByteTextIsNeverSplitInsideACharacter) {
  StopMatcher m({"é!"});
  const std::string out = m.push("café");
  EXPECT_EQ(out, "caf");           // "é" (two bytes) is held whole
  EXPECT_EQ(m.push("?"), "é?");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  StopMatcher m({""});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_FALSE(m.matched());
}

}  // namespace
}  // namespace edgelm::server
