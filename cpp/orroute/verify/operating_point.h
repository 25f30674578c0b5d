// Budget-targeted operating points: "spend at most / about X% of the strong model's cost". From a
// calibration set (prompts the model being calibrated did not train on), pick the escalation
// threshold on a score (escalate when score >= threshold; e.g. predicted gain per dollar, or the
// escalation model's probability) whose cost share is closest to / at most the requested share,
// and report the share with a bootstrap interval over the calibration prompts. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace orroute {

enum class ShareMode : uint8_t {
  kTarget,  // the threshold whose calibration share is closest to the requested one
  kAtMost,  // the largest calibration share not above the requested one
};

struct OperatingPoint {
  double threshold = std::numeric_limits<double>::infinity();  // escalate iff score >= threshold
  double share = 0.0;       // cost share on the calibration set at that threshold
  double share_lo = 0.0;    // bootstrap interval of that share (`level`, e.g. 90%)
  double share_hi = 0.0;
  double escalated = 0.0;   // share of calibration prompts escalated
  bool met = true;          // kAtMost: false when even never escalating costs more than asked
  int32_t rows = 0;
};

// Rows i = calibration prompts: `score` (escalate iff >= threshold), `base` cost when not
// escalated (the cheap path), `escalated` cost when escalated (a cascade: cheap + strong; a
// router: strong only), `reference` cost of the reference (the strong model alone). Share =
// sum(cost) / sum(reference). Throws InvalidArgument if lengths differ, the set is empty, a value
// is not finite, the reference sum is not positive, or `share`/`level` is outside (0, 1]/(0, 1).
OperatingPoint choose_operating_point(const std::vector<double>& score,
                                      const std::vector<double>& base,
                                      const std::vector<double>& escalated,
                                      const std::vector<double>& reference, double share,
                                      ShareMode mode, int32_t bootstrap = 1000, uint64_t seed = 0,
                                      double level = 0.9);

// The cost share of the rows at a fixed threshold (same rules as above).
double cost_share_at(const std::vector<double>& score, const std::vector<double>& base,
                     const std::vector<double>& escalated, const std::vector<double>& reference,
                     double threshold);

// The same choice over a grid of router settings (e.g. cost weights): `cost[g][i]` = cost of
// prompt i under setting g. Returns the index of the chosen setting and fills `point` (threshold =
// the index as a double). Throws like choose_operating_point.
size_t choose_grid_point(const std::vector<std::vector<double>>& cost,
                         const std::vector<double>& reference, double share, ShareMode mode,
                         OperatingPoint* point, int32_t bootstrap = 1000, uint64_t seed = 0,
                         double level = 0.9);

}  // namespace orroute
