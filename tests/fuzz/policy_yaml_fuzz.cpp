// The policy loader (yaml-cpp + validation) over arbitrary text: it must
// return a policy or errors, never throw or crash, and every error must carry
// a message and a position inside the text (or none).
#include <algorithm>
#include <string>
#include <string_view>

#include "control/policy_yaml.h"
#include "fuzz_input.h"

using namespace aiqos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;  // a policy file is small; keep the fuzzer fast
  std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadResult r = load_policy_string(text, "fuzz.yaml");
  FUZZ_CHECK(r.ok() == r.errors.empty());
  int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  for (const PolicyError& e : r.errors) {
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.line >= 0 && e.line <= lines + 1);
    FUZZ_CHECK(!e.format().empty());
  }
  (void)r.format_errors();
  return 0;
}
