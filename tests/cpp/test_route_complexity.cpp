#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/error.h"
#include "orroute/route/complexity.h"

using namespace orroute;

namespace {
Complexity judge(std::string_view prompt, int32_t turns = 0, int32_t tools = 0) {
  static const ComplexityAnalyzer analyzer;
  ComplexityInput in;
  in.prompt = prompt;
  in.prior_turns = turns;
  in.tools = tools;
  return analyzer.analyze(in);
}
}  // namespace

TEST_CASE("simple lookups score low and go to the economy tier", "[route][complexity]") {
  for (const char* p : {"What is the capital of France?", "hi", "Translate 'cat' to Spanish",
                        "Wake me up at 7 AM tomorrow"}) {
    CAPTURE(p);
    const Complexity c = judge(p);
    REQUIRE(c.score < 0.3);
    REQUIRE(c.tier == ComplexityTier::kEconomy);
  }
  REQUIRE(judge("Translate 'cat' to Spanish").task_type == "translation");
}

TEST_CASE("code, math and multi-step design score high", "[route][complexity]") {
  const Complexity code = judge(
      "Implement a lock-free queue in C++ and explain the memory ordering:\n```cpp\n"
      "template <class T> struct Queue { std::atomic<Node*> head; };\n```\n"
      "Then write unit tests and analyze the trade-offs step by step.");
  REQUIRE(code.score >= 0.7);
  REQUIRE(code.tier >= ComplexityTier::kPremium);
  REQUIRE(code.task_type == "coding");
  REQUIRE_FALSE(complexity_reasons(code).empty());

  const Complexity math = judge("Prove that the integral of x^2 from 0 to 1 equals 1/3, then "
                                "derive the general formula step by step.");
  REQUIRE(math.score >= 0.5);
  REQUIRE(math.task_type == "math");
}

TEST_CASE("depth and tools raise the score of the same prompt", "[route][complexity]") {
  const double alone = judge("Summarize our discussion so far.").score;
  const double deep = judge("Summarize our discussion so far.", 30, 4).score;
  REQUIRE(deep > alone + 0.1);
  REQUIRE(judge("Summarize our discussion so far.").task_type == "summarization");
}

TEST_CASE("scores stay in [0, 1] and tiers follow the thresholds", "[route][complexity]") {
  std::string huge;
  for (int i = 0; i < 2000; ++i) huge += "prove design step by step ```code``` integral 1+2=3\n";
  const Complexity c = judge(huge, 100, 50);
  REQUIRE(c.score <= 1.0);
  REQUIRE(c.tier == ComplexityTier::kFrontier);
  const ComplexityAnalyzer a({0.2, 0.5, 0.8});
  REQUIRE(a.tier_for(0.1) == ComplexityTier::kEconomy);
  REQUIRE(a.tier_for(0.2) == ComplexityTier::kStandard);
  REQUIRE(a.tier_for(0.5) == ComplexityTier::kPremium);
  REQUIRE(a.tier_for(0.8) == ComplexityTier::kFrontier);
  REQUIRE_THROWS_AS(ComplexityAnalyzer({0.8, 0.5, 0.9}), InvalidArgument);
}

TEST_CASE("a declared task type wins over the guess", "[route][complexity]") {
  ComplexityInput in;
  in.prompt = "def f(): return 1";
  in.declared_type = "review";
  REQUIRE(ComplexityAnalyzer().analyze(in).task_type == "review");
}

TEST_CASE("the quality floor rises with the tier and economy has none", "[route][complexity]") {
  REQUIRE(quality_floor(ComplexityTier::kEconomy) == 0.0);
  REQUIRE(quality_floor(ComplexityTier::kEconomy) < quality_floor(ComplexityTier::kStandard));
  REQUIRE(quality_floor(ComplexityTier::kStandard) < quality_floor(ComplexityTier::kPremium));
  REQUIRE(quality_floor(ComplexityTier::kPremium) < quality_floor(ComplexityTier::kFrontier));
  REQUIRE(quality_floor(ComplexityTier::kFrontier) <= 1.0);
}

