// TokenStreamDecoder: pieces go into a pending buffer; every complete character leaves it at
// once, an incomplete one at the end waits for the next piece.
#include "edgelm/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace edgelm {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

}  // namespace

std::string TokenStreamDecoder::push(int32_t id) {
  pending_ += tok_->token_to_piece(id, special_);
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    const tokenizer::Utf8Scan scan = tokenizer::scan_utf8(pending_, pos);
    if (scan.status == tokenizer::Utf8Status::Incomplete) break;  // wait for the rest
    if (scan.status == tokenizer::Utf8Status::Complete) {
      out.append(pending_, pos, scan.length);
    } else {
      out += kReplacement;
    }
    pos += scan.length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string TokenStreamDecoder::flush() {
  if (pending_.empty()) return {};
  pending_.clear();
  return std::string(kReplacement);
}

}  // namespace edgelm
