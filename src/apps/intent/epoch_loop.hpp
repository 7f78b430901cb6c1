// What both training phases of train-classifier (trainer.cpp: the head on the frozen backbone;
// finetune.cpp: the head with the backbone's top blocks) add to the one training loop
// (train::TrainingLoop: shuffled mini-batches, clipping, optimiser steps, validation, the
// divergence check, early stopping): the progress line, the best checkpoint (kept in memory and
// saved to disk), a plateau schedule per optimiser, and the report's epochs.
#pragma once
#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "edgelm/intent.hpp"
#include "edgelm/train.hpp"

namespace edgelm::intent {

// Wall-clock seconds of the phases and epochs (TrainReport, EpochStats).
using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct EpochPlan {
  int first_epoch = 1;  // the number of the first epoch (fine-tuning goes on from the head's epochs)
  int n_epochs = 1;
  size_t batch_size = 1;
  float clip = 0;              // gradient-norm clipping over all params (0: off)
  size_t progress_every = 1;   // a progress call every this many batches, and after the last
  std::string stage;           // progress stage "<stage> <i>/<n_epochs>", i counted from 1
  std::string diverged_hint;   // what to do when a loss is not finite
};

class EpochLoop {
 public:
  // An optimiser with its schedule. The first one's learning rate and schedule are reported.
  struct Optimiser {
    train::AdamW* opt;
    train::ReduceLROnPlateau* sched;
  };
  // Adds the gradients of the examples `batch` (their losses scaled by `scale`) and their
  // unscaled losses, one by one, to loss_sum.
  using TrainBatch = std::function<void(std::span<const int> batch, float scale, double& loss_sum)>;
  using Evaluate = std::function<void(double& loss, double& acc)>;  // on validation

  // `params` are clipped together and checkpointed; a better epoch also saves `head` (with no
  // oos threshold yet) to out_path.
  EpochLoop(std::vector<train::Param*> params, std::vector<Optimiser> optimisers, int patience, Head& head,
            const std::string& out_path);

  // Counts a validation loss measured before any epoch as the checkpoint to beat.
  void start_from(double val_loss);
  // Trains n_examples examples (ids 0..n-1, shuffled with rng each epoch) for the plan's
  // epochs or until early stopping; appends to rep.epochs and reports through cb.
  void run(const EpochPlan& plan, size_t n_examples, train::Rng& rng, const TrainBatch& train_batch,
           const Evaluate& evaluate, const TrainCallbacks& cb, TrainReport& rep);
  // Puts the best checkpoint's values back into the params (none yet: leaves them).
  void restore_best();
  // Called before each checkpoint is written (to copy trained values into the head).
  void before_save(std::function<void()> fn) { before_save_ = std::move(fn); }

 private:
  bool step_schedules(double val_loss);
  void keep_best();

  std::vector<train::Param*> params_;
  std::vector<Optimiser> optimisers_;
  train::EarlyStopping stop_;
  Head& head_;
  std::string out_path_;
  std::vector<std::vector<float>> best_;
  std::function<void()> before_save_;
};

}  // namespace edgelm::intent
