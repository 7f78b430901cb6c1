// Hugging Face checkpoints <-> GGUF.
//
//   edgelm::convert::ConvertOptions o;
//   o.type = "q8_0";                                   // f32, f16, bf16 or any quantize type
//   auto r = edgelm::convert::convert_hf("SmolLM2-135M/", "smollm2.gguf", o);   // atomic write
//
//   edgelm::convert::export_hf("trained.gguf", "trained-hf/");  // config.json, model.safetensors,
//                                                               // tokenizer.json, tokenizer_config.json
//
// convert_hf reads config.json, tokenizer.json, tokenizer_config.json and the *.safetensors
// weights (one file or shards listed by model.safetensors.index.json; F32, F16 or BF16) of the
// llama, qwen2, gemma, gemma2, gemma3, phi3 and stablelm families, and writes the tensor names,
// layouts and metadata llama.cpp's converter writes. Every input is validated first: a bad file
// throws edgelm::Error naming the file and what is wrong.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace edgelm::convert {

struct ConvertProgress {
  size_t tensors_done, tensors_total;
  const std::string* current;  // GGUF name of the tensor being written
};

struct ConvertOptions {
  std::string type = "f16";  // output file type: f32, f16, bf16 or a name edgelm quantize takes
  int n_threads = 0;         // quantization threads; 0: all hardware threads
  std::function<void(const ConvertProgress&)> on_progress{};
  std::function<void(const std::string&)> on_note{};  // quantization fallbacks (as edgelm quantize's)
};

struct ConvertReport {
  std::string arch;                // general.architecture written
  std::string tokenizer_model;     // tokenizer.ggml.model written ("gpt2" or "llama")
  std::string tokenizer_pre;       // tokenizer.ggml.pre written ("" for SentencePiece)
  size_t n_tensors = 0;
  uint64_t file_bytes = 0;
};

// The families convert_hf reads, comma-separated, for messages.
std::string supported_hf_architectures();

ConvertReport convert_hf(const std::string& hf_dir, const std::string& out_gguf, const ConvertOptions& o = {});

struct ExportReport {
  std::string arch;
  size_t n_tensors = 0;
  std::vector<std::string> files;  // written, in out_dir
};

// Writes a Hugging Face checkpoint (F32 safetensors) of a GGUF with float weights (F32, F16 or
// BF16; a quantized model is refused) of the llama family with a byte-level BPE vocabulary,
// such as a model edgelm trained from SmolLM2. out_dir is created if needed; each file is
// written atomically.
ExportReport export_hf(const std::string& gguf_path, const std::string& out_dir);

}  // namespace edgelm::convert
