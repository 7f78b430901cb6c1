#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"

namespace edgelm::jinja {

ArgReader::ArgReader(std::string_view function, CallArgs& args,
                     std::vector<std::string_view> params, uint32_t pos)
    : function_(function), params_(std::move(params)), bound_(params_.size(), nullptr), pos_(pos) {
  if (args.positional.size() > params_.size()) {
    fail_runtime(pos, function_ + "() takes at most " + std::to_string(params_.size()) +
                          " argument(s) (" + std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound_[i] = &args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    size_t i = 0;
    while (i < params_.size() && params_[i] != name) ++i;
    if (i == params_.size()) {
      fail_runtime(pos, function_ + "() got an unexpected keyword argument '" + name + "'");
    }
    if (bound_[i] != nullptr) {
      fail_runtime(pos, function_ + "() got multiple values for argument '" + name + "'");
    }
    bound_[i] = &value;
  }
}

int64_t ArgReader::integer(size_t i, int64_t fallback) const {
  const Value* v = bound_[i];
  if (v == nullptr) return fallback;
  if (!v->is_integral()) {
    fail_runtime(pos_, function_ + "(): argument '" + std::string(params_[i]) +
                           "' must be an integer, not " + type_name(*v));
  }
  return v->as_int();
}

bool ArgReader::boolean(size_t i, bool fallback) const {
  const Value* v = bound_[i];
  return v == nullptr ? fallback : truthy(*v);
}

std::string ArgReader::string(size_t i, const std::string& fallback) const {
  const Value* v = bound_[i];
  if (v == nullptr) return fallback;
  if (!v->is_string()) {
    fail_runtime(pos_, function_ + "(): argument '" + std::string(params_[i]) +
                           "' must be a string, not " + type_name(*v));
  }
  return v->as_string();
}

}  // namespace edgelm::jinja
