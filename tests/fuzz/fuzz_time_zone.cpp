// Fuzz harness for the time zone readers: a TZif file's bytes (RFC 8536) reach TimeZone::from_tzif
// when a budget names a zone ($TZDIR chooses the directory), and its footer reaches PosixTz::parse.
// The invariants: a file is read or refused with ParseError, nothing else escapes; a TZ string is
// read or refused; a rule's offset stays within the grammar's bound (167:59:59 either way) at any
// instant; a zone read gives budget windows at any instant of 1900-2400.
//
// Standalone (build/dev/orroute_fuzz_time_zone [iterations] [seed]) it mutates TZ strings, files
// made around them, and the system's files of a few zones when present; with -fsanitize=fuzzer
// -DORROUTE_LIBFUZZER it is a libFuzzer entry point.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "../cpp/tzif_test_util.h"
#include "mutate.h"
#include "orroute/cost/posix_tz.h"
#include "orroute/cost/window.h"
#include "orroute/error.h"

using namespace orroute;

namespace {

using orroute::fuzz::fail;

constexpr int64_t kMaxOffset = 167 * 3600 + 59 * 60 + 59;
constexpr int64_t kYear = 31'556'952;  // seconds in an average Gregorian year

const int64_t kInstants[] = {INT64_MIN, -kYear * 70, -1, 0, 1'700'000'000, 2'200'000'000,
                             2'147'483'647 + kYear * 50, kYear * 300, INT64_MAX};

void check_rule(std::string_view input) {
  const std::optional<PosixTz> rule = PosixTz::parse(input);
  if (!rule) return;
  for (int64_t at : kInstants) {
    const int64_t offset = rule->offset_seconds(at);
    if (offset < -kMaxOffset || offset > kMaxOffset) fail("an offset past the grammar's bound", input);
  }
}

void check_file(std::string_view input) {
  std::shared_ptr<const TimeZone> zone;
  try {
    zone = TimeZone::from_tzif("Fuzz/Zone", input);
  } catch (const ParseError&) {
    return;
  } catch (...) {
    fail("a TZif file refused with something else than ParseError", input);
  }
  for (int64_t at = -70 * kYear; at < 430 * kYear; at += 7 * kYear + 12'345'678) {
    for (Window w : {Window::kDaily, Window::kWeekly, Window::kMonthly}) window_bounds(w, *zone, at * 1'000'000);
  }
}

void run_one(std::string_view input) {
  check_rule(input);
  check_file(input);
  check_file(test::tzif_with_footer(input));
}

// TZ strings (the footers of real zones and of the grammar's corners): the libFuzzer corpus's seeds too.
const char* const kSeeds[] = {
    "EST5EDT,M3.2.0,M11.1.0", "GMT0BST,M3.5.0/1,M10.5.0", "AEST-10AEDT,M10.1.0,M4.1.0/3",
    "<-04>4<-03>,M9.1.6/24,M4.1.6/24", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "<+01>-1",
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "EST5EDT,0/0,J365/25", "AAA3BBB,J59/167,J300", "IST-2IDT,M3.4.4/26,M10.5.0",
    "EST5EDT",
};

// The system's files of zones with unusual rules, when the system has them: the binary seeds.
std::vector<std::string> system_files() {
  std::vector<std::string> files;
  for (const char* zone : {"America/New_York", "Australia/Lord_Howe", "Africa/Casablanca", "America/Santiago"}) {
    std::ifstream in(std::string("/usr/share/zoneinfo/") + zone, std::ios::binary);
    if (in) files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return files;
}

// One more edit that knows the format: a count of the TZif header (at 20-43) made huge or small.
void tzif_count(std::string& s, size_t, std::mt19937_64& rng) {
  if (s.size() < 44) return;
  const size_t at = 20 + 4 * (rng() % 6);
  const uint32_t value = rng() % 2 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 8);
  for (int i = 0; i < 4; ++i) s[at + static_cast<size_t>(i)] = static_cast<char>(value >> (24 - 8 * i));
}

}  // namespace

#ifdef ORROUTE_LIBFUZZER
ORROUTE_LIBFUZZER_ENTRY(run_one)
#else
int main(int argc, char** argv) {
  const auto args = orroute::fuzz::driver_args(argc, argv, 100'000, 16);
  std::mt19937_64 rng(args.seed);
  std::vector<std::string> seeds(std::begin(kSeeds), std::end(kSeeds));
  for (const char* rule : kSeeds) seeds.push_back(test::tzif_with_footer(rule));
  for (std::string& file : system_files()) seeds.push_back(std::move(file));
  for (const std::string& s : seeds) run_one(s);
  for (long long i = 0; i < args.iterations; ++i) {
    run_one(orroute::fuzz::mutated(seeds[rng() % seeds.size()], rng, tzif_count));
  }
  orroute::fuzz::report_clean("fuzz_time_zone", args);
  return 0;
}
#endif
