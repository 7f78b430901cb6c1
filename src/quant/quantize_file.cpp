// quantize_file: read a GGUF, convert every tensor to its planned type, write the result
// atomically. A tensor already in its target type is copied unchanged; any other is widened to
// float (dequantized, if it was quantized) and quantized row by row, rows split over threads.
#include <algorithm>
#include <thread>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"

namespace edgelm::quant {
namespace {

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

bool can_write(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

}  // namespace

QuantizeReport quantize_file(const std::string& in_path, const std::string& out_path,
                             const QuantizeOptions& o) {
  const gguf::File in = gguf::File::open(in_path);
  QuantizeReport r;
  r.file_in = in.file_size();
  r.tensors = plan_quantization(in, o, &r.notes);

  for (const auto& p : r.tensors) {
    if (!can_write(p.to))
      throw Error("cannot write tensor '" + p.name + "' as " + std::string(dtype_name(p.to)),
                  "choose one of F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K");
    if (p.to != p.from) {
      const kernels::TypeOps* ops = kernels::reference_ops(p.from);
      if (!ops || !ops->to_float)
        throw Error(in_path + ": tensor '" + p.name + "' has type " + std::string(dtype_name(p.from)) +
                        ", which edgelm cannot convert",
                    "convert the model from its original weights (F16/F32 GGUF) instead");
      if (!is_float_type(p.from) && !r.requantized) {
        r.requantized = true;
        r.notes.push_back("the input is already quantized (e.g. " + p.name + " is " +
                          std::string(dtype_name(p.from)) +
                          "): dequantizing to F32 first, so the result cannot be better than the input");
      }
    }
  }
  int missing_imatrix = 0;
  std::string first_missing;
  if (o.imatrix) {
    for (const auto& p : r.tensors) {
      if (p.to == p.from || !uses_importance(p.to)) continue;
      const std::vector<float>* w = o.imatrix->find(p.name);
      const gguf::TensorInfo* t = in.find_tensor(p.name);
      if (!w) {
        if (missing_imatrix++ == 0) first_missing = p.name;
      } else if (static_cast<int64_t>(w->size()) != t->ne[0]) {
        throw Error("the importance matrix has " + std::to_string(w->size()) + " values for '" + p.name +
                        "', whose rows have " + std::to_string(t->ne[0]),
                    "the imatrix was made for another model; run 'edgelm imatrix' on this one");
      }
    }
    if (missing_imatrix)
      r.notes.push_back(std::to_string(missing_imatrix) + " tensor(s) have no importance data (e.g. " +
                        first_missing + "): quantized without it");
  }
  if (o.on_note)
    for (const auto& n : r.notes) o.on_note(n);

  gguf::Writer w;
  w.set_alignment(in.alignment());
  w.copy_metadata(in);
  w.set_u32("general.file_type", llama_ftype_id(o.file_type));
  bool any_quantized = false;
  for (const auto& p : r.tensors) any_quantized |= dtype_traits(p.to).quantized;
  if (any_quantized) w.set_u32("general.quantization_version", 2);
  else w.remove("general.quantization_version");
  if (o.imatrix) {
    w.set_i32("quantize.imatrix.entries_count", static_cast<int32_t>(o.imatrix->size()));
    w.set_i32("quantize.imatrix.chunks_count", o.imatrix->chunks());
  } else {
    w.remove("quantize.imatrix.entries_count");
    w.remove("quantize.imatrix.chunks_count");
    w.remove("quantize.imatrix.file");
    w.remove("quantize.imatrix.dataset");
  }

  const int n_threads = o.n_threads > 0 ? o.n_threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  kernels::ThreadPool pool(n_threads);
  uint64_t total_elems = 0, done_elems = 0;
  for (const auto& t : in.tensors()) total_elems += static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);

  std::vector<std::byte> out;
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    const TensorPlan& p = r.tensors[i];
    const gguf::TensorInfo& t = in.tensors()[i];
    const TensorView v = in.view(t);
    const std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + std::max(1, t.n_dims));
    if (o.on_progress) o.on_progress({i, r.tensors.size(), done_elems, total_elems, &p.name});
    if (p.to == p.from) {
      w.add_tensor(t.name, t.type, ne, v.data, v.nbytes);
    } else {
      const int64_t ncols = t.ne[0], nrows = v.nrows();
      const size_t in_row = row_size(p.from, ncols), out_row = row_size(p.to, ncols);
      out.assign(out_row * static_cast<size_t>(nrows), std::byte{0});
      const float* imp = nullptr;
      if (o.imatrix && uses_importance(p.to))
        if (const auto* wv = o.imatrix->find(p.name)) imp = wv->data();
      const kernels::TypeOps* from = kernels::reference_ops(p.from);
      pool.run([&](int ith, int nth) {
        auto [r0, r1] = kernels::split_range(nrows, ith, nth);
        std::vector<float> row(static_cast<size_t>(ncols));
        for (int64_t rr = r0; rr < r1; ++rr) {
          from->to_float(v.data + rr * in_row, row.data(), ncols);
          quantize_row(p.to, row.data(), out.data() + rr * out_row, ncols, imp);
        }
      });
      w.add_tensor(t.name, p.to, ne, out.data(), out.size());
    }
    r.bytes_in += p.bytes_in;
    r.bytes_out += p.bytes_out;
    done_elems += static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
  }
  if (o.on_progress) {
    static const std::string kWriting = "(writing)";
    o.on_progress({r.tensors.size(), r.tensors.size(), done_elems, total_elems, &kWriting});
  }
  w.write(out_path);
  const gguf::File check = gguf::File::open(out_path);  // proves the result reads back
  r.file_out = check.file_size();
  return r;
}

}  // namespace edgelm::quant
