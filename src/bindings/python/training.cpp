// The extension's training and classification front end: finetune and distill with a Python
// callback per step, epoch and validation; the intent classifier and its training. Options
// arrive as a dict (the Python wrappers in python/edgelm/training.py spell them out as keyword
// arguments); an unknown option is a TypeError.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common.hpp"
#include "edgelm/distill.hpp"
#include "edgelm/error.hpp"
#include "edgelm/finetune.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/train.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace edgelm::python {
namespace {

void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) raise(PyExc_FileNotFoundError, std::string(what) + " " + path + " does not exist");
}

// Reads a dict of options into fields by name; what is left over is a TypeError.
class Options {
 public:
  explicit Options(const nb::dict& d) : d_(d) {}
  template <class T>
  void get(const char* key, T& field) {
    if (!d_.contains(key)) return;
    try {
      field = nb::cast<T>(d_[key]);
    } catch (const std::exception&) {
      raise(PyExc_TypeError, std::string("option ") + key + " has the wrong type");
    }
    used_.push_back(key);
  }
  void finish() const {
    for (auto [k, v] : d_) {
      const std::string key = nb::cast<std::string>(nb::str(k));
      bool known = false;
      for (const std::string& u : used_) known |= u == key;
      if (!known) raise(PyExc_TypeError, "unexpected option '" + key + "'");
    }
  }

 private:
  const nb::dict& d_;
  std::vector<std::string> used_;
};

// The options finetune and distill share (FinetuneOptions), and the data's (LmDataOptions).
void training_options(Options& in, FinetuneOptions& o, LmDataOptions& data) {
  in.get("epochs", o.epochs);
  in.get("lr", o.lr);
  in.get("batch", o.batch);
  in.get("grad_accum", o.grad_accum);
  in.get("schedule", o.schedule);
  in.get("plateau_factor", o.plateau_factor);
  in.get("plateau_patience", o.plateau_patience);
  in.get("plateau_threshold", o.plateau_threshold);
  in.get("plateau_cooldown", o.plateau_cooldown);
  in.get("plateau_min_lr", o.plateau_min_lr);
  in.get("warmup", o.warmup);
  in.get("clip", o.clip);
  in.get("weight_decay", o.weight_decay);
  in.get("seed", o.seed);
  in.get("n_threads", o.n_threads);
  in.get("f16", o.f16);
  in.get("recompute", o.recompute);
  in.get("eval_every", o.eval_every);
  in.get("patience", o.patience);
  in.get("checkpoint", o.checkpoint);
  in.get("resume", o.resume);
  in.get("n_ctx", data.n_ctx);
  in.get("chat_format", data.chat_format);
}

// Callbacks into Python from a run with the GIL released. Each takes the GIL, checks for a
// pending signal (Ctrl-C) and calls the Python function; a Python exception stops the run: it
// is kept, the C++ run unwinds with Stop, and raise_if_failed() re-raises it with the GIL held.
class Callbacks {
 public:
  struct Stop {};

  Callbacks(nb::object on_step, nb::object on_epoch, nb::object on_eval)
      : on_step_(std::move(on_step)), on_epoch_(std::move(on_epoch)), on_eval_(std::move(on_eval)) {}

  FinetuneCallbacks finetune() {
    FinetuneCallbacks cb;
    // Always set, so that Ctrl-C is seen after every update even without a Python callback.
    cb.on_step = [this](int64_t done, int64_t total, double loss) {
      call([&] {
        if (!on_step_.is_none()) on_step_(done, total, loss);
      });
    };
    cb.on_epoch = [this](const FinetuneEpoch& e) {
      call([&] {
        if (!on_epoch_.is_none()) on_epoch_(epoch_dict(e));
      });
    };
    cb.on_eval = [this](const FinetuneEval& e) {
      call([&] {
        if (!on_eval_.is_none()) on_eval_(eval_dict(e));
      });
    };
    return cb;
  }

