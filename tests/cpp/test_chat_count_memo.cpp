// count_chat_tokens with its memo of message texts gives exactly the tokenizer's own counts, over
// many conversations that resend, extend and slightly alter earlier messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/error.h"
#include "orroute/text_memo.h"
#include "orroute/tokenizer/encoding.h"
#include "orroute/tokenizer/token_count.h"

using orroute::ChatContentPart;
using orroute::ChatMessage;
using orroute::ChatToolCall;

namespace {

// Prompt tokens counted without any memo: the formula of count_chat_tokens, each text through the
// encoding itself.
int64_t uncached_count(std::string_view model, const std::vector<ChatMessage>& messages) {
  const orroute::ModelTokenizer t = orroute::tokenizer_for_model(model);
  const auto enc = orroute::get_encoding(t.encoding);
  auto count = [&](std::string_view s) { return static_cast<int64_t>(enc->count_ordinary(s)); };
  int64_t n = 3;
  for (const ChatMessage& m : messages) {
    n += 3 + count(m.role);
    for (const ChatContentPart& p : m.content) {
      n += p.is_image ? orroute::image_tokens(p.detail, p.width, p.height) : count(p.text);
    }
    if (!m.name.empty()) n += count(m.name) + 1;
    for (const ChatToolCall& c : m.tool_calls) n += 3 + count(c.name) + count(c.arguments);
  }
  return t.exact ? n : static_cast<int64_t>(std::ceil(static_cast<double>(n) * t.factor - 1e-9));
}

// Random text of prose, code, numbers, white space runs and multi-byte characters.
std::string random_text(std::mt19937_64& rng, size_t bytes) {
  static const char* const kPieces[] = {
      "the ",     "router ",        "counts ",   "tokens ",      "exactly. ",  "\n\n",      "    ",
      "def f(x):\n    return x * 2\n", "{\"a\": [1, 2, 3]} ", "12345 ", "3.14159 ", "héllo ",
      "日本語のテキスト ", "emoji 🙂🚀 ", "Ünïcödé ", "\t", "```python\n", "```\n", "- item\n",
      "It's ",    "don't ",         "WE'LL ",    "  spaces   ",  "x",          "-->",       "<|endoftext|>"};
  std::string s;
  std::uniform_int_distribution<size_t> pick(0, std::size(kPieces) - 1);
  while (s.size() < bytes) s += kPieces[pick(rng)];
  // Cut on a UTF-8 boundary (not inside a multi-byte character).
  size_t cut = bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s;
}

ChatMessage text_message(std::string role, std::string text) {
  ChatMessage m;
  m.role = std::move(role);
  m.content.push_back({false, std::move(text), {}, 0, 0});
  return m;
}

// One byte changed, same length: what a hash-only memo could confuse with the original.
std::string one_byte_off(std::string s, size_t at) {
  if (s.empty()) return s;
  at %= s.size();
  if (static_cast<unsigned char>(s[at]) < 0x80) s[at] = s[at] == 'a' ? 'b' : 'a';
  return s;
}

}  // namespace

TEST_CASE("chat counts through the memo equal the uncached counts", "[tokenizer][text_memo]") {
  std::mt19937_64 rng(2026);
  const std::vector<std::string> models = {"gpt-4o", "gpt-4", "anthropic/claude-sonnet-4", "m/a",
                                           "google/gemini-2.5-pro"};
  const auto hits_before = orroute::chat_count_memo_stats().hits;
  std::uniform_int_distribution<size_t> size(0, 6000);
  std::uniform_int_distribution<int> percent(0, 99);
  int checked = 0;
  for (int conversation = 0; conversation < 12; ++conversation) {
    std::vector<ChatMessage> history;
    history.push_back(text_message("system", random_text(rng, 4000 + 500 * static_cast<size_t>(conversation % 3))));
    for (int turn = 0; turn < 15; ++turn) {
      std::vector<ChatMessage> call = history;
      ChatMessage user = text_message("user", random_text(rng, size(rng)));
      if (percent(rng) < 20) user.name = "agent_" + std::to_string(turn);
      if (percent(rng) < 15) user.content.push_back({true, {}, "low", 0, 0});
      if (percent(rng) < 15) user.content.push_back({false, random_text(rng, 300 + size(rng)), {}, 0, 0});
      call.push_back(user);
      // Earlier messages altered by one byte (same length) or resent as they were.
      if (percent(rng) < 30 && call.size() > 2) {
        auto& victim = call[1 + static_cast<size_t>(turn) % (call.size() - 1)];
        for (ChatContentPart& p : victim.content) p.text = one_byte_off(p.text, rng());
      }
      for (const std::string& model : models) {
        INFO("conversation " << conversation << ", turn " << turn << ", model " << model);
        REQUIRE(orroute::count_chat_tokens(model, call).tokens == uncached_count(model, call));
        ++checked;
      }
      history.push_back(std::move(user));
      ChatMessage reply = text_message("assistant", random_text(rng, size(rng) / 2));
      if (percent(rng) < 30) reply.tool_calls.push_back({"search", random_text(rng, 200 + size(rng) / 4)});
      history.push_back(std::move(reply));
    }
  }
  CHECK(checked == 12 * 15 * 5);
  // The resent messages were read from the memo (the point of it), and every answer was exact.
  CHECK(orroute::chat_count_memo_stats().hits > hits_before + 1000);
}

TEST_CASE("a tools array counts the same from the memo as computed", "[tokenizer][text_memo]") {
  const std::string messages = R"([{"role":"user","content":"hi"}])";
  std::string description(400, 'w');
  for (int variant = 0; variant < 3; ++variant) {
    description[200] = static_cast<char>('a' + variant);  // same length, one byte apart
    const std::string tools =
        R"([{"type":"function","function":{"name":"get_weather","description":")" + description +
        R"(","parameters":{"type":"object","properties":{"city":{"type":"string","description":"City"}}}}}])";
    for (const char* model : {"gpt-4o", "gpt-4", "m/a"}) {
      const int64_t first = orroute::count_chat_tokens_json(model, messages, tools).tokens;
      CHECK(orroute::count_chat_tokens_json(model, messages, tools).tokens == first);
      CHECK(first > orroute::count_chat_tokens_json(model, messages).tokens + 12);
    }
  }
  CHECK_THROWS_AS(orroute::count_chat_tokens_json("gpt-4o", messages, std::string(300, '[')),
                  orroute::ParseError);
}

TEST_CASE("many distinct huge messages keep the count memo within its bytes", "[tokenizer][text_memo]") {
  // What a hostile caller can do: every call a new long text. Each is counted (exactly) and the
  // memo stays under its 8 MiB, dropping its oldest entries.
  std::mt19937_64 rng(99);
  const std::string base = random_text(rng, 100'000);
  for (int i = 0; i < 200; ++i) {
    const std::vector<ChatMessage> call = {text_message("user", std::to_string(i) + base)};
    REQUIRE(orroute::count_chat_tokens("gpt-4o", call).tokens == uncached_count("gpt-4o", call));
  }
  const auto st = orroute::chat_count_memo_stats();
  CHECK(st.bytes <= (8u << 20));
  CHECK(st.evictions > 0);
}
