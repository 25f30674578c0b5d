#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "orroute/error.h"
#include "orroute/verify/arithmetic.h"
#include "orroute/verify/escalation_model.h"
#include "orroute/verify/json_check.h"
#include "orroute/verify/operating_point.h"
#include "orroute/verify/signals.h"

using orroute::VerdictOutcome;

TEST_CASE("extract_json finds JSON in a bare reply, a fenced block or prose", "[verify]") {
  REQUIRE(*orroute::extract_json("  {\"a\": 1}\n") == "{\"a\": 1}");
  REQUIRE(*orroute::extract_json("Here:\n```json\n[1, 2]\n```\nDone") == "[1, 2]");
  REQUIRE(*orroute::extract_json("```\nnot json\n```\nresult {\"x\": 2} ok") == "{\"x\": 2}");
  REQUIRE_FALSE(orroute::extract_json("no json here").has_value());
  REQUIRE_FALSE(orroute::extract_json("").has_value());
}

TEST_CASE("check_json_reply passes parsable JSON and fails the rest", "[verify]") {
  REQUIRE(orroute::check_json_reply("{\"a\": [1, 2]}").outcome == VerdictOutcome::kPass);
  REQUIRE(orroute::check_json_reply("{\"a\": [1, 2}").outcome == VerdictOutcome::kFail);
  REQUIRE(orroute::check_json_reply("Sure!").outcome == VerdictOutcome::kFail);
}

TEST_CASE("JSON schema validation enforces the supported keywords", "[verify]") {
  const orroute::JsonSchema schema(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "minLength": 2, "maxLength": 5},
      "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true, "maxItems": 2},
      "kind": {"oneOf": [{"const": "x"}, {"const": "y"}]},
      "ratio": {"type": ["number", "null"], "multipleOf": 0.5}
    },
    "required": ["name", "age"],
    "additionalProperties": false,
    "pattern": "ignored"
  })");
  auto check = [&](const char* json) { return schema.validate_text(json); };
  REQUIRE(check(R"({"name": "Ann", "age": 30, "tags": ["a", "b"], "kind": "x", "ratio": 1.5})")
              .outcome == VerdictOutcome::kPass);
  REQUIRE(check(R"({"name": "Ann", "age": 30.0, "ratio": null})").outcome == VerdictOutcome::kPass);
  SECTION("violations name the path") {
    const auto v = check(R"({"name": "Ann"})");
    REQUIRE(v.outcome == VerdictOutcome::kFail);
    REQUIRE(v.reason.find("age") != std::string::npos);
    REQUIRE(check(R"({"name": "A", "age": 1})").reason.find("$.name") != std::string::npos);
  }
  SECTION("each keyword") {
    for (const char* bad : {R"({"name": "Annabel", "age": 1})", R"({"name": "Ann", "age": 1.5})",
                            R"({"name": "Ann", "age": 150})", R"({"name": "Ann", "age": -1})",
                            R"({"name": "Ann", "age": 1, "tags": ["c"]})",
                            R"({"name": "Ann", "age": 1, "tags": ["a", "a"]})",
                            R"({"name": "Ann", "age": 1, "tags": ["a", "b", "a"]})",
                            R"({"name": "Ann", "age": 1, "kind": "z"})",
                            R"({"name": "Ann", "age": 1, "ratio": 0.3})",
                            R"({"name": "Ann", "age": 1, "extra": true})", R"([1])", "{"}) {
      INFO(bad);
      REQUIRE(check(bad).outcome == VerdictOutcome::kFail);
    }
  }
  REQUIRE(schema.unsupported_keywords() == std::vector<std::string>{"pattern"});
  REQUIRE_THROWS_AS(orroute::JsonSchema("{not json"), orroute::InvalidArgument);
  REQUIRE_THROWS_AS(orroute::JsonSchema("[1]"), orroute::InvalidArgument);
}