  // Runs f with the GIL held after a signal check; throws Stop when either raised.
  template <class F>
  void call(F&& f) {
    nb::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      f();
      return;
    } catch (nb::python_error& e) {
      failure_.emplace(std::move(e));
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      failure_.emplace();
    }
    throw Stop{};
  }

  void raise_if_failed() {
    if (failure_) {
      nb::python_error e = std::move(*failure_);
      failure_.reset();
      throw e;
    }
  }

  static nb::dict epoch_dict(const FinetuneEpoch& e) {
    nb::dict d;
    d["epoch"] = e.epoch, d["train_loss"] = e.train_loss, d["val_loss"] = e.val_loss;
    d["seconds"] = e.seconds, d["tokens_per_second"] = e.tokens_per_second;
    return d;
  }
  static nb::dict eval_dict(const FinetuneEval& e) {
    nb::dict d;
    d["update"] = e.update, d["epoch"] = e.epoch, d["val_loss"] = e.val_loss, d["lr"] = e.lr;
    return d;
  }

 private:
  nb::object on_step_, on_epoch_, on_eval_;
  std::optional<nb::python_error> failure_;
};

nb::dict report_dict(const FinetuneReport& r) {
  nb::dict d;
  d["initial_val_loss"] = r.initial_val_loss;
  nb::list epochs, evals;
  for (const auto& e : r.epochs) epochs.append(Callbacks::epoch_dict(e));
  for (const auto& e : r.evals) evals.append(Callbacks::eval_dict(e));
  d["epochs"] = epochs, d["evals"] = evals;
  d["updates"] = r.updates, d["tokens_trained"] = r.tokens_trained, d["stopped_early"] = r.stopped_early;
  return d;
}

std::vector<LmExample> read_data(const Model& model, const std::optional<std::string>& path, const LmDataOptions& o,
                                 const char* what) {
  if (!path) return {};
  require_file(*path, what);
  try {
    nb::gil_scoped_release nogil;
    return load_lm_data(model, *path, o);
  } catch (const Error& e) {
    raise(PyExc_ValueError, e.message());
  }
}

// Runs `run` (a training call) with the GIL released and Python callbacks; Python exceptions
// from a callback (KeyboardInterrupt included) come back as they were raised.
template <class Run>
auto with_callbacks(Callbacks& cbs, Run&& run) -> decltype(run()) {
  try {
    nb::gil_scoped_release nogil;
    return run();
  } catch (const Callbacks::Stop&) {
    cbs.raise_if_failed();
    throw;  // not reached: Stop is thrown only with a failure kept
  }
}

nb::dict finetune_py(std::shared_ptr<PyModel> model, const std::string& train, const std::string& output,
                     const std::optional<std::string>& val, const nb::dict& options, nb::object on_step,
                     nb::object on_epoch, nb::object on_eval) {
  FinetuneOptions o;
  LmDataOptions data;
  Options in(options);
  training_options(in, o, data);
  in.get("lora_rank", o.lora.rank);
  in.get("lora_alpha", o.lora.alpha);
  in.get("lora_dropout", o.lora.dropout);
  in.get("lora_targets", o.lora.targets);
  in.finish();
  const auto train_data = read_data(*model->model, train, data, "training data");
  const auto val_data = read_data(*model->model, val, data, "validation data");
  Callbacks cbs(std::move(on_step), std::move(on_epoch), std::move(on_eval));
  const FinetuneReport r = with_callbacks(cbs, [&] {
    return edgelm::finetune(model->model, train_data, val_data, output, o, cbs.finetune());
  });
  return report_dict(r);
}

nb::dict distill_py(std::shared_ptr<PyModel> teacher, const std::string& train, const std::string& output,
                    int prune_layers, const std::optional<std::string>& val, const nb::dict& options, nb::object on_step,
                    nb::object on_epoch, nb::object on_eval, nb::object on_teacher_progress) {
  DistillOptions o;
  o.prune_layers = prune_layers;
  o.train.lr = 1e-4f;  // edgelm distill's defaults
  LmDataOptions data;
  Options in(options);
  training_options(in, o.train, data);
  in.get("alpha", o.train.distill.alpha);
  in.get("reverse", o.train.distill.reverse);
  in.get("t_squared", o.train.distill.t_squared);
  in.get("temperature", o.teacher.temperature);
  in.get("top_k", o.teacher.top_k);
  in.get("cache", o.teacher.cache);
  in.finish();
  o.n_ctx = data.n_ctx;
  const auto train_data = read_data(*teacher->model, train, data, "training data");
  const auto val_data = read_data(*teacher->model, val, data, "validation data");
  Callbacks cbs(std::move(on_step), std::move(on_epoch), std::move(on_eval));
  DistillCallbacks cb;
  cb.train = cbs.finetune();
  cb.on_teacher_progress = [&](size_t done, size_t total) {
    cbs.call([&] {
      if (!on_teacher_progress.is_none()) on_teacher_progress(done, total);
    });
  };
  const DistillReport r = with_callbacks(cbs, [&] {
    return edgelm::distill(teacher->model, train_data, val_data, output, std::move(o), cb);
  });
  nb::dict d = r.trained ? report_dict(r.train) : nb::dict();
  nb::list importance;
  for (double x : r.importance) importance.append(x);
  d["importance"] = importance;
  d["dropped"] = r.dropped;
  d["student_blocks"] = r.student_blocks;
  d["student_params"] = r.student_params;
  d["trained"] = r.trained;
  return d;
}

