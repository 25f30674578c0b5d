#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/error.h"
#include "orroute/route/compression.h"
#include "orroute/tokenizer/token_count.h"

using namespace orroute;

namespace {

const char* kModel = "openai/gpt-4o";

std::string msg(const std::string& role, const std::string& content) {
  return R"({"role":")" + role + R"(","content":")" + content + R"("})";
}

std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "word" + std::to_string(i % 50) + " ";
  return s;
}

// system, then `turns` user/assistant pairs of ~`size` words each.
std::string chat(int turns, int size) {
  std::string out = "[" + msg("system", "You are terse.");
  for (int i = 0; i < turns; ++i) {
    out += "," + msg("user", "question " + std::to_string(i) + " " + words(size));
    out += "," + msg("assistant", "answer " + std::to_string(i) + " " + words(size));
  }
  return out + "]";
}

CompressionRule tokens_over(int64_t limit, int32_t keep_last = 2) {
  CompressionRule r;
  r.max_prompt_tokens = limit;
  r.keep_last = keep_last;
  return r;
}

const ModelCatalog& catalog() {
  static const ModelCatalog c = ModelCatalog::from_json(R"({"data":[
    {"id":"openai/gpt-4o","name":"GPT-4o","context_length":128000,
     "pricing":{"prompt":"0.0000025","completion":"0.00001"}},
    {"id":"x/router","name":"Router","context_length":128000,
     "pricing":{"prompt":"-1","completion":"-1"}}]})");
  return c;
}

}  // namespace

TEST_CASE("a prompt within the limits keeps every message", "[route][compression]") {
  const std::string m = chat(3, 5);
  const CompressionPlan p = plan_compression(kModel, m, tokens_over(100000), nullptr);
  REQUIRE_FALSE(p.compress);
  REQUIRE(p.keep == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6});
  REQUIRE(p.fold.empty());
  REQUIRE(p.prompt_tokens == count_chat_tokens_json(kModel, m).tokens);
}

TEST_CASE("over the token limit: system prompt and the last turns stay, older ones fold",
          "[route][compression]") {
  const std::string m = chat(4, 40);  // 9 messages
  const CompressionPlan p = plan_compression(kModel, m, tokens_over(200, 2), nullptr);
  REQUIRE(p.compress);
  REQUIRE(p.keep == std::vector<int32_t>{0, 7, 8});
  REQUIRE(p.fold == std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  REQUIRE(p.summary_at == 1);  // right after the system prompt
  REQUIRE(p.kept_tokens < p.prompt_tokens);
  // the kept part is counted as the model counts it
  const std::string kept = "[" + msg("system", "You are terse.") + "," +
                           msg("user", "question 3 " + words(40)) + "," +
                           msg("assistant", "answer 3 " + words(40)) + "]";
  REQUIRE(p.kept_tokens == count_chat_tokens_json(kModel, kept).tokens);
}

TEST_CASE("a tool call and its results are never split", "[route][compression]") {
  const std::string call =
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]})";
  const std::string m = "[" + msg("system", "s") + "," + msg("user", words(60)) + "," +
                        msg("assistant", words(60)) + "," + msg("user", "look it up") + "," + call +
                        "," + R"({"role":"tool","tool_call_id":"c1","content":"r1"})" + "," +
                        R"({"role":"tool","tool_call_id":"c1","content":"r2"})" + "]";
  // keep_last 2 would start at the second tool result: the whole call unit comes along
  const CompressionPlan p = plan_compression(kModel, m, tokens_over(60, 2), nullptr);
  REQUIRE(p.compress);
  REQUIRE(p.keep == std::vector<int32_t>{0, 4, 5, 6});
  REQUIRE(p.fold == std::vector<int32_t>{1, 2, 3});
}

