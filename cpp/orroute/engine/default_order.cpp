#include "orroute/engine/default_order.h"

#include "orroute/no_destructor.h"

namespace orroute {

const std::vector<std::string>& default_fallback_order() {
  // The guide's dated ids are gone from OpenRouter: claude-3-5-sonnet-20241022 -> its successor
  // claude-sonnet-4.5, claude-3-haiku-20240307 -> claude-3-haiku, llama-3-1-8b-instruct ->
  // llama-3.1-8b-instruct, gemini-pro-1.5 -> its successor gemini-2.5-pro.
  static const NoDestructor<std::vector<std::string>> order(std::vector<std::string>{
      "openai/gpt-4o",           "openai/gpt-4o-mini",
      "anthropic/claude-sonnet-4.5", "anthropic/claude-3-haiku",
      "meta-llama/llama-3.1-8b-instruct", "google/gemini-2.5-pro"});
  return *order;
}

}  // namespace orroute
