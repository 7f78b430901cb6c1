// train-classifier: features from the backbone (cached), then a seeded mini-batch loop over
// the head with AdamW, clipping, ReduceLROnPlateau and early stopping; best head kept on disk.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "apps/intent/epoch_loop.hpp"
#include "apps/intent/finetune.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"

namespace edgelm::intent {

namespace {

// Inputs of the head for a data set: pooled vectors (last/mean) or token states (attention).
struct Inputs {
  const TokenStates* states = nullptr;
  std::vector<float> pooled;  // n x d when pooling is not attention
  bool prepooled = false;
};

Inputs make_inputs(const train::ClassifierHead& net, const TokenStates& s) {
  Inputs in;
  in.states = &s;
  if (net.shape().pooling == train::Pooling::Attention) return in;
  const int d = net.shape().n_embd;
  in.pooled.resize(s.size() * d);
  std::vector<float> rows;
  for (size_t i = 0; i < s.size(); ++i) {
    s.get(i, rows);
    net.pool(rows.data(), s.n_tokens(i), in.pooled.data() + i * d);
  }
  in.prepooled = true;
  return in;
}

void forward(const train::ClassifierHead& net, const Inputs& in, size_t i, std::vector<float>& rows, float* logits,
             train::ClassifierHead::Trace* tr, float dropout, train::Rng* rng) {
  if (in.prepooled) {
    net.forward_pooled(in.pooled.data() + i * net.shape().n_embd, logits, tr, dropout, rng);
  } else {
    in.states->get(i, rows);
    net.forward(rows.data(), in.states->n_tokens(i), logits, tr, dropout, rng);
  }
}

// Per-dimension mean and 1/std of what the head will pool: the pooled vectors for last/mean
// pooling, every token row for attention pooling (pooling then commutes with the affine map).
void set_standardisation(train::ClassifierHead& net, const TokenStates& s) {
  const int d = net.shape().n_embd;
  std::vector<double> sum(d, 0.0), sq(d, 0.0);
  size_t count = 0;
  std::vector<float> rows, pooled(d);
  auto add = [&](const float* v) {
    for (int k = 0; k < d; ++k) {
      sum[k] += v[k];
      sq[k] += static_cast<double>(v[k]) * v[k];
    }
    ++count;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    s.get(i, rows);
    if (net.shape().pooling == train::Pooling::Attention) {
      for (int t = 0; t < s.n_tokens(i); ++t) add(rows.data() + static_cast<size_t>(t) * d);
    } else {
      net.pool(rows.data(), s.n_tokens(i), pooled.data());  // identity statistics at this point
      add(pooled.data());
    }
  }
  for (int k = 0; k < d; ++k) {
    const double mean = sum[k] / count;
    const double var = std::max(0.0, sq[k] / count - mean * mean);
    net.in_mean[k] = static_cast<float>(mean);
    net.in_scale[k] = static_cast<float>(1.0 / std::sqrt(var + 1e-6));
  }
}

struct Eval {
  double loss = 0, acc = 0;
  std::vector<float> probs;
};

Eval evaluate(const train::ClassifierHead& net, const Inputs& in, const std::vector<int>& labels) {
  const int c = net.shape().n_class;
  Eval e;
  e.probs.resize(labels.size() * c);
  std::vector<float> rows, logits(c);
  double loss = 0;
  size_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    forward(net, in, i, rows, logits.data(), nullptr, 0.0f, nullptr);
    loss += train::softmax_cross_entropy(logits.data(), c, labels[i], nullptr);
    float* p = e.probs.data() + i * c;
    train::softmax(logits.data(), p, c);
    if (std::max_element(p, p + c) - p == labels[i]) ++right;
  }
  e.loss = loss / labels.size();
  e.acc = static_cast<double>(right) / labels.size();
  return e;
}

float parse_threshold(const std::string& s) {
  if (s == "auto") return -1;
  if (s == "none") return 0;
  try {
    size_t used = 0;
    const float v = std::stof(s, &used);
    if (used == s.size() && v >= 0 && v <= 1) return v;
  } catch (const std::exception&) {
  }
  throw Error("--oos-threshold '" + s + "' is not auto, none or a number in [0, 1]");
}
}  // namespace

