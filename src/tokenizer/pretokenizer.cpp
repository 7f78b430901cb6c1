#include "tokenizer/pretokenizer.hpp"

namespace edgelm::tokenizer {

PreTokenizer::PreTokenizer(const PreTokenizerConfig& config) {
  for (const std::string& p : config.patterns) patterns_.emplace_back(p);
}

std::vector<Span> PreTokenizer::split(std::string_view subject) const {
  std::vector<Span> pieces;
  if (subject.empty()) return pieces;
  pieces.push_back({0, subject.size()});
  std::vector<Span> next, matches;
  for (const UnicodeRegex& pattern : patterns_) {
    next.clear();
    for (const Span piece : pieces) {
      matches.clear();
      pattern.find_all(subject.substr(piece.begin, piece.end - piece.begin), matches);
      size_t done = piece.begin;
      for (const Span m : matches) {
        const Span abs{piece.begin + m.begin, piece.begin + m.end};
        if (abs.begin > done) next.push_back({done, abs.begin});  // the gap is a piece too
        next.push_back(abs);
        done = abs.end;
      }
      if (done < piece.end) next.push_back({done, piece.end});
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace edgelm::tokenizer
