#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "orroute/error.h"
#include "orroute/select/features.h"

using orroute::FeatureConfig;
using orroute::PromptFeaturizer;

TEST_CASE("prompt features are deterministic, sorted and bounded", "[features]") {
  const PromptFeaturizer f;
  const std::string prompt = "Write a Python function that returns the n-th Fibonacci number.";
  const auto a = f.features(prompt);
  const auto b = PromptFeaturizer().features(prompt);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].index == b[i].index);
    REQUIRE(a[i].value == b[i].value);
  }
  REQUIRE(std::is_sorted(a.begin(), a.end(),
                         [](const auto& x, const auto& y) { return x.index < y.index; }));
  REQUIRE(std::adjacent_find(a.begin(), a.end(), [](const auto& x, const auto& y) {
            return x.index == y.index;
          }) == a.end());
  for (const auto& x : a) {
    REQUIRE(x.index < f.dim());
    REQUIRE(std::isfinite(x.value));
  }
}

TEST_CASE("prompt features depend on the text but not on letter case or spacing", "[features]") {
  FeatureConfig no_structure;
  no_structure.structure = false;
  const PromptFeaturizer f(no_structure);
  const auto a = f.features("What is the capital of France?");
  const auto b = f.features("what  is the CAPITAL of france?");
  const auto c = f.features("Implement quicksort in C++ with templates.");
  auto same = [](const auto& x, const auto& y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](auto p, auto q) {
             return p.index == q.index && std::abs(p.value - q.value) < 1e-6f;
           });
  };
  REQUIRE(same(a, b));
  REQUIRE_FALSE(same(a, c));
}

TEST_CASE("n-gram features have unit norm per family", "[features]") {
  FeatureConfig words_only;
  words_only.structure = false;
  words_only.char_ngram_min = 0;
  const auto x = PromptFeaturizer(words_only).features("one two three two one");
  double norm2 = 0;
  for (const auto& f : x) norm2 += static_cast<double>(f.value) * f.value;
  REQUIRE(norm2 == Approx(1.0).epsilon(1e-5));
  REQUIRE(PromptFeaturizer(words_only).features("").empty());
}

TEST_CASE("prompt stats read length, code, math and multi-step cues", "[features]") {
  const auto plain = orroute::prompt_stats("Hello there.");
  REQUIRE(plain.chars == 12);
  REQUIRE(plain.words == 2);
  REQUIRE(plain.sentences == 1);
  REQUIRE(plain.code_cues == 0);

  const auto code = orroute::prompt_stats("```python\ndef f(x):\n    return x == 1\n```");
  REQUIRE(code.code_fences == 2);
  REQUIRE(code.code_cues >= 3);

  const auto math = orroute::prompt_stats("Solve the equation x^2 + 3x = 10 and compute the sum.");
  REQUIRE(math.math_cues >= 4);

  const auto steps = orroute::prompt_stats(
      "Explain step by step why the proof works, then compare it with another approach.");
  REQUIRE(steps.multistep_cues >= 3);

  const auto mc = orroute::prompt_stats("Pick one:\nA) red\nB) blue\nC) green\n");
  REQUIRE(mc.choice_options == 3);

  REQUIRE(plain.complexity < code.complexity);
  REQUIRE(plain.complexity < steps.complexity);
  for (const auto& s : {plain, code, math, steps, mc}) {
    REQUIRE(s.complexity >= 0.0);
    REQUIRE(s.complexity <= 1.0);
  }
}

TEST_CASE("prompt stats count every occurrence of the multi-byte cues, overlapping ones too",
          "[features]") {
  // "==" twice in "===" (and '=' three times as a math cue); "```" twice in "````"
  const auto eq = orroute::prompt_stats("a === b");
  REQUIRE(eq.code_cues == 2);
  REQUIRE(eq.math_cues == 3);
  REQUIRE(orroute::prompt_stats("````").code_fences == 2);
  // each symbol cue, and one at the very end of the text
  REQUIRE(orroute::prompt_stats("x => y -> z () // a != b += c :: d").code_cues == 7);
  REQUIRE(orroute::prompt_stats("x ==").code_cues == 1);
  REQUIRE(orroute::prompt_stats("=").code_cues == 0);
  // "step by step" is case-sensitive and may end the text; each "step" word is a keyword too
  REQUIRE(orroute::prompt_stats("step by step").multistep_cues == 3);
  REQUIRE(orroute::prompt_stats("Step By Step").multistep_cues == 2);
  // keywords: whole words, lower-cased, at most 15 bytes; UTF-8 bytes are word bytes
  REQUIRE(orroute::prompt_stats("SOLVE the Integral").math_cues == 2);
  REQUIRE(orroute::prompt_stats("solved integrals").math_cues == 0);
  REQUIRE(orroute::prompt_stats("\xc3\xa9solve").math_cues == 0);
  REQUIRE(orroute::prompt_stats("javascript typescript").code_cues == 2);
  // lines end at '\n' and at the end of the text, blank ones not counted
  const auto lines = orroute::prompt_stats("A) one\n\n  \nb. two\n- three\n10) four");
  REQUIRE(lines.lines == 4);
  REQUIRE(lines.choice_options == 2);
  REQUIRE(lines.list_items == 2);
}

TEST_CASE("feature config is validated", "[features]") {
  FeatureConfig bad;
  bad.hash_bits = 4;
  REQUIRE_THROWS_AS(PromptFeaturizer(bad), orroute::InvalidArgument);
  FeatureConfig bad_range;
  bad_range.char_ngram_min = 6;
  bad_range.char_ngram_max = 3;
  REQUIRE_THROWS_AS(PromptFeaturizer(bad_range), orroute::InvalidArgument);
  REQUIRE(PromptFeaturizer::structure_names().size() == PromptFeaturizer::kStructureFeatures);
}

TEST_CASE("word features read only the last word_window bytes", "[features]") {
  FeatureConfig windowed;
  windowed.char_ngram_min = 0;  // words only
  windowed.structure = false;
  const std::string question = "Which gas do plants absorb from the air?";
  windowed.word_window = static_cast<uint32_t>(question.size());
  FeatureConfig whole = windowed;
  whole.word_window = 0;
  const std::string shots_a = std::string(300, ' ') + "Example one: the sky is blue. Answer: A\n";
  const std::string shots_b = "Completely different preamble about elephants and rivers.\n";
  const PromptFeaturizer fw(windowed);
  const PromptFeaturizer fa(whole);
  auto same = [](const auto& x, const auto& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].index != y[i].index || x[i].value != y[i].value) return false;
    }
    return true;
  };
  // Different few-shot preambles, same question: the windowed features agree, whole-prompt ones
  // do not.
  REQUIRE(same(fw.features(shots_a + question), fw.features(shots_b + question)));
  REQUIRE_FALSE(same(fa.features(shots_a + question), fa.features(shots_b + question)));
  // The window is cut at a word boundary: a word straddling the cut is dropped, not halved.
  const std::string p = std::string(40, 'x') + " " + std::string(60, 'y');
  FeatureConfig cut = windowed;
  cut.word_window = 70;  // starts inside the run of x
  const auto a = PromptFeaturizer(cut).features(p);
  const auto b = PromptFeaturizer(cut).features(std::string(60, 'y'));
  REQUIRE(same(a, b));
  // Prompts that fit in the window are unaffected.
  REQUIRE(same(fw.features(question), fa.features(question)));
}
