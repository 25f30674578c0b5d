#include "orroute/cost/prompt_bounds.h"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace orroute {
namespace {

// OpenAI's tile models: an image fits in 2048x2048, its shortest side is scaled to 768, and it
// is billed `base` plus `per_tile` for each 512-pixel tile; at most 8 tiles (768x2048).
constexpr int64_t kMostTiles = 8;
constexpr int64_t tiles(int64_t base, int64_t per_tile) { return base + kMostTiles * per_tile; }
// gpt-4o's: what a model with no rule is taken to hold an image in (image_context_tokens).
constexpr int64_t kGpt4oImage = tiles(85, 170);
constexpr int64_t kGpt4oLowImage = 85;

// OpenAI's patch models: 32-pixel patches, at most 1536 (the image scaled down to fit), times
// the model's multiplier (in hundredths), rounded up; "detail" changes nothing.
constexpr int64_t kMostPatches = 1536;
constexpr int64_t patches(int64_t multiplier_pct) { return (kMostPatches * multiplier_pct + 99) / 100; }

// Claude before Opus 4.7: an image past 1568 pixels on its long edge or ~1,600 tokens (at ~750
// pixels a token) is scaled down, then padded to 28-pixel multiples: up to 27 x (1568 + 766)
// pixels more, 85 tokens (a 12-megapixel photo was measured at 1,661). Opus 4.7 and later,
// Sonnet 5 and later, Haiku 5 and later: 28-pixel patches up to 2576 pixels on the long edge, at
// most 4,784, padding included.
constexpr int64_t kClaudeStandard = 1600 + 85;
constexpr int64_t kClaudeHigh = 4784;

// Pixtral (below).
constexpr int64_t kPixtral = 64 * 64 + 64;

// Qwen's VL models: a token per 28x28 pixels (Qwen3-VL: 32x32), at most 16,384 an image
// (Alibaba Cloud Model Studio, "Qwen VL": "up to 16,384 per image"), and the two tokens that
// open and close it.
constexpr int64_t kQwenVl = 16384 + 2;

// Gemini: images are scaled to fit 3072x3072 and cut into 768-pixel tiles of 258 tokens each
// (4x4); Gemini 3's media resolutions (at most 1,120 an image at "high") stay under it.
constexpr int64_t kGemini = 16 * 258;

struct Row {
  std::string_view name;  // the id without provider and variant, Claude's with '-' for '.'
  std::optional<int64_t> image;      // detail "high"/"auto"
  std::optional<int64_t> low_image;  // detail "low"
  TextBound text;
};

constexpr TextBound kTwice = TextBound::kTwiceCount;
constexpr TextBound kBytes = TextBound::kUtf8Bytes;
constexpr std::optional<int64_t> kNoRule = std::nullopt;

// A row names a model and its snapshots and variants: `name` itself or `name` followed by '-'
// ("gpt-4o" is also "gpt-4o-2024-08-06" and "gpt-4o-mini"): the first row that matches is the
// model's, so a longer name comes before its prefix. An id no row names has no image rule and
// its text is bounded at twice our count.
constexpr Row kRows[] = {
    // OpenAI: platform.openai.com/docs/guides/images-vision, "Calculating costs".
    {"gpt-4o-mini", tiles(2833, 5667), 2833, kTwice},  // 48,169: billed as gpt-4o's dollars
    {"gpt-4o", kGpt4oImage, kGpt4oLowImage, kTwice},
    {"chatgpt-4o", tiles(85, 170), 85, kTwice},
    {"gpt-4-turbo", tiles(85, 170), 85, kTwice},
    {"gpt-4-vision", tiles(85, 170), 85, kTwice},
    {"gpt-4.5", tiles(85, 170), 85, kTwice},
    {"gpt-4.1-mini", patches(162), patches(162), kTwice},
    {"gpt-4.1-nano", patches(246), patches(246), kTwice},
    // Listed with the tile models (1,445) and measured as 1,536 patches at 1x: the larger.
    {"gpt-4.1", patches(100), patches(100), kTwice},
    {"o1", tiles(75, 150), 75, kTwice},
    {"o3", tiles(75, 150), 75, kTwice},
    {"o4-mini", patches(172), patches(172), kTwice},
    {"gpt-5-mini", patches(162), patches(162), kTwice},
    {"gpt-5-nano", patches(246), patches(246), kTwice},
    {"gpt-5-pro", kNoRule, kNoRule, kTwice},  // not in the table: may differ from gpt-5's
    // OpenRouter's GPT-5 (Mini) with GPT Image 1 (Mini), its prompt priced as GPT Image 1's
    // input: no documented rule (gpt-5's 1,190 held gpt-5-image-mini, whose GPT-5 Mini bills 2,489)
    {"gpt-5-image", kNoRule, kNoRule, kTwice},
    {"gpt-5", tiles(70, 140), 70, kTwice},
    {"computer-use-preview", tiles(65, 129), 65, kTwice},
    // Anthropic: platform.claude.com/docs/en/build-with-claude/vision ("detail" is OpenAI's).
    // The models before Opus 4.7, each version named (a Claude row does not take a later minor
    // version: "claude-opus-4" is Opus 4 and its dated snapshots, not Opus 4.9); every other
    // Claude, the newer ones and any version not yet released, takes the larger bound ("claude").
    {"claude-opus-4-6", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-opus-4-5", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-opus-4-1", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-opus-4-0", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-opus-4", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-sonnet-4-6", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-sonnet-4-5", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-sonnet-4-0", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-sonnet-4", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-haiku-4-5", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-3-7", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-3-5", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude-3", kClaudeStandard, kClaudeStandard, kTwice},
    {"claude", kClaudeHigh, kClaudeHigh, kTwice},
    // Google: ai.google.dev/gemini-api/docs/tokens; the 3072x3072 limit: Vertex AI's input
    // file requirements.
    {"gemini", kGemini, kGemini, kTwice},
    // Qwen: www.alibabacloud.com/help/en/model-studio/vision ("detail" changes nothing).
    {"qwen-vl", kQwenVl, kQwenVl, kTwice},
    {"qwen2-vl", kQwenVl, kQwenVl, kTwice},
    {"qwen-2-vl", kQwenVl, kQwenVl, kTwice},
    {"qwen2.5-vl", kQwenVl, kQwenVl, kTwice},
    {"qwen-2.5-vl", kQwenVl, kQwenVl, kTwice},
    {"qwen3-vl", kQwenVl, kQwenVl, kTwice},
    // 32k vocabularies with byte fallback (measured: tools/prompt_cap_scripts.py). Mistral's
    // later models (Tekken, 131k) are named alike, so every Mistral model is bounded so.
    {"llama-2", kNoRule, kNoRule, kBytes},
    {"llama2", kNoRule, kNoRule, kBytes},
    {"codellama", kNoRule, kNoRule, kBytes},
    {"mistral", kNoRule, kNoRule, kBytes},
    {"mixtral", kNoRule, kNoRule, kBytes},
    {"codestral", kNoRule, kNoRule, kBytes},
    {"ministral", kNoRule, kNoRule, kBytes},
    // Pixtral: 16-pixel patches of an image scaled to fit 1024x1024 (64 x 64), a break token
    // closing each of the 64 rows (the last an end token); "detail" changes nothing
    // (docs.mistral.ai/capabilities/vision; the model's processor_config: longest_edge 1024).
    {"pixtral", kPixtral, kPixtral, kBytes},
    {"devstral", kNoRule, kNoRule, kBytes},
    {"magistral", kNoRule, kNoRule, kBytes},
};

// The byte-fallback rows are the table's last: every reservation asks whether its model's is one
// (text_prompt_tokens), and scans those alone (the whole table was ~500 instructions a call).
constexpr size_t kFirstByteFallbackRow = [] {
  size_t i = std::size(kRows);
  while (i > 0 && kRows[i - 1].text == kBytes) --i;
  return i;
}();
static_assert(std::none_of(std::begin(kRows), std::begin(kRows) + kFirstByteFallbackRow,
                           [](const Row& r) { return r.text == kBytes; }),
              "the byte-fallback rows must be the table's last");

// The id without the provider ("openai/"), the variant (":batch") or the route ("@openai").
std::string_view bare_name(std::string_view id) {
  if (const size_t at = id.find('@'); at != std::string_view::npos) id = id.substr(0, at);
  if (const size_t colon = id.rfind(':'); colon != std::string_view::npos) id = id.substr(0, colon);
  if (const size_t slash = id.find('/'); slash != std::string_view::npos) id = id.substr(slash + 1);
  return id;
}

// Whether the rest of a name after a Claude row starts with a minor version ("-9", ".9-fast"),
// not a dated snapshot ("-20250514", eight digits) or a word ("-sonnet"): a version the row
// does not name.
bool names_version(std::string_view rest) {
  size_t digits = 0;
  while (1 + digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[1 + digits]))) ++digits;
  return digits > 0 && digits <= 2;
}

