// What an open gguf::File holds: the mapping (which TensorViews point into) and its header.
#pragma once
#include <string>

#include "edgelm/gguf.hpp"
#include "gguf/header.hpp"
#include "gguf/mapped_file.hpp"

namespace edgelm::gguf {

struct File::Impl {
  std::string path;
  MappedFile map;
  Header header;
};

}  // namespace edgelm::gguf
