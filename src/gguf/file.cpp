// gguf::File: opening, header accessors and tensor views. Typed metadata getters live in
// metadata_getters.cpp.
#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "gguf/file_impl.hpp"
#include "gguf/printable.hpp"

namespace edgelm::gguf {

File File::open(const std::string& path) {
  MappedFile map(path);
  Header header = parse_header(path, map.data(), map.size());
  return File(std::make_unique<Impl>(Impl{path, std::move(map), std::move(header)}));
}

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

const std::string& File::path() const { return impl_->path; }
uint32_t File::version() const { return impl_->header.version; }
uint64_t File::alignment() const { return impl_->header.alignment; }
uint64_t File::file_size() const { return impl_->map.size(); }

bool File::has(std::string_view key) const { return find(key) != nullptr; }

const Value* File::find(std::string_view key) const {
  const Header& h = impl_->header;
  auto it = h.key_index.find(key);
  return it == h.key_index.end() ? nullptr : &h.values[it->second];
}

const std::vector<std::string>& File::keys() const { return impl_->header.keys; }

const std::vector<TensorInfo>& File::tensors() const { return impl_->header.tensors; }

const TensorInfo* File::find_tensor(std::string_view name) const {
  const Header& h = impl_->header;
  auto it = h.tensor_index.find(name);
  return it == h.tensor_index.end() ? nullptr : &h.tensors[it->second];
}

TensorView File::tensor(std::string_view name) const {
  const TensorInfo* info = find_tensor(name);
  if (info == nullptr) {
    throw Error(impl_->path + ": tensor '" + printable(name) + "' not found",
                "the file does not match the expected model architecture; check that it is the "
                "right model");
  }
  return view(*info);
}

void File::release_pages() const { impl_->map.release_pages(); }

TensorView File::view(const TensorInfo& info) const {
  // `info` normally comes from tensors(), which open() already checked; one built by the caller
  // (or taken from another file) is checked here so a view never points outside the mapping.
  const uint64_t size = impl_->map.size();
  const uint64_t start = impl_->header.data_offset;
  const bool inside = start <= size && info.offset <= size - start &&
                      info.nbytes <= size - start - info.offset;
  if (!inside) {
    throw Error(impl_->path + ": tensor '" + printable(info.name) +
                    "' does not lie inside this file's data section",
                "pass a TensorInfo obtained from this file's tensors()");
  }
  TensorView v;
  v.name = info.name;
  v.type = info.type;
  v.n_dims = info.n_dims;
  v.ne = info.ne;
  v.data = impl_->map.data() + start + info.offset;
  v.nbytes = info.nbytes;
  return v;
}

}  // namespace edgelm::gguf