// A classifier serves one call at a time (its backbone session is not shared).
struct PyClassifier {
  std::shared_ptr<PyModel> model;
  std::unique_ptr<intent::Classifier> c;
  std::mutex mu;
};

nb::dict prediction_dict(const intent::Prediction& p) {
  nb::dict d;
  d["intent"] = p.intent, d["confidence"] = p.confidence, d["oos"] = p.oos;
  nb::list top;
  for (const auto& r : p.top) top.append(nb::make_tuple(r.label, r.prob));
  d["top"] = top;
  return d;
}

void check_top_k(int top_k) {
  if (top_k < 1) raise(PyExc_ValueError, "top_k must be at least 1, not " + std::to_string(top_k));
}

nb::dict scope_dict(const intent::ScopeMetrics& m) {
  nb::dict d;
  d["in_scope_acc"] = m.in_scope_acc, d["oos_recall"] = m.oos_recall, d["overall_acc"] = m.overall_acc;
  d["n_in"] = m.n_in, d["n_oos"] = m.n_oos;
  return d;
}

nb::dict train_classifier_py(std::shared_ptr<PyModel> model, const std::string& train, const std::string& val,
                             const std::string& output, const nb::dict& options, nb::object on_epoch) {
  intent::TrainOptions o;
  Options in(options);
  std::string pooling = train::pooling_name(o.pooling);
  in.get("pooling", pooling);
  in.get("hidden", o.hidden);
  in.get("epochs", o.epochs);
  in.get("lr", o.lr);
  in.get("weight_decay", o.weight_decay);
  in.get("batch_size", o.batch_size);
  in.get("seed", o.seed);
  in.get("patience", o.patience);
  in.get("lr_patience", o.lr_patience);
  in.get("lr_factor", o.lr_factor);
  in.get("clip", o.clip);
  in.get("dropout", o.dropout);
  in.get("oos_threshold", o.oos_threshold);
  in.get("unfreeze", o.unfreeze);
  in.get("unfreeze_epochs", o.unfreeze_epochs);
  in.get("block_lr", o.block_lr);
  in.get("lora_rank", o.lora_rank);
  in.get("lora_alpha", o.lora_alpha);
  in.get("lora_targets", o.lora_targets);
  in.get("template", o.features.templ);
  in.get("n_threads", o.features.n_threads);
  in.get("n_layers", o.features.n_layers);
  in.get("cache_dir", o.features.cache_dir);
  in.finish();
  try {
    o.pooling = train::parse_pooling(pooling);
  } catch (const Error& e) {
    raise(PyExc_ValueError, e.message());
  }
  require_file(train, "training data");
  require_file(val, "validation data");
  Callbacks cbs{nb::none(), nb::none(), nb::none()};
  intent::TrainCallbacks cb;
  cb.on_epoch = [&](const intent::EpochStats& e) {
    cbs.call([&] {
      if (on_epoch.is_none()) return;
      nb::dict d;
      d["epoch"] = e.epoch, d["train_loss"] = e.train_loss, d["val_loss"] = e.val_loss, d["val_acc"] = e.val_acc;
      d["lr"] = e.lr, d["seconds"] = e.seconds, d["best"] = e.best;
      on_epoch(d);
    });
  };
  cb.on_progress = [&](const char*, size_t, size_t) { cbs.call([] {}); };  // Ctrl-C while features are computed
  const intent::TrainReport r =
      with_callbacks(cbs, [&] { return intent::train_classifier(model->model, train, val, output, o, cb); });
  nb::dict d;
  d["best_epoch"] = r.best_epoch, d["best_val_loss"] = r.best_val_loss;
  d["argmax"] = scope_dict(r.argmax), d["thresholded"] = scope_dict(r.thresholded), d["threshold"] = r.threshold;
  d["epochs"] = r.epochs.size(), d["n_train"] = r.n_train, d["n_val"] = r.n_val;
  d["feature_seconds"] = r.feature_seconds, d["train_seconds"] = r.train_seconds;
  return d;
}

}  // namespace

