// The classifier configuration every worker gets, from the options (the policy's
// `limits` are copied into them at start: apply_policy_limits, control/options.h)
// and the headers the policy captures. Pure: no EAL, unit-tested on its own.
#pragma once

#include <string>
#include <vector>

#include "classify/classifier.h"
#include "control/options.h"

namespace aiqos {

// Throws std::runtime_error on a header that cannot be captured (not lowercase, too many, a
// credential without a salt). `capture_out` receives every captured header, in order.
ClassifierConfig classifier_config(const Options& o, const std::vector<std::string>& extra_capture,
                                   std::vector<std::string>& capture_out);

}  // namespace aiqos
