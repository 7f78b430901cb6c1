// train-classifier with --unfreeze K: the head and the backbone's top K blocks trained together.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "edgelm/intent.hpp"
#include "edgelm/session.hpp"
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

// The session that runs the model's blocks below the fine-tuned ones and returns their residual
// output, the input of the first fine-tuned block; null when every block used is fine-tuned
// (that input is then the token embeddings).
std::unique_ptr<Session> frozen_session(const std::shared_ptr<const Model>& model, int first_block, int n_ctx,
                                        int n_seq, int n_threads);

// The residual stream entering block `first_block` for packed token sequences (at most the
// session's n_seq of them): the frozen session's output, or the token embeddings without one.
void frozen_states(Session* frozen, const Model& model, std::span<const std::vector<int32_t>> seqs, float* out);

// The model's blocks [head.first_block, blocks used) and output norm as a trainable model
// holding the head's fine-tuned values (head.blocks; none yet: the backbone's).
// With `lora`, the blocks' weights stay frozen and adapters train beside them.
std::shared_ptr<train::LanguageModel> tuned_blocks(const std::shared_ptr<const Model>& model, const Head& head,
                                                   int n_threads, const train::LoraOptions& lora = {});

// Final hidden states (after the output norm, BOS row included) of packed token sequences:
// the model's first head.first_block blocks (`frozen`, from frozen_session), then the
// fine-tuned ones (`tuned`, from tuned_blocks).
void tuned_states(Session* frozen, const Model& model, train::LanguageModel& tuned,
                  std::span<const std::vector<int32_t>> seqs, float* out);

}  // namespace edgelm::intent
