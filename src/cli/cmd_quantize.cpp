// edgelm quantize IN.gguf OUT.gguf TYPE [--keep GLOB=TYPE]... [--imatrix FILE]
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress_line.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/quant.hpp"

namespace edgelm::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type, imatrix;
  std::vector<std::string> keep;
  int threads = 0;
};

std::string mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

void run_quantize(const QuantizeArgs& a) {
  quant::QuantizeOptions o;
  auto ft = quant::file_type_from_name(a.type);
  if (!ft) throw Error("unknown quantization type '" + a.type + "'", "choose one of " + quant::supported_file_types());
  o.file_type = *ft;
  for (const auto& k : a.keep) {
    const size_t eq = k.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == k.size())
      throw Error("--keep '" + k + "' is not GLOB=TYPE", "for example --keep 'blk.0.*=Q8_0'");
    auto t = dtype_from_name(k.substr(eq + 1));
    if (!t || *t == DType::Q8_1 || *t == DType::Q8_K || !(dtype_traits(*t).quantized || *t == DType::F32 ||
                                                           *t == DType::F16 || *t == DType::BF16))
      throw Error("--keep '" + k + "': '" + k.substr(eq + 1) + "' is not a tensor type edgelm can write",
                  "use F32, F16, BF16, Q8_0, Q6_K, Q5_K, Q5_1, Q5_0, Q4_K, Q4_1, Q4_0, Q3_K or Q2_K");
    o.keep.push_back({k.substr(0, eq), *t});
  }
  std::unique_ptr<quant::ImportanceMatrix> im;
  if (!a.imatrix.empty()) {
    im = std::make_unique<quant::ImportanceMatrix>(quant::ImportanceMatrix::load(a.imatrix));
    o.imatrix = im.get();
    std::fprintf(stderr, "imatrix: %zu matrices from %s (%d chunks)\n", im->size(), a.imatrix.c_str(), im->chunks());
  }
  o.n_threads = a.threads;
  o.on_note = [](const std::string& n) { std::fprintf(stderr, "note: %s\n", n.c_str()); };
  ProgressLine progress("quantizing");
  o.on_progress = [&](const quant::QuantizeProgress& p) {
    const double f = p.elements_total ? static_cast<double>(p.elements_done) / p.elements_total : 1.0;
    progress.update(f, "[" + std::to_string(p.tensors_done) + "/" + std::to_string(p.tensors_total) + "] " + *p.current);
  };
  const quant::QuantizeReport r = quant::quantize_file(resolve_model_path(a.in), a.out, o);
  progress.finish();

  struct ClassSum {
    int n = 0;
    uint64_t in = 0, out = 0;
    std::set<std::string> from, to;
  };
  std::map<std::string, ClassSum> by_class;
  for (const auto& p : r.tensors) {
    auto& c = by_class[p.klass];
    ++c.n;
    c.in += p.bytes_in;
    c.out += p.bytes_out;
    c.from.insert(std::string(dtype_name(p.from)));
    c.to.insert(std::string(dtype_name(p.to)));
  }
  auto join = [](const std::set<std::string>& s) {
    std::string o;
    for (const auto& x : s) o += (o.empty() ? "" : ",") + x;
    return o;
  };
  std::printf("%-12s %7s  %-14s %-14s %12s %12s %7s\n", "class", "tensors", "from", "to", "before", "after", "ratio");
  for (const auto& [k, c] : by_class)
    std::printf("%-12s %7d  %-14s %-14s %12s %12s %6.1f%%\n", k.c_str(), c.n, join(c.from).c_str(), join(c.to).c_str(),
                mib(c.in).c_str(), mib(c.out).c_str(), c.in ? 100.0 * c.out / c.in : 100.0);
  std::printf("%-12s %7zu  %-14s %-14s %12s %12s %6.1f%%\n", "total", r.tensors.size(), "", "",
              mib(r.bytes_in).c_str(), mib(r.bytes_out).c_str(), r.bytes_in ? 100.0 * r.bytes_out / r.bytes_in : 100.0);
  std::printf("wrote %s (%s, file %s -> %s)\n", a.out.c_str(), std::string(quant::file_type_name(o.file_type)).c_str(),
              mib(r.file_in).c_str(), mib(r.file_out).c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "convert a GGUF model to another tensor type (" +
                                                     quant::supported_file_types() + ")");
  cmd->add_option("input", a->in, "input GGUF file")->required();
  cmd->add_option("output", a->out, "output GGUF file (written to a temporary file, then renamed)")->required();
  cmd->add_option("type", a->type, "file type: " + quant::supported_file_types())->required();
  cmd->add_option("--keep", a->keep, "GLOB=TYPE: tensors whose name matches GLOB get TYPE (repeatable)");
  cmd->add_option("--imatrix", a->imatrix, "importance matrix from 'edgelm imatrix' (or llama-imatrix)");
  cmd->add_option("-t,--threads", a->threads, "threads (0: all cores)")->check(Range(0, 256));
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace edgelm::cli