void bind_training(nb::module_& m) {
  m.def("finetune", &finetune_py, "model"_a, "train"_a, "output"_a, "val"_a = nb::none(), "options"_a = nb::dict(),
        "on_step"_a = nb::none(), "on_epoch"_a = nb::none(), "on_eval"_a = nb::none(),
        "Fine-tunes every weight (or LoRA adapters, options['lora_rank'] > 0) on JSON Lines or text data and "
        "writes the model (or adapter) GGUF; returns the report. Use edgelm.finetune (keyword arguments).");
  m.def("distill", &distill_py, "teacher"_a, "train"_a, "output"_a, "prune_layers"_a, "val"_a = nb::none(),
        "options"_a = nb::dict(), "on_step"_a = nb::none(), "on_epoch"_a = nb::none(), "on_eval"_a = nb::none(),
        "on_teacher_progress"_a = nb::none(),
        "A student pruned from the teacher, trained to mimic it (edgelm distill); returns the report. Use "
        "edgelm.distill (keyword arguments).");
  m.def("train_classifier", &train_classifier_py, "model"_a, "train"_a, "val"_a, "output"_a,
        "options"_a = nb::dict(), "on_epoch"_a = nb::none(),
        "Trains an intent head on the model's features (edgelm intent train); returns the report. Use "
        "edgelm.train_classifier (keyword arguments).");

  nb::class_<PyClassifier>(m, "Classifier", "An intent head bound to its backbone model, ready to classify text.")
      .def(
          "__init__",
          [](PyClassifier* self, std::shared_ptr<PyModel> model, const std::string& head_path, int n_threads,
             int max_batch) {
            require_file(head_path, "classifier head");
            if (n_threads < 0) raise(PyExc_ValueError, "n_threads must be 0 (all cores) or more");
            if (max_batch < 1) raise(PyExc_ValueError, "max_batch must be at least 1");
            std::unique_ptr<intent::Classifier> c;
            try {
              nb::gil_scoped_release nogil;
              c = std::make_unique<intent::Classifier>(model->model, head_path, n_threads, max_batch);
            } catch (const Error& e) {
              raise(PyExc_ValueError, e.message());
            }
            new (self) PyClassifier{std::move(model), std::move(c), {}};
          },
          "model"_a, "head_path"_a, "n_threads"_a = 1, "max_batch"_a = 16,
          "Loads the head (a GGUF written by edgelm intent train) and checks it was trained on this model.")
      .def_prop_ro("labels", [](const PyClassifier& c) { return c.c->head().labels; })
      .def_prop_ro("oos_threshold", [](const PyClassifier& c) { return c.c->head().oos_threshold; })
      .def(
          "classify",
          [](PyClassifier& c, const std::string& text, int top_k) {
            check_top_k(top_k);
            intent::Prediction p;
            try {
              nb::gil_scoped_release nogil;
              std::lock_guard lock(c.mu);
              p = c.c->classify(text, top_k);
            } catch (const Error& e) {
              raise(PyExc_ValueError, e.message());
            }
            return prediction_dict(p);
          },
          "text"_a, "top_k"_a = 1,
          "{'intent', 'confidence', 'oos', 'top': [(label, probability), ...]}; intent is 'oos' when the top "
          "probability is below the head's threshold.")
      .def(
          "classify_batch",
          [](PyClassifier& c, const std::vector<std::string>& texts, int top_k) {
            check_top_k(top_k);
            std::vector<intent::Prediction> ps;
            try {
              nb::gil_scoped_release nogil;
              std::lock_guard lock(c.mu);
              ps = c.c->classify_batch(texts, top_k);
            } catch (const Error& e) {
              raise(PyExc_ValueError, e.message());
            }
            nb::list out;
            for (const auto& p : ps) out.append(prediction_dict(p));
            return out;
          },
          "texts"_a, "top_k"_a = 1, "classify() of several texts, run in batches: one dict per text.");
}

}  // namespace edgelm::python
