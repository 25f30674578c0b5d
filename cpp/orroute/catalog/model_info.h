// One model of OpenRouter's catalog (an entry of GET /api/v1/models), as parsed by ModelCatalog.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/pricing.h"

namespace orroute {

// The `reasoning` object of a model entry (absent for non-reasoning and router models).
struct ReasoningInfo {
  bool mandatory = false;                     // reasoning cannot be turned off
  bool default_enabled = false;               // reasoning is on unless disabled
  std::vector<std::string> supported_efforts;  // e.g. {"high","medium","low"}; may be empty
  std::optional<std::string> default_effort;
  std::optional<bool> supports_max_tokens;

  friend bool operator==(const ReasoningInfo&, const ReasoningInfo&) = default;
};

// Immutable description of a model. Owned by a ModelCatalog; plain data, safe to read from any
// thread.
struct ModelInfo {
  std::string id;                 // slug used in requests, e.g. "openai/gpt-4o" or "x/y:free"
  std::string canonical_slug;     // permanent slug (may carry a date); empty if not listed
  std::string name;               // display name
  std::string description;
  std::optional<std::string> hugging_face_id;
  int64_t created = 0;            // unix seconds
  int64_t context_length = 0;     // tokens; 0 when the catalog lists 0 or null (unknown)
  std::optional<int64_t> max_completion_tokens;  // top_provider.max_completion_tokens (null = no cap listed)
  std::optional<int64_t> top_provider_context_length;
  bool is_moderated = false;      // top_provider.is_moderated
  std::string modality;           // e.g. "text+image->text"
  std::vector<std::string> input_modalities;   // text, image, file, audio, video
  std::vector<std::string> output_modalities;  // text, image, audio, embeddings
  std::string tokenizer;          // tokenizer family: GPT, Claude, Gemini, Llama3, Router, Other...
  std::optional<std::string> instruct_type;
  std::vector<std::string> supported_parameters;  // sorted
  std::optional<ReasoningInfo> reasoning;
  std::optional<std::string> expiration_date;     // YYYY-MM-DD
  std::optional<std::string> knowledge_cutoff;
  std::optional<int64_t> per_request_prompt_tokens;      // per_request_limits.prompt_tokens
  std::optional<int64_t> per_request_completion_tokens;  // per_request_limits.completion_tokens
  Pricing pricing;
  uint32_t capabilities = 0;      // bit set of Capability (capabilities.h), derived at parse time

  // Author part of the id ("openai" for "openai/gpt-4o", "google" for "~google/gemini-pro-latest").
  std::string_view provider() const;
  // Variant suffix after ':' ("free", "batch", "thinking"...), empty if none.
  std::string_view variant() const;
  // True if `name` is in supported_parameters. O(log n).
  bool supports_parameter(std::string_view name) const;
  bool has_input(std::string_view modality) const;
  bool has_output(std::string_view modality) const;
  // True for ":free" variants and models whose prompt, completion and request prices are all zero.
  bool is_free() const;

  // Field by field (a snapshot load must equal the JSON parse).
  friend bool operator==(const ModelInfo&, const ModelInfo&) = default;
};

}  // namespace orroute
