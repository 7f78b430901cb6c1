// train-classifier with --unfreeze K: the head and the backbone's top K blocks trained together.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "edgelm/intent.hpp"
#include "kernels/thread_pool.hpp"

namespace edgelm::intent {

// Fine-tunes head.net (already trained on the frozen backbone, with learning rate head_lr)
// together with the model's top o.unfreeze blocks (loaded here into head.blocks); the best
// checkpoint is written to out_path after each better epoch and left in `head`. Returns the
// validation softmax rows of the best checkpoint (n_val x n_class).
std::vector<float> train_unfrozen(const std::shared_ptr<const Model>& model, Head& head,
                                  const std::vector<std::string>& x_tr, const std::vector<int>& y_tr,
                                  const std::vector<std::string>& x_va, const std::vector<int>& y_va,
                                  const TrainOptions& o, float head_lr, const TrainCallbacks& cb, TrainReport& rep,
                                  const std::string& out_path);

// Final hidden states (after the output norm, BOS row included) of packed token sequences:
// the model's first head.first_block blocks, then the head's fine-tuned ones.
void tuned_states(const Model& model, const Head& head, std::span<const std::vector<int32_t>> seqs, float* out,
                  kernels::ThreadPool* pool);

}  // namespace edgelm::intent
