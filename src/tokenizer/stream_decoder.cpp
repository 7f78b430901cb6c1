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
  pending_.erase(0, tokenizer::append_valid_utf8(pending_, out, /*hold_incomplete=*/true));
  return out;
}

std::string TokenStreamDecoder::flush() {
  if (pending_.empty()) return {};
  pending_.clear();
  return std::string(kReplacement);
}

}  // namespace edgelm
