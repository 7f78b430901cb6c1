// Reads a whole text file for the commands that take -f TEXT; clear errors, bounded size.
#pragma once
#include <fstream>
#include <sstream>
#include <string>

#include "edgelm/error.hpp"

namespace edgelm::cli {

// Reads in blocks, so that a pipe or a device works too, and stops with an error past
// max_bytes (a device such as /dev/zero never ends). `what` names the file in messages.
inline std::string read_text_file(const std::string& path, size_t max_bytes = size_t{1} << 30,
                                  const std::string& what = "text file") {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + what + " '" + path + "'", "check the path given to -f");
  std::string s;
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    s.append(buf, static_cast<size_t>(f.gcount()));
    if (s.size() > max_bytes)
      throw Error(what + " '" + path + "' is larger than " + std::to_string(max_bytes >> 20) + " MiB",
                  "pass a smaller file");
  }
  if (f.bad()) throw Error("cannot read " + what + " '" + path + "'");
  return s;
}

}  // namespace edgelm::cli