// Whether `row` names the bare id `name` (case-insensitively). Anthropic's own names write
// versions with '-' ("claude-opus-4-7"), OpenRouter's with '.': Claude's rows match either, and
// never a later version of theirs (names_version). (No copy of the name: every call's
// audit asks.)
bool names(std::string_view row, std::string_view name) {
  const bool claude = row.substr(0, 7) == "claude-";
  const auto same = [claude](char c, char r) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c == r || (claude && c == '.' && r == '-');
  };
  if (name.size() < row.size() || (name.size() > row.size() && !same(name[row.size()], '-'))) return false;
  for (size_t i = 0; i < row.size(); ++i) {
    if (!same(name[i], row[i])) return false;
  }
  return !(claude && names_version(name.substr(row.size())));
}

}  // namespace

PromptBounds prompt_bounds(std::string_view model_id) noexcept {
  const std::string_view name = bare_name(model_id);
  for (const Row& r : kRows) {
    if (names(r.name, name)) return {r.image, r.low_image, r.text};
  }
  return {};
}

int64_t text_prompt_tokens(std::string_view model_id, const RequestShape& shape, int64_t counted,
                           int64_t context_window) noexcept {
  // prompt_bounds(model_id).text, from the rows that may answer it (no earlier row names one of
  // theirs: the first match is theirs)
  const std::string_view name = bare_name(model_id);
  if (std::none_of(std::begin(kRows) + kFirstByteFallbackRow, std::end(kRows),
                   [name](const Row& r) { return names(r.name, name); })) {
    return counted;
  }
  const int64_t bytes = shape.text_bytes + kPromptOverheadTokens;
  return std::max(counted, context_window > 0 ? std::min(bytes, context_window) : bytes);
}

namespace {

// `images` images, `low` of them at detail "low", at `each` and `each_low` tokens.
int64_t images_at(int64_t images, int64_t low, int64_t each, int64_t each_low) {
  return (images - low) * each + low * each_low;
}

}  // namespace

std::optional<int64_t> image_prompt_tokens(std::string_view model_id, const RequestShape& shape) noexcept {
  if (shape.images == 0) return 0;
  const PromptBounds b = prompt_bounds(model_id);
  const int64_t low = std::min(shape.low_detail_images, shape.images);
  if ((low < shape.images && !b.image_tokens) || (low > 0 && !b.low_detail_image_tokens)) return std::nullopt;
  return images_at(shape.images, low, b.image_tokens.value_or(0), b.low_detail_image_tokens.value_or(0));
}

int64_t image_context_tokens(std::string_view model_id, ImageParts images) noexcept {
  if (images.images <= 0) return 0;
  const PromptBounds b = prompt_bounds(model_id);
  return images_at(images.images, std::clamp<int64_t>(images.low_detail, 0, images.images),
                   b.image_tokens.value_or(kGpt4oImage), b.low_detail_image_tokens.value_or(kGpt4oLowImage));
}

}  // namespace orroute
