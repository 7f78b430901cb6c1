// What the extension's source files share: the model handle its classes hold and the way an
// error becomes a Python exception.
#pragma once
#include <nanobind/nanobind.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "edgelm/chat_template.hpp"
#include "edgelm/grammar.hpp"
#include "edgelm/model.hpp"
#include "edgelm/tokenizer.hpp"

namespace edgelm::python {

[[noreturn]] inline void raise(PyObject* type, const std::string& msg) {
  PyErr_SetString(type, msg.c_str());
  throw nanobind::python_error();
}

// A loaded model plus what its front ends build from it once: the chat template and the
// grammar engine's token trie.
struct PyModel {
  std::shared_ptr<const edgelm::Model> model;
  std::once_flag template_once, trie_once;
  std::optional<edgelm::ChatTemplate> tmpl;
  std::shared_ptr<const edgelm::TokenTrie> trie;

  const edgelm::Tokenizer& tok() const { return model->tokenizer(); }
  const std::shared_ptr<const edgelm::TokenTrie>& token_trie() {
    std::call_once(trie_once, [&] { trie = edgelm::TokenTrie::build(tok()); });
    return trie;
  }
};

// Training and classification: finetune, distill, Classifier, train_classifier (training.cpp).
void bind_training(nanobind::module_& m);

}  // namespace edgelm::python
