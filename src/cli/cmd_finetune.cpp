// edgelm finetune: train every weight of a language model, or LoRA adapters beside it, on chat
// or text data; edgelm distill: a student pruned from a teacher, trained to mimic it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress_line.hpp"
#include "edgelm/distill.hpp"
#include "edgelm/error.hpp"
#include "edgelm/finetune.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"
#include "edgelm/plot.hpp"

namespace edgelm::cli {
namespace {

struct FinetuneArgs {
  std::string model = "smollm2";
  // distill: the teacher, the pruning, the loss and the teacher's cache
  std::string teacher;
  int prune_layers = -1;
  std::string student_config;
  TeacherOptions kd;
  bool kd_no_t2 = false;
  std::string train, val, out;
  std::string out_type = "f16";
  bool full = false;
  std::string targets;  // --lora-targets q,k,v,o
  std::string plot;     // --plot FILE.png
  LmDataOptions data;
  FinetuneOptions o;
};

// Checks of the output options made before any work, so that a bad one fails at once.
void check_outputs(FinetuneArgs& a) {
  if (a.out_type != "f16" && a.out_type != "f32") throw Error("--out-type must be f16 or f32");
  if (!a.plot.empty()) {  // checked now, not after the training
    const std::filesystem::path dir = std::filesystem::absolute(a.plot).parent_path();
    if (!std::filesystem::is_directory(dir))
      throw Error("cannot write the plot " + a.plot + ": the folder " + dir.string() + " does not exist",
                  "create it first, or give --plot a path in an existing folder");
  }
  a.o.f16 = a.out_type == "f16";
}

std::string describe_data(const std::vector<LmExample>& train, const std::vector<LmExample>& val) {
  int64_t n_tokens = 0, n_targets = 0;
  for (const auto& e : train) {
    n_tokens += static_cast<int64_t>(e.tokens.size());
    for (int32_t t : e.targets) n_targets += t >= 0;
  }
  return std::to_string(train.size()) + " training examples (" + std::to_string(n_tokens) + " tokens, " +
         std::to_string(n_targets) + " trained), " + std::to_string(val.size()) + " validation";
}

// The training run's progress line, epoch and validation lines and --plot: callbacks() for
// finetune(), then finish() with its report.
class TrainingOutput {
 public:
  TrainingOutput(const FinetuneArgs& a, const std::string& title) : a_(a), progress_("training") {
    chart_ = {.title = title, .x_label = "optimizer update", .y_label = "loss"};
    chart_.series = {{.label = "train", .rgb = 0x9ecae1, .width = 1},
                     {.label = "train (moving mean)", .rgb = 0x1f77b4, .width = 2},
                     {.label = "validation", .rgb = 0xff7f0e, .markers = true, .width = 2}};
  }

  FinetuneCallbacks callbacks() {
    FinetuneCallbacks cb;
    cb.on_step = [this](int64_t done, int64_t total, double loss) {
      chart_.series[0].points.push_back({static_cast<double>(done), loss});
      char detail[96];
      std::snprintf(detail, sizeof detail, "update %lld/%lld  loss %.4f", static_cast<long long>(done),
                    static_cast<long long>(total), loss);
      progress_.update(static_cast<double>(done) / static_cast<double>(total), detail);
    };
    cb.on_eval = [this](const FinetuneEval& e) {
      chart_.series[2].points.push_back({static_cast<double>(e.update), e.val_loss});
      draw();
      if (a_.o.eval_every == 0) return;  // shown on the epoch's line
      progress_.finish();
      std::printf("update %5lld  val loss %.4f  val perplexity %.2f  lr %.3g\n", static_cast<long long>(e.update),
                  e.val_loss, std::exp(e.val_loss), static_cast<double>(e.lr));
      std::fflush(stdout);
    };
    cb.on_epoch = [this](const FinetuneEpoch& e) {
      progress_.finish();
      std::printf("epoch %3d  train loss %.4f", e.epoch, e.train_loss);
      if (std::isfinite(e.val_loss)) std::printf("  val loss %.4f  val perplexity %.2f", e.val_loss, std::exp(e.val_loss));
      std::printf("  %.1f s  %.0f tokens/s\n", e.seconds, e.tokens_per_second);
      std::fflush(stdout);
    };
    return cb;
  }

  void finish(const FinetuneReport& r) {
    progress_.finish();
    if (std::isfinite(r.initial_val_loss))
      chart_.series[2].points.insert(chart_.series[2].points.begin(), {0.0, r.initial_val_loss});
    draw();
    if (!a_.plot.empty()) std::printf("training curves drawn in %s\n", a_.plot.c_str());
    if (r.stopped_early)
      std::printf("stopped early: no lower validation loss in %d validations\n", a_.o.patience);
    if (std::isfinite(r.initial_val_loss) && !r.epochs.empty())
      std::printf("validation loss %.4f before, %.4f after\n", r.initial_val_loss, r.epochs.back().val_loss);
  }

