// Token counts by model: which encoding a model uses (exact for OpenAI models, an estimate with a
// per-family correction factor for others), and chat-message counting as OpenAI bills it.
// This is the API other components (cost, select, engine) call.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

namespace orroute {

struct TextMemoStats;  // orroute/text_memo.h

// How a model's tokens are counted. The names are static strings (they live for the process), so
// a copy costs no allocation and no string copy: a call resolves its model several times.
struct ModelTokenizer {
  std::string_view encoding;  // "cl100k_base" or "o200k_base"
  std::string_view family;    // OpenRouter tokenizer family: "GPT", "Claude", "Gemini", "Llama3", ...
  double factor = 1.0;   // estimated tokens = ceil(encoding tokens * factor)
  bool exact = false;    // true only for OpenAI models whose encoding is known
};

// Resolves an OpenRouter or OpenAI model id ("openai/gpt-4o-mini", "gpt-4", "o3-mini",
// "anthropic/claude-sonnet-4") or an OpenRouter tokenizer family name ("GPT", "Claude", "Gemini",
// "Llama2", "Llama3", "Llama4", "Qwen", "Qwen3", "Mistral", "DeepSeek", "Grok", "Cohere", "Nova",
// "Yi", "Other"; case-insensitive). Unknown models get the "Other" estimate. Never throws.
ModelTokenizer tokenizer_for_model(std::string_view model_or_family);

// Which counts of a prompt are the same: models whose tokenizer shares encoding and factor give
// one key ("o200k/1000000": the encoding without "_base", the factor in millionths). Made once per
// model and thread (a call asks for it several times). Never throws but for lack of memory.
std::string tokenizer_key(std::string_view model_or_family);

// Name of the encoding tiktoken 0.14 gives `model` (tiktoken.model.encoding_name_for_model: exact
// names, then prefixes; case-sensitive, no provider prefix), legacy ones included ("gpt2",
// "r50k_base", "p50k_base", "p50k_edit"); empty if tiktoken does not know the model. No failure.
std::string_view tiktoken_encoding_name(std::string_view model) noexcept;
// The tables behind it: (model, encoding) by exact name, and (prefix, encoding), in tiktoken's order.
std::span<const std::pair<std::string_view, std::string_view>> tiktoken_model_names() noexcept;
std::span<const std::pair<std::string_view, std::string_view>> tiktoken_model_prefixes() noexcept;

// The shipped encoding to encode `model_or_family` with: tokenizer_for_model's, except that a model
// whose tiktoken encoding orroute does not ship (the gpt2, r50k and p50k families) throws NotFound
// saying so instead of answering with an estimate, and with `strict` any model without an exact
// encoding throws NotFound. Thread-safe.
std::string encoding_for_model(std::string_view model_or_family, bool strict);

// A token count and whether it is exact or an estimate (names as ModelTokenizer's: static).
struct TokenCount {
  int64_t tokens = 0;
  bool exact = false;
  std::string_view encoding;
  std::string_view family;
};

// Tokens of `text` (special-token text counted as ordinary text) for a model or family.
// Thread-safe. Throws NotFound/ParseError only if the bundled vocabulary is missing or corrupt.
TokenCount count_text_tokens(std::string_view model_or_family, std::string_view text);

// One tool call made by an assistant message.
struct ChatToolCall {
  std::string name;
  std::string arguments;  // JSON text, as sent
};

// One part of a message's content: text, or an image (OpenAI's image_url part).
struct ChatContentPart {
  bool is_image = false;
  std::string text;
  std::string detail;  // "low", "high", "auto" or empty
  int32_t width = 0;   // image size in pixels if known (0 = unknown)
  int32_t height = 0;
};

// A chat message in OpenAI's shape.
struct ChatMessage {
  std::string role;
  std::vector<ChatContentPart> content;
  std::string name;  // optional participant name
  std::vector<ChatToolCall> tool_calls;
};

// Prompt tokens of a chat request as OpenAI counts them: 3 per message + role + content (+ name
// + 1), 3 to prime the reply; tool definitions (`tools_json`, the request's "tools" array as JSON
// text, may be empty) by the OpenAI cookbook's formula; tool calls as name + arguments + 3 each;
// images 85 tokens at detail "low", else the tile formula (85 + 170 per 512px tile after
// scaling) with 1024x1024 assumed when the size is unknown. Non-OpenAI models get the family
// factor applied to the total. Throws ParseError for malformed tools_json.
// How count_chat_tokens counts an image. The upstream fetches the image itself: a part's
// width/height are the caller's hints, and a budget cannot trust them.
enum class ImageCount {
  kEstimated,    // the tile formula at the hinted size (1024x1024 when unknown)
  // Nothing: the text alone. Reservations and the usage audit add the most each model may bill
  // for the images (cost/prompt_bounds.h: its rule is the model's, not its tokenizer's).
  kPricedApart,
};
TokenCount count_chat_tokens(std::string_view model_or_family, std::span<const ChatMessage> messages,
                             std::string_view tools_json = {}, ImageCount images = ImageCount::kEstimated);

// What count_chat_tokens remembers: each message text (content part, tool call arguments, name)
// and each tools array of 256 bytes or more is counted once per encoding per process, then read
// from a TextMemo of at most 8 MiB (exact; least recently used first out). Thread-safe.
TextMemoStats chat_count_memo_stats();

// Same, with `messages_json` an OpenAI "messages" array as JSON text (content as a string or a
// list of {"type":"text"} / {"type":"image_url"} parts; image_url may carry "width"/"height").
// Throws ParseError for malformed JSON.
TokenCount count_chat_tokens_json(std::string_view model_or_family, std::string_view messages_json,
                                  std::string_view tools_json = {});

// The messages of an already parsed OpenAI "messages" array, as count_chat_tokens reads them (for
// a caller that has the request parsed: no second parse). Throws ParseError as
// count_chat_tokens_json does.
std::vector<ChatMessage> chat_messages_of(const rapidjson::Value& messages);

// Tokens of one image part (before any family factor), per the approximation above.
int64_t image_tokens(std::string_view detail, int32_t width, int32_t height);

}  // namespace orroute
