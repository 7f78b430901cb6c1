// The classifier's phases on the one training loop (train::TrainingLoop): the best checkpoint
// in memory and on disk, a plateau schedule per optimiser, EpochStats and progress calls.
#include "apps/intent/epoch_loop.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "edgelm/error.hpp"

namespace edgelm::intent {

EpochLoop::EpochLoop(std::vector<train::Param*> params, std::vector<Optimiser> optimisers, int patience, Head& head,
                     const std::string& out_path)
    : params_(std::move(params)), optimisers_(std::move(optimisers)), stop_(patience), head_(head),
      out_path_(out_path) {}

bool EpochLoop::step_schedules(double val_loss) {
  bool reduced = false;
  for (size_t k = 0; k < optimisers_.size(); ++k) {
    const bool r = optimisers_[k].sched->step(static_cast<float>(val_loss), *optimisers_[k].opt);
    if (k == 0) reduced = r;
  }
  return reduced;
}

void EpochLoop::keep_best() {
  best_.clear();
  for (const train::Param* p : params_) best_.push_back(p->value);
}

void EpochLoop::start_from(double val_loss) {
  stop_.update(static_cast<float>(val_loss));
  step_schedules(val_loss);
  keep_best();
}

void EpochLoop::restore_best() {
  if (best_.empty()) return;  // no checkpoint yet
  for (size_t k = 0; k < params_.size(); ++k) params_[k]->value = best_[k];
}

void EpochLoop::run(const EpochPlan& plan, size_t n_examples, train::Rng& rng, const TrainBatch& train_batch,
                    const Evaluate& evaluate, const TrainCallbacks& cb, TrainReport& rep) {
  std::vector<train::AdamW*> opts;
  for (const Optimiser& o : optimisers_) opts.push_back(o.opt);
  train::TrainingLoop loop(params_, opts,
                           {.epochs = plan.n_epochs, .first_epoch = plan.first_epoch, .batch = plan.batch_size,
                            .clip = plan.clip, .diverged_hint = plan.diverged_hint});
  loop.stopper() = stop_;  // start_from's loss, and an earlier phase's count
  EpochStats st;
  train::LoopHooks h;
  h.train_batch = [&](std::span<const int> ids) {
    train::BatchLoss l{.count = static_cast<double>(ids.size())};
    train_batch(ids, 1.0f / static_cast<float>(ids.size()), l.sum);
    return l;
  };
  h.validate = [&] {
    evaluate(st.val_loss, st.val_acc);
    return st.val_loss;
  };
  h.on_update = [&](const train::LoopUpdate& u) {
    if (cb.on_progress && ((u.batch - 1) % plan.progress_every == 0 || u.batch == u.n_batches)) {
      const std::string stage = plan.stage + " " + std::to_string(u.epoch - plan.first_epoch + 1) + "/" +
                                std::to_string(plan.n_epochs);
      cb.on_progress(stage.c_str(), u.batch, u.n_batches);
    }
  };
  h.on_validation = [&](const train::LoopValidation& v) {
    st.lr = optimisers_.front().opt->lr();
    st.best = v.best;
    if (v.best) {
      rep.best_epoch = v.epoch;
      rep.best_val_loss = v.loss;
      keep_best();
      head_.oos_threshold = 0;
      if (before_save_) before_save_();
      save_head(head_, out_path_);  // the best checkpoint so far, written atomically
    }
    st.lr_reduced = step_schedules(v.loss);
  };
  h.on_epoch = [&](const train::LoopEpoch& e) {
    st.epoch = e.epoch;
    st.train_loss = e.train_loss;
    st.seconds = e.seconds;
    rep.epochs.push_back(st);
    if (cb.on_epoch) cb.on_epoch(st);
  };
  loop.run(n_examples, rng, h);
  stop_ = loop.stopper();
}

}  // namespace edgelm::intent
