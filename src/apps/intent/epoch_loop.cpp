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
  std::vector<int> order(n_examples);
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  const size_t n_batches = (order.size() + plan.batch_size - 1) / plan.batch_size;
  for (int epoch = plan.first_epoch; epoch < plan.first_epoch + plan.n_epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    rng.shuffle(order);
    double loss_sum = 0;
    for (size_t b = 0; b < n_batches; ++b) {
      const size_t lo = b * plan.batch_size, hi = std::min(order.size(), lo + plan.batch_size);
      for (const Optimiser& o : optimisers_) o.opt->zero_grad();
      train_batch(std::span<const int>(order.data() + lo, hi - lo), 1.0f / static_cast<float>(hi - lo), loss_sum);
      train::clip_grad_norm(params_, plan.clip);
      for (const Optimiser& o : optimisers_) o.opt->step();
      if (cb.on_progress && (b % plan.progress_every == 0 || b + 1 == n_batches)) {
        const std::string stage = plan.stage + " " + std::to_string(epoch - plan.first_epoch + 1) + "/" +
                                  std::to_string(plan.n_epochs);
        cb.on_progress(stage.c_str(), b + 1, n_batches);
      }
    }
    EpochStats st;
    st.epoch = epoch;
    st.train_loss = loss_sum / order.size();
    evaluate(st.val_loss, st.val_acc);
    st.lr = optimisers_.front().opt->lr();
    if (!std::isfinite(st.train_loss) || !std::isfinite(st.val_loss))
      throw Error("training diverged at epoch " + std::to_string(epoch) + " (loss is not finite)", plan.diverged_hint);
    st.best = stop_.update(static_cast<float>(st.val_loss));
    if (st.best) {
      rep.best_epoch = epoch;
      rep.best_val_loss = st.val_loss;
      keep_best();
      head_.oos_threshold = 0;
      if (before_save_) before_save_();
      save_head(head_, out_path_);  // the best checkpoint so far, written atomically
    }
    st.lr_reduced = step_schedules(st.val_loss);
    st.seconds = seconds_since(t_epoch);
    rep.epochs.push_back(st);
    if (cb.on_epoch) cb.on_epoch(st);
    if (stop_.should_stop()) break;
  }
}

}  // namespace edgelm::intent