TEST_CASE("cue words count where a word starts, in any ASCII case", "[route][complexity]") {
  const auto type_of = [](std::string_view p) { return judge(p).task_type; };
  REQUIRE(type_of("Summarize this") == "summarization");  // a cue may run on into the word
  REQUIRE(type_of("TL;DR please") == "summarization");
  REQUIRE(type_of("the unsummarized text") == "general");  // not where a word starts
  REQUIRE(type_of("re-design the page") == "reasoning");   // after a hyphen a word starts
  REQUIRE(type_of("\xc3\xa9" "design") == "reasoning");     // UTF-8 bytes are no letters here
  REQUIRE(type_of("redesign the page") == "general");
  REQUIRE(type_of("HOW do magnets work") == "reasoning");
  REQUIRE(type_of("tell me how") == "general");  // "how " needs its space
  REQUIRE(type_of("Write a HAIKU") == "creative");
  REQUIRE(type_of("label these rows") == "extraction");
  REQUIRE(type_of("  WHAT IS an atom") == "chat");  // a lookup, case-insensitively, after spaces
}

TEST_CASE("a complexity's reasons and line are written from its figures", "[route][complexity]") {
  using Reasons = std::vector<std::string>;
  const Complexity hi = judge("hi");
  CHECK(complexity_reasons(hi) == Reasons{"task type: chat", "simple lookup question"});
  CHECK(complexity_line(hi) == "complexity 0.00 -> economy");
  const Complexity why = judge("Why is the sky blue?");
  CHECK(complexity_reasons(why) ==
        Reasons{"task type: reasoning", "multi_step 0.33 (+0.08)", "question 0.60 (+0.09)"});
  CHECK(complexity_line(why) == "complexity 0.17 -> economy");
  const Complexity code = judge(
      "Implement a lock-free queue in C++ and explain the memory ordering:\n```cpp\n"
      "template <class T> struct Queue { std::atomic<Node*> head; };\n```\n"
      "Then write unit tests and analyze the trade-offs step by step.");
  CHECK(complexity_reasons(code) == Reasons{"task type: coding", "code 1.00 (+0.25)", "math 0.40 (+0.10)",
                                            "multi_step 0.75 (+0.19)", "question 1.00 (+0.15)",
                                            "several strong cues combined"});
  CHECK(complexity_line(code) == "complexity 0.83 -> premium");
}

TEST_CASE("a lookup opening is found as a plain scan of every opening finds it, on many texts",
          "[route][complexity]") {
  // The reference: every opening compared in turn after the leading ASCII spaces, case-insensitively.
  static const std::vector<std::string> openings = {"what is", "what's", "who ", "when ", "where ", "define",
                                                    "translate", "list ", "name ", "hi", "hello", "thanks",
                                                    "is ", "are ", "yes", "no"};
  const auto opens = [](std::string_view text) {
    size_t i = 0;
    while (i < text.size() && (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))) ++i;
    for (const std::string& o : openings) {
      if (text.size() - i < o.size()) continue;
      bool same = true;
      for (size_t k = 0; k < o.size() && same; ++k) {
        const char c = text[i + k];
        same = (c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) == o[k];
      }
      if (same) return true;
    }
    return false;
  };
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  const auto next = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((seed >> 33) % n);
  };
  // No cue of another family ("why", "prove", ...) can be made from these: the question feature
  // is 0 for a lookup and 0.3 otherwise.
  static const std::string filler = "xzq 1.,HISTNO\t'\xc3\xa9";  // no W: no "how "
  int lookups = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string text(next(4), ' ');
    if (next(5) == 0) text += '\t';
    if (next(4) != 0) {  // an opening, cut short or whole, its letters' case flipped at random
      std::string o = openings[next(openings.size())];
      o.resize(next(o.size() + 1));
      for (char& c : o) {
        if (c >= 'a' && c <= 'z' && next(2) == 0) c = static_cast<char>(c - 32);
      }
      text += o;
    }
    for (size_t k = next(6); k > 0; --k) text += filler[next(filler.size())];
    const bool expected = opens(text);
    lookups += expected ? 1 : 0;
    CAPTURE(text);
    const Complexity c = judge(text);
    REQUIRE(c.features.question == (expected ? 0.0 : 0.3));
  }
  CHECK(lookups > 2000);  // both sides seen often
  CHECK(lookups < 18000);
}
