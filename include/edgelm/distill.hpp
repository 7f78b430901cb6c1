// Knowledge distillation: a smaller student made from a teacher model and trained to mimic it.
// The student is the teacher with its least important blocks removed (depth pruning; a block's
// importance is how much it changes the residual stream that enters it, 1 - cosine similarity,
// measured on the training text), so it keeps the teacher's tokenizer, chat template and
// architecture and starts from the teacher's weights. It then trains with edgelm::finetune on
// the loss alpha * CE + (1 - alpha) * T^2 * KL(teacher || student) (train::DistillLoss), the
// teacher's distributions computed once per run, or read from a cache file, as its top-k words
// at temperature T plus the mass left over (or whole, computed batch by batch).
//
//   auto teacher = edgelm::Model::load("smollm2");
//   auto data = edgelm::load_lm_data(*teacher, "train.txt", {.n_ctx = 256});
//   auto imp = edgelm::block_importance(teacher, data, 2);
//   edgelm::write_pruned(*teacher, edgelm::least_important(imp, 12), sha, "student0.gguf");
//   edgelm::TeacherSignal signal(teacher, sha, data, {.top_k = 64});
//   edgelm::finetune(edgelm::Model::load("student0.gguf"), data, val, "student.gguf",
//                    {.teacher = [&](auto ids, auto& out) { signal(ids, out); }, ...});
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgelm/finetune.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/train.hpp"

namespace edgelm {

// Each block's importance, 1 - the mean cosine similarity between the residual stream entering
// and leaving it, over the first max_tokens tokens of `data` (ShortGPT's block influence). The
// first block's input is the raw embedding, not comparable with a residual stream: it scores
// +infinity, so it is never dropped.
std::vector<double> block_importance(const std::shared_ptr<const Model>& model, const std::vector<LmExample>& data,
                                     int n_threads, int64_t max_tokens = 16384);

// The indices of the n least important blocks, in increasing order. Throws edgelm::Error when
// n leaves no block.
std::vector<int> least_important(std::span<const double> importance, int n);

// Writes `teacher` without the blocks `drop` (the rest renumbered in order, every tensor in its
// own type and the metadata kept) to `path` (atomically), with its lineage in edgelm.distill.*
// (the teacher's name and sha256, its block count and the blocks dropped). Throws edgelm::Error
// for a block out of range or a request that leaves no block.
void write_pruned(const Model& teacher, std::span<const int> drop, const std::string& teacher_sha256,
                  const std::string& path);

struct TeacherOptions {
  float temperature = 3;
  int top_k = 64;     // words kept per position (0: the whole distribution)
  int n_ctx = 256;    // the longest example
  int n_threads = 0;  // 0: all cores
  // Read the distributions from this file when it holds them for the same teacher, data,
  // temperature and k; otherwise compute them and write it (atomically). Empty: no file.
  std::string cache{};
};

// The teacher's distributions at every trained position of each example (one TeacherTargets
// per example, rows in position order). on_progress(done, total) after each example computed.
// Throws edgelm::Error for a cache file that is damaged or was made by another teacher, for
// other data or with another temperature or k.
std::vector<train::TeacherTargets> teacher_targets(const std::shared_ptr<const Model>& teacher,
                                                   const std::string& teacher_sha256,
                                                   const std::vector<LmExample>& data, const TeacherOptions& o,
                                                   const std::function<void(size_t, size_t)>& on_progress = {});

// The teacher's distributions for the training loop's batches (FinetuneOptions::teacher).
// With top_k > 0 they are computed once for every example when it is made (teacher_targets(),
// or read from the cache) and gathered per batch; with top_k 0 (whole distributions: n_vocab
// floats per position, too many to keep for a corpus) the teacher runs on each batch, in every
// epoch ("online"), and the cache is not used.
class TeacherSignal {
 public:
  TeacherSignal(std::shared_ptr<const Model> teacher, const std::string& teacher_sha256,
                const std::vector<LmExample>& data, const TeacherOptions& o,
                const std::function<void(size_t, size_t)>& on_progress = {});
  ~TeacherSignal();
  bool online() const { return rows_.empty() && !data_->empty(); }
  // Writes the rows of examples `ids` (indices into `data`), in order, over `out`.
  void operator()(std::span<const int> ids, train::TeacherTargets& out);

 private:
  std::shared_ptr<const Model> teacher_;
  const std::vector<LmExample>* data_;
  TeacherOptions o_;
  std::vector<train::TeacherTargets> rows_;
  std::unique_ptr<Session> session_;  // online
};

// Throws edgelm::Error unless the student and the teacher have the same vocabulary (the same
// tokens in the same order).
void check_same_vocabulary(const Model& teacher, const Model& student);

// The whole run, as `edgelm distill` makes it: the teacher without its `prune_layers` least
// important blocks (block_importance on `train`), then trained with finetune() on the loss
// `train.distill` against the teacher's distributions (TeacherSignal; none when alpha is 1,
// the cross-entropy alone), and written to out_path. With train.epochs 0 the pruned student is
// written untrained, in the teacher's own tensor types.
struct DistillOptions {
  int prune_layers = 0;
  TeacherOptions teacher{};  // its n_ctx is the data's (n_ctx), its n_threads train.n_threads
  FinetuneOptions train{};   // its `teacher` is set by distill()
  int n_ctx = 256;           // the longest example, as the data were read
};

struct DistillCallbacks {
  // The measured importance of each block and the blocks dropped, before the student is made.
  std::function<void(std::span<const double> importance, std::span<const int> dropped)> on_pruned;
  // The untrained student, before the teacher's distributions are computed.
  std::function<void(const Model& student)> on_student;
  std::function<void(size_t done, size_t total)> on_teacher_progress;  // examples
  FinetuneCallbacks train;
};

struct DistillReport {
  std::vector<double> importance;  // per teacher block (block 0: +infinity, never dropped)
  std::vector<int> dropped;
  int student_blocks = 0;
  int64_t student_params = 0;
  bool trained = false;            // false: train.epochs was 0
  FinetuneReport train;
};

// Throws edgelm::Error for a bad prune_layers, options finetune() refuses, a damaged cache file
// or a diverged loss; out_path is written atomically (nothing is left behind on an error).
DistillReport distill(std::shared_ptr<const Model> teacher, const std::vector<LmExample>& train,
                      const std::vector<LmExample>& val, const std::string& out_path, DistillOptions o,
                      const DistillCallbacks& cb = {});

}  // namespace edgelm
