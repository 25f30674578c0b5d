#include "orroute/route/complexity.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "orroute/ascii.h"
#include "orroute/error.h"
#include "orroute/fixed_text.h"
#include "orroute/no_destructor.h"
#include "orroute/select/features.h"
#include "orroute/text_memo.h"

namespace orroute {

const char* to_string(ComplexityTier t) noexcept {
  switch (t) {
    case ComplexityTier::kEconomy: return "economy";
    case ComplexityTier::kStandard: return "standard";
    case ComplexityTier::kPremium: return "premium";
    case ComplexityTier::kFrontier: return "frontier";
  }
  return "economy";
}

double quality_floor(ComplexityTier t) noexcept {
  // Quantiles of the bundled priors over the general-task candidates: ~25th percentile for
  // standard, ~75th for premium, ~90th for frontier; economy tasks take any model that qualifies.
  switch (t) {
    case ComplexityTier::kEconomy: return 0.0;
    case ComplexityTier::kStandard: return 0.65;
    case ComplexityTier::kPremium: return 0.80;
    case ComplexityTier::kFrontier: return 0.90;
  }
  return 0.0;
}

namespace {

// Letters, spaces and case are ASCII's (orroute/ascii.h): bytes of UTF-8 text are no letters here.
using ascii::is_alnum;
using ascii::is_alpha;
using ascii::is_space;
using ascii::lower;

// The score's weights, in the order of weighed(): the heavy cues (code, math, multi-step) can each
// carry a task to premium on their own when strong; length, depth and tools add.
constexpr std::array<std::pair<const char*, double>, 8> kWeights = {{
    {"length", 0.15}, {"code", 0.25}, {"math", 0.25}, {"multi_step", 0.25},
    {"question", 0.15}, {"tools", 0.10}, {"depth", 0.10}, {"output", 0.05}}};

std::array<double, 8> weighed(const ComplexityFeatures& f) {
  return {f.length, f.code, f.math, f.multi_step, f.question, f.tools, f.depth, f.output};
}

// Strong heavy cues (code, math, multi-step at 0.5 or more): two or more compound.
int strong_cues(const ComplexityFeatures& f) {
  int strong = 0;
  for (double v : {f.code, f.math, f.multi_step}) strong += v >= 0.5 ? 1 : 0;
  return strong;
}

// Whether `text` holds `cue` (lower case) at `i`, ignoring ASCII case.
bool cue_at(std::string_view text, size_t i, std::string_view cue) {
  if (text.size() - i < cue.size()) return false;
  for (size_t k = 0; k < cue.size(); ++k) {
    if (lower(static_cast<unsigned char>(text[i + k])) != cue[k]) return false;
  }
  return true;
}

// The families of cue words the analyzer asks about. A cue counts where it starts a word (every
// cue starts with a letter, so "class" is not found in "subclass"); it may run on into the word
// ("summar" finds "summarize").
enum CueFamily : uint32_t {
  kWhyHow = 1u << 0,
  kDeep = 1u << 1,
  kTranslate = 1u << 2,
  kSummary = 1u << 3,
  kExtraction = 1u << 4,
  kCreative = 1u << 5,
};

struct CueWord {
  std::string_view text;
  uint32_t family;
};

constexpr CueWord kCueWords[] = {
    {"why", kWhyHow},        {"how ", kWhyHow},       {"explain", kWhyHow},    {"prove", kDeep},
    {"design", kDeep},       {"analyze", kDeep},      {"analyse", kDeep},      {"optimize", kDeep},
    {"derive", kDeep},       {"critique", kDeep},     {"research", kDeep},     {"translate", kTranslate},
    {"summar", kSummary},    {"tl;dr", kSummary},     {"tldr", kSummary},      {"extract", kExtraction},
    {"classify", kExtraction}, {"json", kExtraction}, {"categorize", kExtraction}, {"label", kExtraction},
    {"story", kCreative},    {"poem", kCreative},     {"haiku", kCreative},    {"essay", kCreative},
    {"lyrics", kCreative},   {"creative", kCreative}, {"slogan", kCreative}};

// The cue families found in `text`, in one pass: only word starts are compared, each with the
// cues of its first letter.
uint32_t cue_families(std::string_view text) {
  static const NoDestructor<std::array<std::vector<CueWord>, 26>> letters([] {
    std::array<std::vector<CueWord>, 26> out;
    for (const CueWord& w : kCueWords) out[static_cast<size_t>(w.text[0] - 'a')].push_back(w);
    return out;
  }());
  const auto& by_letter = *letters;
  uint32_t found = 0;
  bool after_alnum = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool word_start = !after_alnum && is_alpha(c);
    after_alnum = is_alnum(c);
    if (!word_start) continue;
    for (const CueWord& w : by_letter[static_cast<size_t>(lower(c) - 'a')]) {
      if ((found & w.family) == 0 && cue_at(text, i, w.text)) found |= w.family;
    }
  }
  return found;
}

// How a lookup or a small transformation opens (lower case, each non-empty).
constexpr std::string_view kLookupOpenings[] = {"what is", "what's", "who ", "when ", "where ", "define",
                                                "translate", "list ", "name ", "hi", "hello", "thanks",
                                                "is ", "are ", "yes", "no"};

// Whether `text`, past its leading spaces, opens with one of `cues` (lower case, non-empty),
// ignoring ASCII case: only the cues of its first letter are compared.
bool starts_with_any(std::string_view text, std::span<const std::string_view> cues) {
  size_t i = 0;
  while (i < text.size() && is_space(static_cast<unsigned char>(text[i]))) ++i;
  if (i == text.size()) return false;
  const char first = lower(static_cast<unsigned char>(text[i]));
  for (std::string_view cue : cues) {
    if (cue[0] == first && cue_at(text, i, cue)) return true;
  }
  return false;
}

double saturate(double x, double half) { return x <= 0 ? 0 : x / (x + half); }

// What the analyzer reads from the prompt's text alone (the rest of its input is a few numbers).
struct TextReading {
  uint32_t cues = 0;
  PromptStats stats;
  bool lookup = false;  // opens like a lookup or a small transformation
};

TextReading read_text(std::string_view prompt) {
  TextReading r;
  r.cues = cue_families(prompt);
  r.stats = prompt_stats(prompt);
  r.lookup = starts_with_any(prompt, kLookupOpenings);
  return r;
}

// The reading of each long prompt, once per process: a caller that retries or resends one prompt
// (a document to summarise, an agent's tool result) pays for one pass over it. 2 MiB of texts.
TextReading reading_of(std::string_view prompt) {
  static auto* memo = new TextMemo<TextReading>(TextMemoLimits{2u << 20, 256});  // never destroyed
  return memo->get({}, prompt, read_text);
}

}  // namespace

