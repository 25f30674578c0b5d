// What a verifier says about one model answer. Verifiers never throw on hostile answers: an answer
// they cannot read is a failed or abstained verdict, never an exception.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace orroute {

enum class VerdictOutcome : uint8_t {
  kPass,     // the check ran and the answer satisfied it
  kFail,     // the check ran and the answer violated it: escalate
  kAbstain,  // nothing to check (no calculation, no JSON expected here ...): no evidence either way
};

// `score` in [0, 1] is the verifier's confidence that the answer is acceptable (pass 1, fail 0 for
// hard checks; a share for soft ones such as self-consistency). `reason` is a short human-readable
// explanation (never contains the whole answer; at most ~200 bytes).
struct Verdict {
  VerdictOutcome outcome = VerdictOutcome::kAbstain;
  double score = 0.5;
  std::string reason;

  static Verdict pass(std::string why = {}) { return {VerdictOutcome::kPass, 1.0, std::move(why)}; }
  static Verdict fail(std::string why) { return {VerdictOutcome::kFail, 0.0, std::move(why)}; }
  static Verdict abstain(std::string why) {
    return {VerdictOutcome::kAbstain, 0.5, std::move(why)};
  }
};

// Cuts `text` to at most `max_bytes` bytes for a reason string, on a UTF-8 boundary, adding "...".
std::string clip_for_reason(std::string_view text, size_t max_bytes = 60);

}  // namespace orroute
