// The one training loop (TrainingLoop): fine-tuning and the classifier's phases run it.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "edgelm/error.hpp"
#include "edgelm/train.hpp"

namespace edgelm::train {

TrainingLoop::TrainingLoop(std::vector<Param*> params, std::vector<AdamW*> optimizers, LoopOptions o)
    : params_(std::move(params)), opts_(std::move(optimizers)), o_(std::move(o)), stopper_(o_.patience) {
  if (o_.batch < 1 || o_.grad_accum < 1) throw Error("the batch size and gradient accumulation must be at least 1");
  if (o_.epochs < 0 || o_.eval_every < 0 || o_.patience < 0) throw Error("epochs, eval_every and patience must not be negative");
  if (opts_.empty()) throw Error("internal: a training loop without an optimizer");
}

int64_t TrainingLoop::updates_per_epoch(size_t n_examples) const {
  const size_t n_batches = (n_examples + o_.batch - 1) / o_.batch;
  return static_cast<int64_t>((n_batches + static_cast<size_t>(o_.grad_accum) - 1) / static_cast<size_t>(o_.grad_accum));
}

bool TrainingLoop::run(size_t n_examples, Rng& rng, const LoopHooks& h) {
  if (!h.train_batch) throw Error("internal: a training loop without train_batch");
  if (!h.validate && (o_.eval_every > 0 || o_.patience > 0))
    throw Error("validating every N updates and early stopping need validation data", "pass --val FILE");
  const size_t n_batches = (n_examples + o_.batch - 1) / o_.batch;
  const int64_t total = updates_per_epoch(n_examples) * o_.epochs;
  const int last_epoch = o_.first_epoch + o_.epochs - 1;
  if (st_.epoch == 0) st_.epoch = o_.first_epoch;
  auto diverged = [&](int epoch, const char* what) {
    return Error("training diverged at epoch " + std::to_string(epoch) + " (the " + what + " is not finite)",
                 o_.diverged_hint);
  };
  // A validation: early stopping's count and the caller's hook. True when training stops.
  auto validate = [&](int epoch) {
    const double vl = h.validate();
    if (!std::isfinite(vl)) throw diverged(epoch, "validation loss");
    const bool best = stopper_.update(static_cast<float>(vl));
    if (h.on_validation) h.on_validation({epoch, st_.updates, vl, best});
    return stopper_.should_stop();
  };

  if (st_.next_batch == 0)
    for (AdamW* opt : opts_) opt->zero_grad();  // nothing left over from an earlier phase
  bool stop = false;
  for (int epoch = st_.epoch; epoch <= last_epoch && !stop; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    if (st_.next_batch == 0) {  // a fresh epoch (else a resumed one, its order and sums restored)
      if (st_.order.size() != n_examples) {
        st_.order.resize(n_examples);
        for (size_t i = 0; i < n_examples; ++i) st_.order[i] = static_cast<int>(i);
      }
      rng.shuffle(st_.order);
      st_.loss_sum = st_.loss_count = 0;
      st_.tokens = 0;
    }
    st_.epoch = epoch;
    const int64_t tokens_before = st_.tokens;
    int pending = 0;
    for (size_t b = static_cast<size_t>(st_.next_batch); b < n_batches && !stop; ++b) {
      const size_t lo = b * o_.batch, hi = std::min(n_examples, lo + o_.batch);
      const BatchLoss l = h.train_batch(std::span<const int>(st_.order.data() + lo, hi - lo));
      if (!std::isfinite(l.sum)) throw diverged(epoch, "loss");
      st_.loss_sum += l.sum;
      st_.loss_count += l.count;
      st_.tokens += l.tokens;
      if (++pending < o_.grad_accum && b + 1 < n_batches) continue;
      if (pending > 1)  // the mean of the accumulated batches' gradients
        for (Param* p : params_)
          for (float& g : p->grad) g /= static_cast<float>(pending);
      pending = 0;
      if (o_.clip > 0) clip_grad_norm(params_, o_.clip);
      if (h.set_lr) h.set_lr(st_.updates);
      for (AdamW* opt : opts_) {
        opt->step();
        opt->zero_grad();
      }
      ++st_.updates;
      st_.next_batch = static_cast<int64_t>(b) + 1;
      if (h.on_update) h.on_update({epoch, b + 1, n_batches, st_.updates, total, l.sum / l.count});
      if (o_.eval_every > 0 && st_.updates % o_.eval_every == 0) {
        stop = validate(epoch);
        if (st_.next_batch < static_cast<int64_t>(n_batches) && h.checkpoint) h.checkpoint();  // else at the epoch's end
      }
    }
    LoopEpoch ep{epoch, st_.loss_sum / std::max(1e-300, st_.loss_count),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), st_.tokens - tokens_before};
    if (o_.eval_every == 0 && h.validate) stop = validate(epoch) || stop;
    st_.next_batch = 0;
    st_.epoch = epoch + 1;
    if (h.checkpoint) h.checkpoint();
    if (h.on_epoch) h.on_epoch(ep);
  }
  return stop;
}

}  // namespace edgelm::train