ComplexityAnalyzer::ComplexityAnalyzer(ComplexityThresholds t) : thresholds_(t) {
  if (!(0 <= t.simple_below && t.simple_below <= t.complex_from &&
        t.complex_from <= t.frontier_from && t.frontier_from <= 1)) {
    throw InvalidArgument("complexity thresholds must satisfy 0 <= simple <= complex <= frontier <= 1");
  }
}

ComplexityTier ComplexityAnalyzer::tier_for(double score) const noexcept {
  if (score >= thresholds_.frontier_from) return ComplexityTier::kFrontier;
  if (score >= thresholds_.complex_from) return ComplexityTier::kPremium;
  if (score >= thresholds_.simple_below) return ComplexityTier::kStandard;
  return ComplexityTier::kEconomy;
}

Complexity ComplexityAnalyzer::analyze(const ComplexityInput& in) const {
  const TextReading text = reading_of(in.prompt);
  const uint32_t cues = text.cues;
  ComplexityFeatures f;

  const double tokens = in.prompt_tokens >= 0 ? static_cast<double>(in.prompt_tokens)
                                              : static_cast<double>(in.prompt.size()) / 4.0;
  // 50 tokens or fewer: 0; 8000 or more: 1; logarithmic in between.
  f.length = std::clamp(std::log(std::max(tokens, 1.0) / 50.0) / std::log(8000.0 / 50.0), 0.0, 1.0);

  // Code, math and multi-step cues come from the learned router's prompt statistics, so both
  // routers read a prompt the same way.
  const PromptStats& st = text.stats;
  f.code = std::min(1.0, 0.3 * std::min(st.code_fences, 2) + 0.7 * saturate(st.code_cues, 4));
  f.math = saturate(st.math_cues, 3);
  f.multi_step = std::min(1.0, saturate(st.multistep_cues, 2) + 0.4 * saturate(st.list_items, 4));

  // Question type: lookups and small transformations are easy; "why/how" asks for reasoning;
  // design / proof / analysis asks for the most.
  const bool lookup = text.lookup;
  const bool why_how = (cues & kWhyHow) != 0;
  const bool deep = (cues & kDeep) != 0;
  f.question = deep ? 1.0 : why_how ? 0.6 : lookup ? 0.0 : 0.3;

  f.tools = in.tools <= 0 ? 0.0 : std::min(1.0, 0.5 + 0.1 * in.tools);
  f.depth = saturate(in.prior_turns, 10);
  f.output = in.max_output_tokens <= 0
                 ? 0.0
                 : std::clamp(std::log(static_cast<double>(in.max_output_tokens) / 256.0) /
                                  std::log(16384.0 / 256.0),
                              0.0, 1.0);

  // Weighted sum: the heavy cues (code, math, multi-step) can each carry a task to premium on
  // their own when strong; length, depth and tools add.
  const std::array<double, 8> values = weighed(f);
  double score = 0;
  for (size_t i = 0; i < values.size(); ++i) score += kWeights[i].second * values[i];
  // Several strong cues together compound (coding + multi-step design is harder than either).
  const int strong = strong_cues(f);
  if (strong >= 2) score += 0.15 * (strong - 1);
  Complexity out;
  out.score = std::clamp(score, 0.0, 1.0);
  out.tier = tier_for(out.score);
  out.features = f;

  // Task type: the caller's word wins; otherwise the strongest cue.
  if (!in.declared_type.empty() && in.declared_type != "general") {
    out.task_type = std::string(in.declared_type);
  } else if (f.code >= 0.4 && f.code >= f.math) {
    out.task_type = "coding";
  } else if (f.math >= 0.4) {
    out.task_type = "math";
  } else if (cues & kTranslate) {
    out.task_type = "translation";
  } else if (cues & kSummary) {
    out.task_type = "summarization";
  } else if (cues & kExtraction) {
    out.task_type = "extraction";
  } else if (cues & kCreative) {
    out.task_type = "creative";
  } else if (f.multi_step >= 0.4 || deep || why_how) {
    out.task_type = "reasoning";
  } else if (tokens < 20 && lookup) {
    out.task_type = "chat";
  } else {
    out.task_type = "general";
  }
  return out;
}

std::vector<std::string> complexity_reasons(const Complexity& c) {
  const ComplexityFeatures& f = c.features;
  std::vector<std::string> out;
  out.reserve(4);
  out.push_back("task type: " + c.task_type);
  const std::array<double, 8> values = weighed(f);
  for (size_t i = 0; i < values.size(); ++i) {
    if (kWeights[i].second * values[i] >= 0.04) {
      out.push_back(std::string(kWeights[i].first) + " " + fixed_text(values[i], 2) + " (+" +
                    fixed_text(kWeights[i].second * values[i], 2) + ")");
    }
  }
  // The question feature is 0 exactly for a lookup that asks neither why/how nor for depth.
  if (f.question == 0.0) out.emplace_back("simple lookup question");
  if (strong_cues(f) >= 2) out.emplace_back("several strong cues combined");
  return out;
}

std::string complexity_line(const Complexity& c) {
  return "complexity " + fixed_text(c.score, 6).substr(0, 4) + " -> " + to_string(c.tier);
}

}  // namespace orroute
