// What bounds the prompt tokens a model may bill, per model family, in one table (prompt_bounds.cpp,
// docs/cost.md "What a prompt may be billed" cites each figure): the most one image may be billed
// when its size is unknown (the upstream fetches it: a caller's width/height are hints a budget
// cannot trust), and how far above our count an honest count of the prompt's text may go. The
// reservation adds the images' bound to our count of the text (shaped_worst_case); the usage audit
// believes a reported prompt up to that bound (usage_audit.cpp). A model the table has no image rule
// for bounds an image by its context window, as a file or a video.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "orroute/cost/call_pricing.h"

namespace orroute {

// How far above our count of a prompt's text (count_chat_tokens: exact for OpenAI's encodings, a
// family factor over them for others) the upstream's honest count may go.
enum class TextBound {
  // Twice our count and 512 (templates, a provider's own prompt): byte-level vocabularies of
  // 100k tokens and more count a text within a small factor of cl100k/o200k.
  kTwiceCount,
  // The text's UTF-8 bytes and 512: a 32k vocabulary with byte fallback (Llama 2, Mistral's
  // first models) spells a character it lacks one token per byte, and collapses runs cl100k takes
  // in one token (a run of no-break spaces: 9x cl100k's count; docs/cost.md has the measures).
  // Each of its tokens is at least one byte, so the bytes bound it whatever the text.
  kUtf8Bytes,
};

// A provider's own prompt (templates, a system prompt of a few hundred tokens) on top of the text
// an upstream is sent: part of every TextBound.
inline constexpr int64_t kPromptOverheadTokens = 512;

struct PromptBounds {
  // The most one image part may be billed at detail "high"/"auto", and at "low"; nullopt when no
  // documented rule bounds it (the reservation then assumes the context window).
  std::optional<int64_t> image_tokens;
  std::optional<int64_t> low_detail_image_tokens;
  TextBound text = TextBound::kTwiceCount;
};

// The bounds of `model_id` (an OpenRouter id "openai/gpt-4o-mini", a provider's own name
// "claude-opus-4-7", variants ":batch" included). Never throws.
PromptBounds prompt_bounds(std::string_view model_id) noexcept;

// The prompt tokens of the request's text (without its images) to reserve on `model_id`, given our
// count of it, `counted`, and the model's context window (<= 0: unknown): an honest count above
// ours is the audit's to believe only where it may be far above it, a byte-fallback vocabulary's
// (TextBound::kUtf8Bytes: up to the text's bytes and kPromptOverheadTokens, and no more than the
// window holds), which a reservation of our count held a few times too little.
int64_t text_prompt_tokens(std::string_view model_id, const RequestShape& shape, int64_t counted,
                           int64_t context_window) noexcept;

// The most the image parts of a request shaped `shape` may be billed on `model_id`: 0 without
// images, nullopt when the model has no rule for them. Never throws.
std::optional<int64_t> image_prompt_tokens(std::string_view model_id, const RequestShape& shape) noexcept;

// A request's image parts, as a model's context must hold them.
struct ImageParts {
  int64_t images = 0;
  int64_t low_detail = 0;  // of `images`, those at detail "low"
};

// The tokens `images` take in `model_id`'s context, for choosing a model the prompt fits (the
// selector, the attempt loop's skip): the model's rule, or for a model with no rule gpt-4o's
// (1,445 an image, 85 at "low"). That model's reservation already holds its whole window, so
// money is safe whatever this says; an image bound of the window would rule the model out of
// every image prompt instead, and gpt-4o's is the smallest bound a vision model documents for a
// full-size image, so a prompt too large at it surely does not fit. 0 without images. Never throws.
int64_t image_context_tokens(std::string_view model_id, ImageParts images) noexcept;

}  // namespace orroute