ScopeMetrics scope_metrics(std::span<const float> probs, std::span<const int> labels, int n_class, int oos_index,
                           float threshold) {
  ScopeMetrics m;
  size_t in_right = 0, oos_right = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* p = probs.data() + i * n_class;
    int pred = static_cast<int>(std::max_element(p, p + n_class) - p);
    const bool says_oos = pred == oos_index || p[pred] < threshold;
    if (labels[i] == oos_index) {
      ++m.n_oos;
      oos_right += says_oos;
    } else {
      ++m.n_in;
      in_right += !says_oos && pred == labels[i];
    }
  }
  m.in_scope_acc = m.n_in ? static_cast<double>(in_right) / m.n_in : 0;
  m.oos_recall = m.n_oos ? static_cast<double>(oos_right) / m.n_oos : 0;
  m.overall_acc = labels.empty() ? 0 : static_cast<double>(in_right + oos_right) / labels.size();
  return m;
}

TrainReport train_classifier(const std::shared_ptr<const Model>& model, const std::string& train_path,
                             const std::string& val_path, const std::string& out_path, const TrainOptions& options,
                             const TrainCallbacks& cb) {
  TrainOptions o = options;
  if (o.epochs < 1 || o.epochs > 100000) throw Error("--epochs must be between 1 and 100000");
  if (o.batch_size < 1 || o.batch_size > 1 << 20) throw Error("--batch-size must be between 1 and 1048576");
  if (!(o.lr > 0) || !(o.lr < 10)) throw Error("--lr must be a positive number below 10");
  if (!(o.weight_decay >= 0) || !(o.weight_decay < 10)) throw Error("--weight-decay must be in [0, 10)");
  if (!(o.dropout >= 0) || !(o.dropout < 1)) throw Error("--dropout must be in [0, 1)");
  if (o.hidden < 0 || o.hidden > 65536) throw Error("--hidden must be between 0 and 65536");
  if (o.features.n_layers < 0) throw Error("--layers must be 0 (all blocks) or more");
  Head head;
  head.backbone_layers = early_exit(o.features.n_layers, model->config());
  const int used = head.layers_used(model->config());
  if (o.unfreeze < 0 || o.unfreeze > used)
    throw Error("--unfreeze " + std::to_string(o.unfreeze) + " is outside 0.." + std::to_string(used),
                "the classifier uses " + std::to_string(used) + " blocks of the backbone");
  if (o.lora_rank < 0) throw Error("--lora must be a positive rank");
  if (o.lora_rank > 0) {
    if (!(o.lora_alpha > 0) || !std::isfinite(o.lora_alpha)) throw Error("--lora-alpha must be a positive number");
    if (o.unfreeze == 0) o.unfreeze = used;  // adapters on every block the head reads
  }
  if (o.unfreeze > 0) {
    if (o.pooling == train::Pooling::Attention)
      throw Error("--unfreeze works with --pooling mean or last", "pass --pooling mean");
    if (!(o.block_lr >= 0) || !(o.block_lr < 1)) throw Error("--block-lr must be a positive number below 1");
    if (o.unfreeze_epochs < 1 || o.unfreeze_epochs > 100000)
      throw Error("--unfreeze-epochs must be between 1 and 100000");
  }
  const float fixed_threshold = parse_threshold(o.oos_threshold);
  if (out_path.empty()) throw Error("no output file", "pass -o head.gguf");

  const std::vector<Example> tr = read_examples(train_path);
  const std::vector<Example> va = read_examples(val_path);
  std::set<std::string> label_set;
  for (const auto& e : tr) label_set.insert(e.label);
  if (label_set.size() < 2)
    throw Error("training data '" + train_path + "' has only one label", "a classifier needs at least two labels");
  head.labels.assign(label_set.begin(), label_set.end());
  std::map<std::string, int> index;
  for (size_t i = 0; i < head.labels.size(); ++i) index[head.labels[i]] = static_cast<int>(i);
  std::vector<int> y_tr, y_va;
  std::vector<std::string> x_tr, x_va;
  for (const auto& e : tr) {
    y_tr.push_back(index.at(e.label));
    x_tr.push_back(e.text);
  }
  for (size_t i = 0; i < va.size(); ++i) {
    const auto it = index.find(va[i].label);
    if (it == index.end())
      throw Error("validation example " + std::to_string(i + 1) + " has label '" + va[i].label +
                      "' which the training data never uses",
                  "validate on the training data's labels");
    y_va.push_back(it->second);
    x_va.push_back(va[i].text);
  }

  TrainReport rep;
  rep.n_train = tr.size();
  rep.n_val = va.size();
  const auto t_feat = Clock::now();
  head.backbone_sha256 = sha256_file(model->path());
  head.backbone_name = model->config().name;
  head.templ = o.features.templ;
  auto progress = [&](const char* stage) -> ProgressFn {
    if (!cb.on_progress) return {};
    return [&cb, stage](size_t d, size_t t) { cb.on_progress(stage, d, t); };
  };
  const TokenStates s_tr = text_states(model, head.backbone_sha256, x_tr, o.features, progress("features (train)"),
                                       &rep.train_cache_hit);
  const TokenStates s_va = text_states(model, head.backbone_sha256, x_va, o.features, progress("features (val)"),
                                       &rep.val_cache_hit);
  rep.feature_seconds = seconds_since(t_feat);

  const auto t_train = Clock::now();
  const int c = static_cast<int>(head.labels.size());
  head.net = train::ClassifierHead({model->config().n_embd, o.hidden, c, o.pooling});
  train::Rng rng(o.seed);
  head.net.init(rng);
  set_standardisation(head.net, s_tr);
  const Inputs in_tr = make_inputs(head.net, s_tr);
  const Inputs in_va = make_inputs(head.net, s_va);

  std::vector<train::Param*> params = head.net.params();
  train::AdamW opt(params, {.lr = o.lr, .weight_decay = o.weight_decay});
  train::ReduceLROnPlateau sched(o.lr_factor, o.lr_patience);
  EpochLoop loop(params, {{&opt, &sched}}, o.patience, head, out_path);
  std::vector<float> rows, logits(c), dlogits(c);
  train::ClassifierHead::Trace trace;
  auto train_batch = [&](std::span<const int> batch, float scale, double& loss_sum) {
    for (const int i : batch) {
      forward(head.net, in_tr, i, rows, logits.data(), &trace, o.dropout, &rng);
      loss_sum += train::softmax_cross_entropy(logits.data(), c, y_tr[i], dlogits.data(), scale);
      head.net.backward(trace, dlogits.data());
    }
  };
  auto evaluate_val = [&](double& loss, double& acc) {
    const Eval ev = evaluate(head.net, in_va, y_va);
    loss = ev.loss;
    acc = ev.acc;
  };
  loop.run({.first_epoch = 1, .n_epochs = o.epochs, .batch_size = static_cast<size_t>(o.batch_size), .clip = o.clip,
            .progress_every = 16, .stage = "epoch", .diverged_hint = "lower --lr"},
           tr.size(), rng, train_batch, evaluate_val, cb, rep);
  loop.restore_best();
  rep.head_seconds = seconds_since(t_train);

  // Out-of-scope threshold on validation, then the final head. With --unfreeze the head above is
  // the first phase: it is fine-tuned together with the backbone's top blocks first.
  Eval ev = evaluate(head.net, in_va, y_va);
  if (o.unfreeze > 0) ev.probs = train_unfrozen(model, head, x_tr, y_tr, x_va, y_va, o, opt.lr(), cb, rep, out_path);
  const int oos = head.oos_index();
  rep.argmax = scope_metrics(ev.probs, y_va, c, oos, 0.0f);
  float chosen = fixed_threshold >= 0 ? fixed_threshold : 0.0f;
  if (fixed_threshold < 0) {
    // Candidates: every distinct top probability (a threshold just above it flips that example).
    std::vector<float> cand{0.0f};
    for (size_t i = 0; i < y_va.size(); ++i) {
      const float* p = ev.probs.data() + i * c;
      cand.push_back(std::nextafter(*std::max_element(p, p + c), 2.0f));
    }
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
    double best_acc = -1;
    for (float t : cand) {
      const ScopeMetrics m = scope_metrics(ev.probs, y_va, c, oos, t);
      if (m.overall_acc > best_acc) {
        best_acc = m.overall_acc;
        chosen = t;
      }
    }
  }
  rep.threshold = chosen;
  rep.thresholded = scope_metrics(ev.probs, y_va, c, oos, chosen);
  for (float t : {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f})
    rep.curve.push_back({t, scope_metrics(ev.probs, y_va, c, oos, t)});
  head.oos_threshold = chosen;
  save_head(head, out_path);
  rep.train_seconds = seconds_since(t_train);
  return rep;
}

}  // namespace edgelm::intent
