// Quantization toolkit: make a smaller model file, and measure what it cost.
//
//   edgelm::quant::QuantizeOptions o;
//   o.file_type = *edgelm::quant::file_type_from_name("Q4_K_M");
//   auto report = edgelm::quant::quantize_file("in.gguf", "out.gguf", o);   // atomic write
//
//   auto model = edgelm::Model::load("out.gguf");
//   auto ppl = edgelm::quant::perplexity(model, text, {.n_ctx = 512});      // ppl.ppl, ppl.stderr_ppl
//
//   auto im = edgelm::quant::compute_imatrix(model, text, {.n_ctx = 512});  // calibration
//   im.save("model.imatrix");                                              // then --imatrix
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/gguf.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/tensor.hpp"

namespace edgelm::quant {

// ---------------------------------------------------------------------------------------------
// File types ("mixes"): a base tensor type plus rules that keep sensitive tensors higher.

enum class FileType { F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q4_K_M, Q4_0, Q4_1, Q3_K_M, Q2_K };

std::optional<FileType> file_type_from_name(std::string_view name);  // case-insensitive
std::string_view file_type_name(FileType t);
std::string supported_file_types();   // "F32, F16, ..." for error messages
DType base_type(FileType t);
uint32_t llama_ftype_id(FileType t);  // the general.file_type value llama.cpp writes
std::optional<FileType> file_type_from_llama_id(uint32_t id);  // nullopt for a type not listed above

// The role of a tensor, as the mixes and the size summary group them.
std::string tensor_class(std::string_view name);  // "attn_v", "ffn_down", "token_embd", "norm" ...

// ---------------------------------------------------------------------------------------------
// Importance matrix: mean squared activation per input column of every matrix.

class ImportanceMatrix {
 public:
  // Adds n_tokens rows of n_cols activations that multiply `weight_name`.
  void add(const std::string& weight_name, const float* x, int64_t n_tokens, int64_t n_cols);
  // Per-column means (sum of squares / count), or nullptr if the matrix was never seen.
  const std::vector<float>* find(std::string_view weight_name) const;
  size_t size() const { return stats_.size(); }
  int chunks() const { return chunks_; }
  void set_chunks(int n) { chunks_ = n; }
  void set_dataset(std::string name) { dataset_ = std::move(name); }
  // GGUF file in llama.cpp's imatrix layout: per matrix "<name>.in_sum2" (F32, n_cols) and
  // "<name>.counts" (F32, 1), plus imatrix.chunk_count / imatrix.chunk_size / imatrix.datasets.
  void save(const std::string& path, int chunk_size) const;
  static ImportanceMatrix load(const std::string& path);  // throws edgelm::Error if invalid

 private:
  struct Stat {
    std::vector<double> sum2;
    int64_t count = 0;
    std::vector<float> mean;  // filled by finalize()
  };
  void finalize();
  std::map<std::string, Stat, std::less<>> stats_;
  int chunks_ = 0;
  std::string dataset_;
};

using MatmulInputHook = ::edgelm::MatmulInputHook;

// Runs the model's forward pass on `tokens` (one sequence from position 0, one batch) and
// reports every matrix input to `hook` (SessionOptions::on_matmul_input). Returns the logits of
// the last token (n_vocab floats).
std::vector<float> collect_matmul_inputs(const Model& model, std::span<const int32_t> tokens,
                                         const MatmulInputHook& hook, int n_threads = 0);

struct ImatrixOptions {
  int n_ctx = 512;
  int n_chunks = -1;   // -1: all chunks of the text
  int n_threads = 0;
  std::function<void(int done, int total)> on_chunk;  // progress
};
ImportanceMatrix compute_imatrix(const Model& model, std::string_view text, const ImatrixOptions& o);

// Quantizes one row of n values to `type`, weighting each element's rounding error by
// importance[i] (a row of the importance matrix) the way llama.cpp does; importance == nullptr
// gives the plain reference quantizer (byte-identical with llama.cpp's). Types without an
// importance-aware quantizer (F32, F16, BF16, Q8_0) ignore the weights.
void quantize_row(DType type, const float* x, void* dst, int64_t n, const float* importance);
bool uses_importance(DType type);

// ---------------------------------------------------------------------------------------------
// quantize

struct TypeOverride {
  std::string glob;  // shell-style pattern over tensor names: '*' any run, '?' one character
  DType type;
};

struct TensorPlan {
  std::string name;
  std::string klass;      // tensor_class(name)
  DType from, to;
  std::string reason;     // why `to` differs from the base type ("" if it does not)
  uint64_t bytes_in = 0, bytes_out = 0;
};

struct QuantizeProgress {
  size_t tensors_done, tensors_total;
  uint64_t elements_done, elements_total;
  const std::string* current;
};

struct QuantizeOptions {
  FileType file_type = FileType::Q8_0;
  std::vector<TypeOverride> keep{};
  const ImportanceMatrix* imatrix = nullptr;
  int n_threads = 0;  // 0: all hardware threads
  std::function<void(const QuantizeProgress&)> on_progress{};
  std::function<void(const std::string&)> on_note{};  // fallbacks, requantization, imatrix gaps
};

struct QuantizeReport {
  std::vector<TensorPlan> tensors;
  uint64_t bytes_in = 0, bytes_out = 0;     // tensor data
  uint64_t file_in = 0, file_out = 0;       // whole files
  bool requantized = false;                  // the input had quantized tensors
  std::vector<std::string> notes;
};

// Decides the output type of every tensor without converting anything.
std::vector<TensorPlan> plan_quantization(const gguf::File& in, const QuantizeOptions& o,
                                          std::vector<std::string>* notes = nullptr);
// Reads `in`, converts every tensor, writes `out` atomically (temporary file + rename).
QuantizeReport quantize_file(const std::string& in, const std::string& out, const QuantizeOptions& o);

// ---------------------------------------------------------------------------------------------
// perplexity

struct PerplexityOptions {
  int n_ctx = 512;     // tokens per chunk
  int n_chunks = -1;   // -1: all whole chunks in the text
  int n_batch = 512;   // tokens per forward pass
  int n_threads = 0;
  DType kv_type = DType::F16;
  std::function<void(int chunk, int total, double running_ppl)> on_chunk;
};

struct PerplexityResult {
  double ppl = 0, stderr_ppl = 0;   // exp(mean NLL), and its standard error
  double mean_nll = 0;
  int n_chunks = 0;
  int64_t n_scored = 0;             // predictions scored
  int64_t n_text_tokens = 0;
  std::vector<double> running;      // perplexity after each chunk
};

// The standard method (as llama.cpp's perplexity tool): tokenize the whole text (BOS first when
// the model adds one), cut it into non-overlapping chunks of n_ctx tokens, put BOS at the start
// of each chunk when the model adds one, and score the predictions of the second half of
// each chunk.
PerplexityResult perplexity(std::shared_ptr<const Model> model, std::string_view text,
                            const PerplexityOptions& o);

// ---------------------------------------------------------------------------------------------
// memory accounting

struct MemoryReport {
  struct TypeBytes {
    int tensors = 0;
    uint64_t bytes = 0;
  };
  std::map<std::string, TypeBytes> weights_by_type;  // type name -> tensors, bytes
  uint64_t weight_bytes = 0;
  int n_ctx = 0;
  uint64_t kv_f16_bytes = 0;   // keys + values for n_ctx positions, half precision
  uint64_t kv_q8_0_bytes = 0;  // the same in Q8_0 (34 bytes per 32 values)
};
MemoryReport memory_report(const Model& model, int n_ctx);

}  // namespace edgelm::quant
