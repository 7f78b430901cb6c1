#include "convert/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"
#include "gguf/atomic_file_writer.hpp"

namespace edgelm::convert {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Element sizes of every dtype the format defines; convert reads the float ones.
int dtype_size(const std::string& d) {
  static const std::map<std::string, int, std::less<>> kSizes{
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},   {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto it = kSizes.find(d);
  return it == kSizes.end() ? 0 : it->second;
}

Error bad(const std::string& path, const std::string& what) {
  return Error(path + ": " + what, "the safetensors file is damaged or not a safetensors file; download or save it again");
}

}  // namespace

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

DType SafetensorsTensor::float_type(const std::string& file) const {
  if (dtype == "F32") return DType::F32;
  if (dtype == "F16") return DType::F16;
  if (dtype == "BF16") return DType::BF16;
  throw Error(file + ": tensor '" + name + "' has dtype " + dtype, "edgelm convert reads F32, F16 and BF16 weights");
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.map_ = std::make_shared<gguf::MappedFile>(path);
  const uint64_t size = f.map_->size();
  const std::byte* base = f.map_->data();
  if (size < 8) throw bad(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = hlen << 8 | static_cast<uint8_t>(base[i]);
  if (hlen < 2 || hlen > size - 8)
    throw bad(path, "header length " + std::to_string(hlen) + " does not fit in a file of " + std::to_string(size) + " bytes");
  if (hlen > kMaxSafetensorsHeader)
    throw bad(path, "header length " + std::to_string(hlen) + " is over the 100 MiB limit");
  const char* hp = reinterpret_cast<const char*>(base + 8);
  json h;
  try {
    h = json::parse(hp, hp + hlen);
  } catch (const json::exception& e) {
    throw bad(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!h.is_object()) throw bad(path, "header is not a JSON object");
  const uint64_t data_size = size - 8 - hlen;
  const std::byte* data = base + 8 + hlen;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const json& e = it.value();
    if (name == "__metadata__") {
      if (!e.is_object()) throw bad(path, "__metadata__ is not an object");
      for (auto m = e.begin(); m != e.end(); ++m) {
        if (!m.value().is_string()) throw bad(path, "__metadata__ value '" + m.key() + "' is not a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw bad(path, where + " lacks dtype, shape or data_offsets");
    if (!e["dtype"].is_string()) throw bad(path, where + ": dtype is not a string");
    SafetensorsTensor t;
    t.name = name;
    t.dtype = e["dtype"].get<std::string>();
    const int esize = dtype_size(t.dtype);
    if (esize == 0) throw bad(path, where + " has unknown dtype '" + t.dtype + "'");
    const json& shape = e["shape"];
    if (!shape.is_array() || shape.size() > 8) throw bad(path, where + ": shape is not an array of at most 8 sizes");
    uint64_t n = 1;
    for (const json& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40))
        throw bad(path, where + ": shape holds something other than a size up to 2^40");
      const uint64_t v = d.get<uint64_t>();
      if (v != 0 && n > (1ull << 62) / v) throw bad(path, where + ": shape's element count overflows");
      n *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad(path, where + ": data_offsets is not a pair of offsets");
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_size)
      throw bad(path, where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                          ") lie outside the " + std::to_string(data_size) + " data bytes");
    if (n > (1ull << 62) / static_cast<uint64_t>(esize) || n * static_cast<uint64_t>(esize) != en - b)
      throw bad(path, where + ": shape x " + t.dtype + " is " + std::to_string(n * esize) + " bytes but data_offsets span " +
                          std::to_string(en - b));
    t.data = data + b;
    t.nbytes = en - b;
    f.tensors_.push_back(std::move(t));
  }
  // Ranges must not overlap (empty tensors take no room).
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& t : f.tensors_) if (t.nbytes) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->data + by_offset[i - 1]->nbytes > by_offset[i]->data)
      throw bad(path, "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
  return f;
}

Checkpoint Checkpoint::open(const std::string& dir) {
  Checkpoint c;
  std::vector<std::string> files;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  json weight_map;
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(index.string() + ": not valid JSON (" + e.what() + ")", "save the checkpoint again");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": no \"weight_map\" object", "save the checkpoint again");
    weight_map = j["weight_map"];
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
      if (!it.value().is_string()) throw Error(index.string() + ": weight_map value of '" + it.key() + "' is not a file name");
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        throw Error(index.string() + ": shard '" + file + "' is not a file name in the checkpoint directory");
      if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
    }
    for (const auto& f : files)
      if (!fs::exists(fs::path(dir) / f))
        throw Error(index.string() + " names shard '" + f + "', which is missing", "download the whole checkpoint");
  } else if (fs::is_directory(dir)) {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
  }
  if (files.empty())
    throw Error(dir + ": no *.safetensors weights", "edgelm convert reads checkpoints saved with safetensors (save_pretrained's default)");
  c.files_.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    c.files_.push_back(SafetensorsFile::open((fs::path(dir) / files[i]).string()));
    for (const auto& t : c.files_.back().tensors()) {
      if (!weight_map.is_null() && (!weight_map.contains(t.name) || weight_map[t.name] != files[i])) continue;
      if (c.by_name_.count(t.name))
        throw Error(dir + ": tensor '" + t.name + "' is in both " + c.files_[c.by_name_[t.name].second].path() + " and " +
                    c.files_.back().path(), "remove the stale file from the checkpoint directory");
      c.by_name_[t.name] = {&t, i};
    }
  }
  if (!weight_map.is_null())
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it)
      if (!c.by_name_.count(it.key()))
        throw Error(index.string() + ": tensor '" + it.key() + "' is not in its shard " + it.value().get<std::string>(),
                    "download the whole checkpoint again");
  for (const auto& [name, v] : c.by_name_) c.order_.push_back(v.first);
  return c;
}

const SafetensorsTensor* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.first;
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  return files_[by_name_.at(name).second].path();
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors) {
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (const auto& t : tensors) {
    const uint64_t n = t.data.size() * 4;
    h[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8) hs += ' ';  // data starts 8-byte aligned
  gguf::AtomicFileWriter w(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(hs.size()) >> (8 * i));
  w.write(len, 8);
  w.write(hs.data(), hs.size());
  // nlohmann::json orders keys by name; the offsets above follow `tensors`' order, which the
  // header records, so the data is written in that same order.
  for (const auto& t : tensors) w.write(t.data.data(), t.data.size() * 4);
  w.commit();
}

}  // namespace edgelm::convert