TEST_CASE("JSON checks survive hostile nesting without recursion limits being hit", "[verify]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  REQUIRE(orroute::check_json_reply(deep).outcome == VerdictOutcome::kPass);
  const orroute::JsonSchema schema(R"({"type": "array", "items": {"type": "array", "items": {}}})");
  REQUIRE(schema.validate_text(deep).outcome == VerdictOutcome::kPass);
  const orroute::JsonSchema unique(R"({"uniqueItems": true})");
  const std::string pair = "[" + deep + "," + deep + "]";
  REQUIRE(unique.validate_text(pair).outcome == VerdictOutcome::kPass);  // too deep to be equal
}

TEST_CASE("tool calls are validated against the offered tools' parameter schemas", "[verify]") {
  const orroute::ToolCallValidator tools(R"([{"type": "function", "function": {
      "name": "get_weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
      "required": ["city"]}}}])");
  REQUIRE(tools.tool_names() == std::vector<std::string>{"get_weather"});
  auto call = [&](const std::string& name, const std::string& args) {
    return tools.check(R"([{"id": "c1", "type": "function", "function": {"name": ")" + name +
                       R"(", "arguments": )" + args + "}}]");
  };
  REQUIRE(call("get_weather", R"("{\"city\": \"Paris\", \"days\": 2}")").outcome ==
          VerdictOutcome::kPass);
  REQUIRE(call("get_weather", R"("{\"days\": 2}")").outcome == VerdictOutcome::kFail);
  REQUIRE(call("get_weather", R"("{\"city\": \"Paris\", \"days\": 0}")").outcome ==
          VerdictOutcome::kFail);
  REQUIRE(call("get_weather", R"("{\"city\": ")").outcome == VerdictOutcome::kFail);
  REQUIRE(call("get_weather", R"({"city": "Paris"})").outcome == VerdictOutcome::kFail);
  REQUIRE(call("send_email", R"("{}")").outcome == VerdictOutcome::kFail);
  REQUIRE(tools.check("[]").outcome == VerdictOutcome::kAbstain);
  REQUIRE(tools.check("nope").outcome == VerdictOutcome::kFail);
  REQUIRE_THROWS_AS(orroute::ToolCallValidator(R"([{"type": "function"}])"),
                    orroute::InvalidArgument);
}

TEST_CASE("arithmetic re-check finds wrong calculations and reads the final answer", "[verify]") {
  SECTION("a correct GSM8K-style solution") {
    const auto c = orroute::check_calculations(
        "She has 16 - 3 = 13 eggs left.\nShe uses 4, so 13 - 4 = 9 eggs.\n"
        "She sells them for 9 * $2 = $<<9*2=18>>18.\n#### 18");
    REQUIRE(c.checked == 4);
    REQUIRE(c.wrong == 0);
    REQUIRE(c.final_answer.found);
    REQUIRE(c.final_answer.marked);
    REQUIRE(c.final_answer.text == "18");
    REQUIRE(c.final_is_last_result);
    REQUIRE(c.final_in_results);
    REQUIRE(orroute::arithmetic_verdict(c).outcome == VerdictOutcome::kPass);
    const auto other = orroute::check_calculations("3 + 4 = 7 and 7 * 2 = 14\n#### 7");
    REQUIRE_FALSE(other.final_is_last_result);
    REQUIRE(other.final_in_results);
    REQUIRE_FALSE(orroute::check_calculations("3 + 4 = 7\n#### 9").final_in_results);
  }
  SECTION("a wrong step") {
    const auto c = orroute::check_calculations("Total: 12 × 15 = 170, then 170 + 5 = 175.");
    REQUIRE(c.checked == 2);
    REQUIRE(c.wrong == 1);
    REQUIRE(c.first_wrong == "12 * 15 = 170");
    REQUIRE(orroute::arithmetic_verdict(c).outcome == VerdictOutcome::kFail);
  }
  SECTION("operators, rounding, percent, thousands, chains") {
    for (const char* ok : {"1,200 + 300 = 1,500", "10 / 3 = 3.33", "(2 + 3) * 4 = 20",
                           "20% * 50 = 10", "2 x 3 = 6", "5 + 5 = 10 - 0 = 10", "−3 + 5 = 2",
                           "7 \\times 6 = 42", "a list 3, 4 + 5 = 9"}) {
      INFO(ok);
      const auto c = orroute::check_calculations(ok);
      REQUIRE(c.checked >= 1);
      REQUIRE(c.wrong == 0);
    }
    REQUIRE(orroute::check_calculations("10 / 3 = 3.4").wrong == 1);
    // both links of the chain are wrong: 5 + 5 != 10 - 1 and 10 - 1 != 10
    REQUIRE(orroute::check_calculations("5 + 5 = 10 - 1 = 10").wrong == 2);
  }
  SECTION("prose, algebra and units are skipped, not guessed") {
    for (const char* skip : {"x = 5", "2x + 3 = 7", "5 hours * 3 = 15", "Total = 13",
                             "if a == b + 1", "speed = distance / time"}) {
      INFO(skip);
      REQUIRE(orroute::check_calculations(skip).checked == 0);
    }
  }
  SECTION("final answers") {
    REQUIRE(orroute::final_answer("The answer is $1,234.").text == "1234");
    REQUIRE(orroute::final_answer("so \\boxed{-7}").text == "-7");
    REQUIRE(orroute::final_answer("We get 3 and then -2.50").text == "-2.5");
    REQUIRE(orroute::final_answer("The answer is 3 and 4").marked);
    REQUIRE(orroute::final_answer("The answer is 3 and 4").text == "3");
    REQUIRE_FALSE(orroute::final_answer("no numbers").found);
    REQUIRE(orroute::arithmetic_verdict(orroute::check_calculations("I do not know")).outcome ==
            VerdictOutcome::kFail);
    REQUIRE(orroute::arithmetic_verdict(orroute::check_calculations("It is 4")).outcome ==
            VerdictOutcome::kAbstain);
  }
}

TEST_CASE("answer signals and agreement", "[verify]") {
  const auto s = orroute::answer_signals("I think it is 4.\nI think it is 4.\nMaybe 5");
  REQUIRE(s.lines == 3);
  REQUIRE(s.hedges == 2);
  REQUIRE(s.numbers == 3);
  REQUIRE(s.repeated_lines == Approx(1.0 / 3));
  REQUIRE(s.ends_cleanly);
  REQUIRE_FALSE(orroute::answer_signals("cut off mid-wor").ends_cleanly);
  REQUIRE(orroute::answer_signals("I'm sorry, I cannot help").refusals == 2);
  const auto a = orroute::agreement({"18", "", "17", "18"});
  REQUIRE(a.key == "18");
  REQUIRE(a.count == 2);
  REQUIRE(a.answered == 3);
  REQUIRE(a.share == Approx(0.5));
  REQUIRE(orroute::agreement({}).count == 0);
  const auto x = orroute::escalation_features("What is 3 + 4?", "3 + 4 = 8\n#### 8", {0.5, NAN});
  const auto& names = orroute::escalation_feature_names();
  REQUIRE(x.size() == names.size() + 2);
  REQUIRE(x.back() == 0.0);
  auto feature = [&](const std::vector<double>& v, const char* name) {
    return v[static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin())];
  };
  REQUIRE(feature(x, "prompt_numbers_used") == 1.0);
  const auto partial =
      orroute::escalation_features("Add 1,200 and 3.5 and 7.", "1200 + 3.5 = 1203.5");
  REQUIRE(feature(partial, "prompt_numbers_used") == Approx(2.0 / 3));
  REQUIRE(feature(partial, "log_prompt_numbers_unused") == Approx(std::log(2.0)));
}

TEST_CASE("the escalation model learns a separable signal and round-trips", "[verify]") {
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 200; ++i) {
    const double a = (i % 20) / 10.0 - 1.0;  // informative
    const double b = (i % 7) / 3.0;          // noise
    x.push_back({1.0, a, b});
    y.push_back(a + 0.1 * ((i * 37) % 11 - 5) > 0 ? 1.0 : 0.0);
  }
  const auto m = orroute::EscalationModel::fit(x, y, {}, 1.0);
  REQUIRE(m.features() == 3);
  REQUIRE(m.predict({1.0, 0.9, 1.0}) > 0.8);
  REQUIRE(m.predict({1.0, -0.9, 1.0}) < 0.2);
  REQUIRE(std::abs(m.weights()[1]) > 5 * std::abs(m.weights()[2]));
  const orroute::EscalationModel copy(m.mean(), m.scale(), m.weights(), m.intercept());
  REQUIRE(copy.predict({1.0, 0.3, 2.0}) == m.predict({1.0, 0.3, 2.0}));
  REQUIRE_THROWS_AS(m.predict({1.0}), orroute::InvalidArgument);
  REQUIRE_THROWS_AS(orroute::EscalationModel::fit({{1.0}, {1.0, 2.0}}, {0, 1}),
                    orroute::InvalidArgument);
  REQUIRE_THROWS_AS(orroute::EscalationModel::fit({{1.0}}, {2.0}), orroute::InvalidArgument);
}

TEST_CASE("operating points hit a requested cost share on the calibration set", "[verify]") {
  // 100 prompts: cheap costs 1, strong 10; a cascade escalates (cost 11) the top-scored ones.
  std::vector<double> score, base(100, 1.0), escalated(100, 11.0), reference(100, 10.0);
  for (int i = 0; i < 100; ++i) score.push_back(i);
  SECTION("target") {
    const auto op = orroute::choose_operating_point(score, base, escalated, reference, 0.5,
                                                    orroute::ShareMode::kTarget, 200, 1);
    // share(k) = (100 + 10k) / 1000: k = 40 gives exactly 0.5
    REQUIRE(op.share == Approx(0.5));
    REQUIRE(op.escalated == Approx(0.4));
    REQUIRE(op.threshold == Approx(59.5));
    REQUIRE(orroute::cost_share_at(score, base, escalated, reference, op.threshold) ==
            Approx(0.5));
    REQUIRE(op.share_lo <= op.share);
    REQUIRE(op.share_hi >= op.share);
    REQUIRE(op.share_hi - op.share_lo > 0.01);
  }
  SECTION("at most, ties and an unreachable cap") {
    const auto op = orroute::choose_operating_point(score, base, escalated, reference, 0.455,
                                                    orroute::ShareMode::kAtMost, 0);
    REQUIRE(op.share == Approx(0.45));
    std::vector<double> tied(100, 1.0);
    const auto all_or_none = orroute::choose_operating_point(
        tied, base, escalated, reference, 0.5, orroute::ShareMode::kAtMost, 0);
    REQUIRE(all_or_none.share == Approx(0.1));  // escalating the tie block would cost 1.1
    REQUIRE(std::isinf(all_or_none.threshold));
    const auto unmet = orroute::choose_operating_point(score, base, escalated, reference, 0.05,
                                                       orroute::ShareMode::kAtMost, 0);
    REQUIRE_FALSE(unmet.met);
    REQUIRE(unmet.share == Approx(0.1));
  }
  SECTION("grid") {
    orroute::OperatingPoint op;
    const auto i = orroute::choose_grid_point({std::vector<double>(100, 2.0),
                                               std::vector<double>(100, 6.0),
                                               std::vector<double>(100, 9.0)},
                                              reference, 0.7, orroute::ShareMode::kAtMost, &op, 0);
    REQUIRE(i == 1);
    REQUIRE(op.share == Approx(0.6));
  }
  REQUIRE_THROWS_AS(orroute::choose_operating_point({}, {}, {}, {}, 0.5,
                                                    orroute::ShareMode::kTarget),
                    orroute::InvalidArgument);
  REQUIRE_THROWS_AS(orroute::choose_operating_point(score, base, escalated, reference, 1.5,
                                                    orroute::ShareMode::kTarget),
                    orroute::InvalidArgument);
}