 private:
  // --plot: the training loss of every update and each validation's loss, redrawn after each
  // validation and at the end.
  void draw() {
    if (a_.plot.empty()) return;
    auto& raw = chart_.series[0].points;
    auto& mean = chart_.series[1].points;
    mean.clear();
    const size_t w = std::max<size_t>(1, raw.size() / 20), h = w / 2;  // a centred window
    for (size_t i = 0; i < raw.size(); ++i) {
      const size_t lo = i >= h ? i - h : 0, hi = std::min(raw.size(), i + h + 1);
      double sum = 0;
      for (size_t j = lo; j < hi; ++j) sum += raw[j].second;
      mean.push_back({raw[i].first, sum / static_cast<double>(hi - lo)});
    }
    train::Chart c = chart_;
    if (w == 1) {  // the mean is the raw curve: draw that one as the mean would be
      c.series[1].points = std::move(c.series[0].points);
      c.series[1].label = "train";
      c.series.erase(c.series.begin());
    }
    if (c.series.back().points.empty()) c.series.pop_back();
    if (!raw.empty()) train::write_png(c, a_.plot);
  }

  const FinetuneArgs& a_;
  ProgressLine progress_;
  train::Chart chart_;
};

void run(FinetuneArgs& a) {
  if (a.full == (a.o.lora.rank > 0))
    throw Error(a.full ? "--full and --lora-rank exclude each other" : "choose what to train",
                "pass --full (every weight) or --lora-rank R (adapters over a frozen base)");
  if (!a.targets.empty()) a.o.lora.targets = split_commas(a.targets);
  check_outputs(a);
  auto model = Model::load(a.model);
  const std::vector<LmExample> train = load_lm_data(*model, a.train, a.data);
  const std::vector<LmExample> val = a.val.empty() ? std::vector<LmExample>{} : load_lm_data(*model, a.val, a.data);
  std::printf("%s %s (%.1f M parameters): %s\n", a.full ? "fine-tuning" : "training LoRA adapters for",
              model->config().name.c_str(), static_cast<double>(model->n_params()) / 1e6, describe_data(train, val).c_str());
  std::fflush(stdout);
  TrainingOutput output(a, model->config().name + ": " +
                               (a.full ? "full fine-tuning" : "LoRA rank " + std::to_string(a.o.lora.rank)));
  const FinetuneReport r = finetune(model, train, val, a.out, a.o, output.callbacks());
  output.finish(r);
  if (a.full)
    std::printf("%lld updates; model written to %s (%s)\n", static_cast<long long>(r.updates), a.out.c_str(),
                a.out_type.c_str());
  else
    std::printf("%lld updates; LoRA adapter written to %s (use it with --lora %s)\n", static_cast<long long>(r.updates),
                a.out.c_str(), a.out.c_str());
}

// edgelm distill: the student pruned from the teacher, the teacher's distributions, then the
// training run on the distillation loss.
void run_distill(FinetuneArgs& a) {
  if (!a.student_config.empty())
    throw Error("--student-config (a randomly initialised student) is not available yet",
                "make the student from the teacher with --prune-layers K");
  if (a.prune_layers < 0) throw Error("choose the student", "pass --prune-layers K (the teacher without its K least important blocks)");
  check_outputs(a);
  a.o.distill.t_squared = !a.kd_no_t2;
  auto teacher = Model::load(a.teacher);
  const std::vector<LmExample> train = load_lm_data(*teacher, a.train, a.data);
  const std::vector<LmExample> val = a.val.empty() ? std::vector<LmExample>{} : load_lm_data(*teacher, a.val, a.data);
  const ModelConfig& tc = teacher->config();
  std::printf("teacher %s: %d blocks, %.1f M parameters; %s\n", tc.name.c_str(), tc.n_layer,
              static_cast<double>(teacher->n_params()) / 1e6, describe_data(train, val).c_str());
  const std::string name = tc.name;
  const bool with_teacher = a.o.distill.alpha < 1;  // alpha 1: the cross-entropy alone
  char title[96];
  if (with_teacher)
    std::snprintf(title, sizeof title, "distillation (alpha %g, T %g)", static_cast<double>(a.o.distill.alpha),
                  static_cast<double>(a.kd.temperature));
  else
    std::snprintf(title, sizeof title, "pruned, cross-entropy only");
  TrainingOutput output(a, name + ": " + title);
  std::optional<ProgressLine> teacher_progress;  // started with the teacher's first example (its ETA)
  DistillCallbacks cb;
  cb.on_pruned = [&](std::span<const double> imp, std::span<const int> drop) {
    std::printf("block importance (1 - cos(in, out)):");
    for (size_t i = 1; i < imp.size(); ++i) std::printf(" %zu:%.3f", i, imp[i]);
    std::printf("\ndropping blocks");
    for (int b : drop) std::printf(" %d", b);
    std::printf(" (%d of %d kept)\n", tc.n_layer - a.prune_layers, tc.n_layer);
    if (tc.n_swa > 0)
      std::printf("note: %s alternates local and global attention by block number; the kept blocks take the "
                  "pattern's places in order, so the untrained student is not exactly the teacher minus those blocks\n",
                  tc.name.c_str());
    std::fflush(stdout);
  };
  cb.on_student = [&](const Model& student) {
    if (a.o.epochs == 0) return;
    std::printf("student: %d blocks, %.1f M parameters\n", student.config().n_layer,
                static_cast<double>(student.n_params()) / 1e6);
    if (with_teacher)
      std::printf("teacher distributions: %s at temperature %g%s\n",
                  a.kd.top_k == 0 ? "every word, computed batch by batch"
                                  : ("top " + std::to_string(a.kd.top_k) + " words").c_str(),
                  static_cast<double>(a.kd.temperature),
                  a.kd.cache.empty() || a.kd.top_k == 0 ? "" : (", cache " + a.kd.cache).c_str());
    else
      std::printf("--kd-alpha 1: the cross-entropy on the data alone, without the teacher\n");
    std::fflush(stdout);
  };
  cb.on_teacher_progress = [&](size_t done, size_t total) {
    if (!teacher_progress) teacher_progress.emplace("teacher");
    teacher_progress->update(static_cast<double>(done) / static_cast<double>(total),
                             std::to_string(done) + "/" + std::to_string(total) + " examples");
    if (done == total) teacher_progress->finish();
  };
  cb.train = output.callbacks();
  DistillOptions o{.prune_layers = a.prune_layers, .teacher = a.kd, .train = a.o, .n_ctx = a.data.n_ctx};
  const DistillReport r = distill(std::move(teacher), train, val, a.out, std::move(o), cb);
  if (!r.trained) {
    std::printf("pruned student written to %s (not trained)\n", a.out.c_str());
    return;
  }
  output.finish(r.train);
  std::printf("%lld updates, %lld tokens; student written to %s (%s)\n", static_cast<long long>(r.train.updates),
              static_cast<long long>(r.train.tokens_trained), a.out.c_str(), a.out_type.c_str());
}

// The options of the training run that finetune and distill share.
void add_training_options(CLI::App* cmd, const std::shared_ptr<FinetuneArgs>& a) {
  cmd->add_flag("--recompute", a->o.recompute,
                "keep only each block's input and run the block again for its backward pass (less memory, about a "
                "third more time)");
  cmd->add_option("--lr", a->o.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--batch", a->o.batch, "sequences per step")->check(Range(1, 4096))->capture_default_str();
  cmd->add_option("--ctx", a->data.n_ctx, "longest sequence in tokens")->check(Range(2, 1 << 20))->capture_default_str();
  cmd->add_option("--grad-accum", a->o.grad_accum, "steps per optimizer update")->check(Range(1, 4096))->capture_default_str();
  cmd->add_option("--schedule", a->o.schedule,
                  "constant, cosine (to 0 at the end), or plateau (ReduceLROnPlateau on the validation loss)")
      ->capture_default_str();
  cmd->add_option("--plateau-factor", a->o.plateau_factor, "plateau: learning rate multiplier")
      ->check(Range(0.0, 0.999999))
      ->capture_default_str();
  cmd->add_option("--plateau-patience", a->o.plateau_patience, "plateau: validations without improvement first")
      ->check(Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--plateau-threshold", a->o.plateau_threshold,
                  "plateau: a loss below best x (1 - threshold) counts as better")
      ->check(Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--plateau-cooldown", a->o.plateau_cooldown, "plateau: validations not counted after a reduction")
      ->check(Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--plateau-min-lr", a->o.plateau_min_lr, "plateau: lowest learning rate")
      ->check(Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--eval-every", a->o.eval_every, "validate every N updates (0: after each epoch)")
      ->check(Range(0, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--patience", a->o.patience, "stop after N validations without a lower loss (0: never)")
      ->check(Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--checkpoint", a->o.checkpoint,
                  "write weights, optimizer state and progress to FILE after each validation and epoch");
  cmd->add_option("--resume", a->o.resume, "go on from a checkpoint (same model, data and options)");
  cmd->add_option("--plot", a->plot, "draw the training and validation losses in FILE.png (redrawn after each validation)");
  cmd->add_option("--warmup", a->o.warmup, "updates of linear learning-rate warm-up")->check(Range(0, 1 << 30))->capture_default_str();
  cmd->add_option("--clip", a->o.clip, "gradient-norm clipping (0: off)")->check(Range(0.0, 1e6))->capture_default_str();
  cmd->add_option("--weight-decay", a->o.weight_decay, "AdamW decoupled weight decay (matrices only)")->capture_default_str();
  cmd->add_option("--seed", a->o.seed, "random seed (example order)")->capture_default_str();
  cmd->add_option("--chat-format", a->data.chat_format, "chatml, llama3 or gemma (default: the model's)");
  cmd->add_option("--out-type", a->out_type, "f16 (matrices; norms stay f32) or f32")->capture_default_str();
}

}  // namespace

void add_finetune_command(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  CLI::App* cmd = app.add_subcommand("finetune", "fine-tune a language model (every weight, or LoRA adapters) on chat or text data");
  cmd->add_option("-m,--model", a->model, "base GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--train", a->train,
                  "training data: JSON Lines ({\"messages\": [...]} or {\"text\": ...}) or a plain text file")->required();
  cmd->add_option("--val", a->val, "validation data (same formats)");
  cmd->add_option("-o,--output", a->out, "file to write (GGUF): the model, or with --lora-rank the adapter")->required();
  cmd->add_flag("--full", a->full, "train every weight (full fine-tuning)");
  cmd->add_option("--lora-rank", a->o.lora.rank,
                  "train LoRA adapters of this rank over the frozen base instead (the output is an adapter)")
      ->check(Range(1, 65536));
  cmd->add_option("--lora-alpha", a->o.lora.alpha, "LoRA: products scaled by alpha / rank")
      ->check(Range(1e-6f, 1e6f))
      ->capture_default_str();
  cmd->add_option("--lora-dropout", a->o.lora.dropout, "LoRA: dropout on the adapters' input")
      ->check(Range(0.0f, 0.99f))
      ->capture_default_str();
  cmd->add_option("--lora-targets", a->targets, "LoRA: the products adapted, among q,k,v,o,gate,up,down")
      ->default_str("q,k,v,o");
  cmd->add_option("--epochs", a->o.epochs, "passes over the training data")->check(Range(1, 100000))->capture_default_str();
  add_training_options(cmd, a);
  cmd->add_option("-t,--threads", a->o.n_threads, "threads (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->callback([a] { run(*a); });
}

void add_distill_command(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  a->o.lr = 1e-4f;
  a->o.epochs = 1;
  CLI::App* cmd = app.add_subcommand("distill", "make a smaller student from a teacher model and train it to mimic the teacher");
  cmd->add_option("-t,--teacher", a->teacher, "teacher GGUF file, or a model-cache name")->required();
  cmd->add_option("--prune-layers", a->prune_layers,
                  "the student is the teacher without its K least important blocks (1 - cos(in, out) on the training text)")
      ->check(Range(0, 1023));
  cmd->add_option("--student-config", a->student_config, "a randomly initialised student of this shape (JSON)");
  cmd->add_option("--train", a->train,
                  "training data: JSON Lines ({\"messages\": [...]} or {\"text\": ...}) or a plain text file")->required();
  cmd->add_option("--val", a->val, "validation data (same formats): the student's cross-entropy on it");
  cmd->add_option("-o,--output", a->out, "student GGUF to write")->required();
  cmd->add_option("--kd-alpha", a->o.distill.alpha, "weight of the cross-entropy on the data; 1 - alpha on the KL term")
      ->check(Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--kd-temperature", a->kd.temperature, "temperature of both distributions in the KL term")
      ->check(Range(1e-3f, 1e3f))
      ->capture_default_str();
  cmd->add_flag("--kd-reverse", a->o.distill.reverse, "reverse KL(student || teacher) instead of KL(teacher || student)");
  cmd->add_flag("--kd-no-t2", a->kd_no_t2, "no T^2 factor on the KL term");
  cmd->add_option("--kd-top-k", a->kd.top_k, "teacher words kept per position, the rest as one bucket (0: all)")
      ->check(Range(0, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--kd-cache", a->kd.cache,
                  "keep the teacher's distributions in FILE: read when it matches, otherwise written");
  cmd->add_option("--epochs", a->o.epochs, "passes over the training data (0: write the pruned student untrained)")
      ->check(Range(0, 100000))
      ->capture_default_str();
  add_training_options(cmd, a);
  cmd->add_option("--threads", a->o.n_threads, "threads (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->callback([a] { run_distill(*a); });
}

}  // namespace edgelm::cli
