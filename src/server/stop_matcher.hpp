// Stop strings for streamed text: text that could still turn into a stop string is held back
// until the next piece decides it, so a client never sees part of a stop string.
//
//   StopMatcher m({"\n\n"});
//   out += m.push("Hello\n");   // "Hello" (the "\n" waits)
//   out += m.push("\nWorld");   // "" and m.matched() is true
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops = {});
  // Adds text and returns what can be shown now. After a match, returns the text before the
  // stop string and ignores everything later.
  std::string push(std::string_view text);
  // The text still held back (at the end of generation, when no stop string can complete).
  std::string flush();
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool matched_ = false;
};

}  // namespace edgelm::server
