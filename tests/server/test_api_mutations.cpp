// Mutated request bodies: whatever arrives, parsing either succeeds or throws ApiError (a 4xx),
// never another exception or a crash (run under ASan/UBSan in CI). A deterministic stand-in for
// fuzzing the HTTP handlers' input side.
#include <gtest/gtest.h>

#include <random>

#include "server/api.hpp"

namespace edgelm::server {
namespace {

const char* const kSeeds[] = {
    R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"temperature":0.5,"stop":["\n"]})",
    R"({"messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"y"}]}],"stream":true,"stream_options":{"include_usage":true}})",
    R"({"prompt":"Once","max_tokens":4,"seed":42,"top_p":0.9,"presence_penalty":1,"frequency_penalty":-1,"n":1})",
    R"({"prompt":[1,2,3],"logit_bias":{},"top_k":5,"min_p":0.1,"repeat_penalty":1.1,"repeat_last_n":16})",
};
const char* const kFragments[] = {"null", "true", "-1", "1e999", "[]", "{}", "\"", "\\u0000", "\xff", ",", ":",
                                  "[[[[", "}}}}", "\"messages\"", "\"prompt\"", "0.0", "18446744073709551616"};

TEST(ApiMutations, EveryBodyParsesOrGetsA400) {
  std::mt19937 rng(1234);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = kSeeds[rng() % std::size(kSeeds)];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 4) {
        case 0: body[at] = static_cast<char>(rng() % 256); break;
        case 1: body.erase(at, 1 + rng() % 8); break;
        case 2: body.insert(at, kFragments[rng() % std::size(kFragments)]); break;
        case 3: body.resize(at); break;
      }
    }
    const bool chat = rng() % 2;
    try {
      parse_completion_request(body, chat);
      ++accepted;
    } catch (const ApiError& err) {
      ASSERT_EQ(err.status(), 400) << body;
      ASSERT_FALSE(std::string(err.what()).empty());
      ASSERT_NO_THROW((void)err.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      ++refused;
    } catch (const std::exception& ex) {
      FAIL() << "unexpected " << ex.what() << " for " << body;
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace edgelm::server
