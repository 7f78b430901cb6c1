// edgelm::Error — the one exception type thrown at library boundaries.
//
//   try { auto m = edgelm::Model::load("model.gguf"); }
//   catch (const edgelm::Error& e) { std::cerr << "error: " << e.message() << "\n"; return 1; }
#pragma once
#include <stdexcept>
#include <string>

namespace edgelm {

// What went wrong (what()) plus what the user can do about it (hint()). Front ends print
// message() once on one line and exit non-zero; nothing on user input aborts.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const noexcept { return hint_; }
  std::string message() const {
    return hint_.empty() ? std::string(what()) : std::string(what()) + " — " + hint_;
  }

 private:
  std::string hint_;
};

}  // namespace edgelm
