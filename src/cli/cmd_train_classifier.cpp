// edgelm train-classifier: train an intent classification head on a frozen backbone.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress_line.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"

namespace edgelm::cli {
namespace {

struct TrainClassifierArgs {
  std::string model = "smollm2";
  std::string train, val, out;
  std::string pooling = "mean";
  std::string cache_dir;
  bool no_cache = false;
  int threads = 0;
  std::string lora_targets;  // --lora-targets q,k,v
  intent::TrainOptions o;
};

void print_metrics(const char* what, const intent::ScopeMetrics& m) {
  std::printf("%-28s in-scope accuracy %6.2f %% (%zu)  oos recall %6.2f %% (%zu)  overall %6.2f %%\n", what,
              100 * m.in_scope_acc, m.n_in, 100 * m.oos_recall, m.n_oos, 100 * m.overall_acc);
}

void run(TrainClassifierArgs& a) {
  a.o.pooling = train::parse_pooling(a.pooling);
  a.o.features.cache_dir = a.no_cache ? "-" : a.cache_dir;
  a.o.features.n_threads = a.threads;
  if (!a.lora_targets.empty()) a.o.lora_targets = split_commas(a.lora_targets);
  auto model = Model::load(a.model);
  const int n_layer = model->config().n_layer, k = intent::early_exit(a.o.features.n_layers, model->config());
  if (k > 0)
    std::printf("backbone: first %d of %d blocks of %s (early exit; --layers 0 uses all)\n", k, n_layer,
                model->config().name.c_str());
  else
    std::printf("backbone: all %d blocks of %s\n", n_layer, model->config().name.c_str());
  ProgressLine progress("training");
  intent::TrainCallbacks cb;
  cb.on_progress = [&](const char* stage, size_t done, size_t total) {
    progress.update(total ? static_cast<double>(done) / total : 1.0,
                    std::string(stage) + " " + std::to_string(done) + "/" + std::to_string(total));
  };
  cb.on_epoch = [&](const intent::EpochStats& s) {
    progress.finish();
    std::printf("epoch %3d  train loss %.4f  val loss %.4f  val acc %6.2f %%  lr %.2e  %5.1f s%s%s\n", s.epoch,
                s.train_loss, s.val_loss, 100 * s.val_acc, s.lr, s.seconds, s.best ? "  *best (saved)" : "",
                s.lr_reduced ? "  (lr reduced)" : "");
    std::fflush(stdout);
  };
  const intent::TrainReport r = intent::train_classifier(model, a.train, a.val, a.out, a.o, cb);
  progress.finish();
  std::printf("features: %zu train + %zu val texts in %.1f s (%s)\n", r.n_train, r.n_val, r.feature_seconds,
              r.blocks_tuned > 0                          ? "frozen blocks, kept in memory"
              : r.train_cache_hit && r.val_cache_hit ? "from cache"
                                                     : "backbone, now cached");
  std::printf("training: %zu epochs in %.1f s; best epoch %d (val loss %.4f)\n", r.epochs.size(), r.train_seconds,
              r.best_epoch, r.best_val_loss);
  if (r.blocks_tuned > 0)
    std::printf("  of which: head on the frozen backbone %.1f s, frozen blocks once %.1f s, fine-tuning %d blocks%s %.1f s\n",
                r.head_seconds, r.block_feature_seconds, r.blocks_tuned,
                a.o.lora_rank > 0 ? (" with LoRA rank " + std::to_string(a.o.lora_rank)).c_str() : "",
                r.block_train_seconds);
  print_metrics("validation, oos class:", r.argmax);
  char what[64];
  std::snprintf(what, sizeof what, "validation, threshold %.3f:", r.threshold);
  print_metrics(what, r.thresholded);
  for (const auto& pt : r.curve) {
    std::snprintf(what, sizeof what, "  (threshold %.2f:", pt.threshold);
    std::printf("%-28s in-scope accuracy %6.2f %%  oos recall %6.2f %%)\n", what, 100 * pt.m.in_scope_acc,
                100 * pt.m.oos_recall);
  }
  std::printf("head written to %s\n", a.out.c_str());
}

}  // namespace

void add_train_classifier_command(CLI::App& app) {
  auto a = std::make_shared<TrainClassifierArgs>();
  CLI::App* cmd = app.add_subcommand("train-classifier", "train an intent classifier head on a frozen backbone");
  cmd->add_option("-m,--model", a->model, "backbone GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--train", a->train, "training data, JSON Lines {\"text\":..., \"label\":...}")->required();
  cmd->add_option("--val", a->val, "validation data (same format)")->required();
  cmd->add_option("-o,--output", a->out, "head file to write (GGUF)")->required();
  cmd->add_option("--pooling", a->pooling, "last, mean or attention")->capture_default_str();
  cmd->add_option("--hidden", a->o.hidden, "hidden layer width (0: linear head)")->check(Range(0, 65536))->capture_default_str();
  cmd->add_option("--epochs", a->o.epochs, "maximum epochs")->check(Range(1, 100000))->capture_default_str();
  cmd->add_option("--lr", a->o.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", a->o.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  cmd->add_option("--batch-size", a->o.batch_size, "examples per step")->check(Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--seed", a->o.seed, "random seed (same seed, same head)")->capture_default_str();
  cmd->add_option("--patience", a->o.patience, "stop after this many epochs without a better val loss (0: never)")->check(Range(0, 100000))->capture_default_str();
  cmd->add_option("--lr-patience", a->o.lr_patience, "halve the lr after this many epochs without improvement")->check(Range(0, 100000))->capture_default_str();
  cmd->add_option("--clip", a->o.clip, "gradient-norm clipping (0: off)")->check(Range(0.0, 1e6))->capture_default_str();
  cmd->add_option("--dropout", a->o.dropout, "dropout on the pooled features")->capture_default_str();
  cmd->add_option("--oos-threshold", a->o.oos_threshold, "auto (chosen on validation), none, or a probability")->capture_default_str();
  cmd->add_option("--template", a->o.features.templ, "how a text is shown to the backbone; {text} is replaced")->capture_default_str();
  cmd->add_option("--cache-dir", a->cache_dir, "feature cache folder (default ~/.cache/edgelm/features)");
  cmd->add_flag("--no-cache", a->no_cache, "always run the backbone; do not read or write the feature cache");
  cmd->add_option("--layers", a->o.features.n_layers,
                  "early exit: features after the backbone's first K blocks (0 or K >= its blocks: all; 6 suits SmolLM2-135M, "
                  "see the README). The head records K; classify and car follow it")->check(Range(0, 4096))->capture_default_str();
  cmd->add_option("--unfreeze", a->o.unfreeze, "fine-tune the top K of the blocks used with the head (0: frozen)")->check(Range(0, 4096))->capture_default_str();
  cmd->add_option("--unfreeze-epochs", a->o.unfreeze_epochs, "epochs of fine-tuning after the head is trained")->check(Range(1, 100000))->capture_default_str();
  cmd->add_option("--block-lr", a->o.block_lr,
                  "AdamW learning rate of the fine-tuned blocks (default 5e-5; 1e-3 for LoRA adapters)");
  cmd->add_option("--lora", a->o.lora_rank,
                  "fine-tune with LoRA adapters of rank R over the still-quantized backbone instead of whole blocks "
                  "(the top --unfreeze blocks, by default all the blocks used); the head file carries them")
      ->check(Range(1, 4096));
  cmd->add_option("--lora-alpha", a->o.lora_alpha, "LoRA: products scaled by alpha / rank")
      ->check(Range(1e-6f, 1e6f))
      ->capture_default_str();
  cmd->add_option("--lora-targets", a->lora_targets, "LoRA: the products adapted, among q,k,v,o,gate,up,down")
      ->default_str("q,k,v,o,gate,up,down");
  cmd->add_option("-t,--threads", a->threads, "threads for the backbone and fine-tuned blocks (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
