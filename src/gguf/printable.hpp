// Text from a file, made safe to put inside a one-line error message.
#pragma once
#include <string>
#include <string_view>

namespace edgelm::gguf {

// Replaces control and non-ASCII bytes with \xNN and shortens long text with "...", so a
// hostile key or tensor name can neither break the line nor flood the terminal.
std::string printable(std::string_view text);

}  // namespace edgelm::gguf
