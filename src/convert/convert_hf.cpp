// convert_hf: map the checkpoint's tensors and metadata into a float GGUF next to the output
// (the source's own 16- or 32-bit types; norms and changed tensors as F32), then let
// quant::quantize_file write the asked type from it atomically, so that every type edgelm
// quantize writes is available here with the same mixes.
#include <filesystem>
#include <fstream>

#include "convert/hf_families.hpp"
#include "convert/hf_tokenizer.hpp"
#include "convert/safetensors.hpp"
#include "edgelm/convert.hpp"
#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::convert {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Removes the intermediate file however convert_hf ends.
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

}  // namespace

ConvertReport convert_hf(const std::string& hf_dir, const std::string& out_gguf, const ConvertOptions& o) {
  const auto ftype = quant::file_type_from_name(o.type);
  if (!ftype) throw Error("unknown output type '" + o.type + "'", "choose one of " + quant::supported_file_types());
  if (!fs::is_directory(hf_dir))
    throw Error(hf_dir + ": not a directory", "pass the folder of a Hugging Face checkpoint (config.json, tokenizer.json, *.safetensors)");
  const fs::path dir(hf_dir), config_path = dir / "config.json";
  json config;
  {
    std::ifstream in(config_path);
    if (!in) throw Error(config_path.string() + ": cannot open", "a Hugging Face checkpoint directory holds config.json");
    try {
      config = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(config_path.string() + ": not valid JSON (" + e.what() + ")", "download or save config.json again");
    }
  }
  const Checkpoint ck = Checkpoint::open(hf_dir);
  gguf::Writer w;
  FamilyPlan plan;
  try {
    plan = plan_family(config, config_path.string(), ck, w);
  } catch (const json::exception& e) {
    throw Error(config_path.string() + ": unexpected structure (" + e.what() + ")", "fix config.json or save the checkpoint again");
  }
  std::string name = fs::path(hf_dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(hf_dir).lexically_normal().parent_path().filename().string();
  w.set_string("general.name", name);
  TokenizerSummary tok;
  try {
    tok = write_tokenizer_metadata(hf_dir, config, plan.n_vocab, w);
  } catch (const json::exception& e) {  // a value of an unexpected JSON type somewhere
    throw Error((dir / "tokenizer.json").string() + " or tokenizer_config.json: unexpected structure (" + e.what() + ")",
                "edgelm convert reads tokenizer files saved by the tokenizers library");
  }

  std::vector<std::vector<std::byte>> owned;
  owned.reserve(plan.tensors.size());
  DType widest = DType::F16;
  for (const TensorMapping& m : plan.tensors) {
    const SafetensorsTensor& t = *m.src;
    const DType dt = t.float_type(ck.file_of(t.name));
    if (dt == DType::F32) widest = DType::F32;
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
    if (t.shape.size() == 1 || m.op == TensorOp::kPlusOne) {
      const int64_t n = t.numel();
      auto& buf = owned.emplace_back(static_cast<size_t>(n) * 4);
      float* v = reinterpret_cast<float*>(buf.data());
      kernels::reference_ops(dt)->to_float(t.data, v, n);
      if (m.op == TensorOp::kPlusOne)
        for (int64_t i = 0; i < n; ++i) v[i] += 1.0f;
      w.add_tensor_ref(m.name, DType::F32, ne, buf.data(), buf.size());
    } else if (m.op == TensorOp::kPermuteRope) {
      auto& buf = owned.emplace_back(t.nbytes);
      permute_rope_rows(t.data, buf.data(), t.shape[0], t.nbytes / t.shape[0], m.rope_heads, false);
      w.add_tensor_ref(m.name, dt, ne, buf.data(), buf.size());
    } else {
      w.add_tensor_ref(m.name, dt, ne, t.data, t.nbytes);
    }
  }
  w.set_u32("general.file_type", quant::llama_ftype_id(widest == DType::F32 ? quant::FileType::F32 : quant::FileType::F16));
  const RemoveOnExit staging{out_gguf + ".convert.tmp.gguf"};
  if (o.on_progress) {
    static const std::string kReading = "(reading the checkpoint)";
    o.on_progress({0, plan.tensors.size(), &kReading});
  }
  w.write(staging.path);
  owned.clear();

  quant::QuantizeOptions qo;
  qo.file_type = *ftype;
  qo.n_threads = o.n_threads;
  qo.on_note = o.on_note;
  if (o.on_progress)
    qo.on_progress = [&](const quant::QuantizeProgress& p) { o.on_progress({p.tensors_done, p.tensors_total, p.current}); };
  const quant::QuantizeReport qr = quant::quantize_file(staging.path, out_gguf, qo);
  ConvertReport r;
  r.arch = plan.arch;
  r.tokenizer_model = tok.model;
  r.tokenizer_pre = tok.pre;
  r.n_tensors = qr.tensors.size();
  r.file_bytes = qr.file_out;
  return r;
}

}  // namespace edgelm::convert
