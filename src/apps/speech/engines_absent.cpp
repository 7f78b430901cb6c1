// This build has no speech engines (PocketSphinx or eSpeak NG were not found at configure time).
#include "edgelm/error.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::speech {
namespace {
Error not_built() {
  return Error("speech support was not built into this edgelm",
               "install libpocketsphinx-dev, pocketsphinx-en-us and libespeak-ng-dev (scripts/install-deps.sh), "
               "then configure again with -DEDGELM_SPEECH=ON");
}
}  // namespace

bool speech_built() { return false; }
std::unique_ptr<Recognizer> make_pocketsphinx(const PocketSphinxOptions&) { throw not_built(); }
std::unique_ptr<Synthesizer> make_espeak(const EspeakOptions&) { throw not_built(); }

}  // namespace edgelm::speech