TEST_CASE("the kept tail shrinks to fit, but the last unit always stays", "[route][compression]") {
  const std::string m = chat(4, 40);
  CompressionRule r = tokens_over(300, 6);  // the last 6 messages alone are over 300
  CompressionPlan p = plan_compression(kModel, m, r, nullptr);
  REQUIRE(p.compress);
  REQUIRE(p.kept_tokens <= 300);
  REQUIRE(p.keep.size() > 2);
  REQUIRE(p.keep.back() == 8);
  r.summary_tokens = 100;  // room for the summary: fewer turns fit beside it
  const CompressionPlan roomy = plan_compression(kModel, m, r, nullptr);
  REQUIRE(roomy.keep.size() < p.keep.size());
  REQUIRE(roomy.kept_tokens + 100 <= 300);
  r.max_prompt_tokens = 10;  // nothing fits: the last message stays anyway
  p = plan_compression(kModel, m, r, nullptr);
  REQUIRE(p.keep == std::vector<int32_t>{0, 8});
}

TEST_CASE("system messages anywhere are kept; the summary goes after the leading ones",
          "[route][compression]") {
  const std::string m = "[" + msg("system", "a") + "," + msg("developer", "b") + "," +
                        msg("user", words(80)) + "," + msg("system", "mid") + "," +
                        msg("assistant", words(80)) + "," + msg("user", "last") + "]";
  const CompressionPlan p = plan_compression(kModel, m, tokens_over(50, 1), nullptr);
  REQUIRE(p.keep == std::vector<int32_t>{0, 1, 3, 5});
  REQUIRE(p.fold == std::vector<int32_t>{2, 4});
  REQUIRE(p.summary_at == 2);
}

TEST_CASE("a cost limit compares the prompt's price; an unknown price fails closed",
          "[route][compression]") {
  const std::string m = chat(4, 40);
  const int64_t tokens = count_chat_tokens_json(kModel, m).tokens;
  CompressionRule r;
  r.keep_last = 2;
  r.max_prompt_cost = Money::parse("0.0000025") * (tokens + 1);  // just above the prompt's price
  CompressionPlan p = plan_compression(kModel, m, r, &catalog());
  REQUIRE_FALSE(p.compress);
  REQUIRE(p.prompt_cost == Money::parse("0.0000025") * tokens);
  r.max_prompt_cost = Money::parse("0.0000025") * (tokens - 1);
  p = plan_compression(kModel, m, r, &catalog());
  REQUIRE(p.compress);
  REQUIRE(*p.prompt_cost > *r.max_prompt_cost);
  // priced "-1" (known only after the call) or not in the catalog: compress
  REQUIRE(plan_compression("x/router", m, r, &catalog()).compress);
  REQUIRE(plan_compression(kModel, m, r, nullptr).compress);
}

TEST_CASE("nothing older to fold: no compression, said so", "[route][compression]") {
  const std::string m = "[" + msg("system", "s") + "," + msg("user", words(300)) + "]";
  const CompressionPlan p = plan_compression(kModel, m, tokens_over(20, 1), nullptr);
  REQUIRE_FALSE(p.compress);
  REQUIRE(p.keep == std::vector<int32_t>{0, 1});
  REQUIRE(p.reason.find("nothing older") != std::string::npos);
}

TEST_CASE("bad rules and malformed messages are refused", "[route][compression]") {
  CompressionRule r;
  r.keep_last = 0;
  REQUIRE_THROWS_AS(plan_compression(kModel, "[]", r, nullptr), InvalidArgument);
  r = CompressionRule{};
  r.max_prompt_tokens = -1;
  REQUIRE_THROWS_AS(plan_compression(kModel, "[]", r, nullptr), InvalidArgument);
  r = tokens_over(1);
  REQUIRE_THROWS_AS(plan_compression(kModel, "{\"role\":1}", r, nullptr), ParseError);
  REQUIRE_THROWS_AS(plan_compression(kModel, "[1, 2]", r, nullptr), ParseError);
  REQUIRE_THROWS_AS(plan_compression(kModel, std::string(200, '['), r, nullptr), ParseError);
}
