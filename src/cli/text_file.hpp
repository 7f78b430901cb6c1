// Reads a whole text file for the commands that take -f TEXT; clear errors, bounded size.
#pragma once
#include <fstream>
#include <sstream>
#include <string>

#include "edgelm/error.hpp"

namespace edgelm::cli {

inline std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open text file '" + path + "'", "check the path given to -f");
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  if (size < 0 || size > (1LL << 30)) throw Error("text file '" + path + "' is not a readable file under 1 GiB");
  f.seekg(0);
  std::string s(static_cast<size_t>(size), '\0');
  f.read(s.data(), size);
  if (!f) throw Error("cannot read text file '" + path + "'");
  return s;
}

}  // namespace edgelm::cli
