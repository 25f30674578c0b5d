#include "orroute/cost/abandoned_calls.h"

#include <array>
#include <cctype>

namespace orroute {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// OpenRouter's list of providers whose generation (and billing) stops when the stream is cut,
// as its docs give it; "anthropic" and "openai" also name orroute's direct providers.
constexpr std::array<std::string_view, 14> kStopsBilling = {
    "OpenAI", "Azure", "Anthropic", "Fireworks", "Together", "DeepInfra", "Novita",
    "xAI", "DeepSeek", "Cohere", "Chutes", "Friendli", "Cloudflare", "Azure OpenAI"};

}  // namespace

Abandonment abandonment_of(bool request_sent, int status, bool we_hung_up, bool answer_arrived) {
  if (!request_sent) return Abandonment::kNone;
  const bool answering = status >= 200 && status < 300;
  if (status != 0 && !answering) return Abandonment::kNone;  // an error reply
  if (we_hung_up) return Abandonment::kClosedByUs;
  // an error event, or the stream just ended
  return answering && answer_arrived ? Abandonment::kFailedMidAnswer : Abandonment::kNone;
}

bool cancellation_stops_billing(std::string_view provider) {
  for (std::string_view p : kStopsBilling) {
    if (iequals(p, provider)) return true;
  }
  return false;
}

AbandonedBasis abandoned_basis(Abandonment how, bool streamed, std::string_view provider) {
  if (!streamed) return AbandonedBasis::kReservation;  // a cut non-streamed call runs to its end
  if (how == Abandonment::kFailedMidAnswer) return AbandonedBasis::kGenerated;  // it stopped
  return cancellation_stops_billing(provider) ? AbandonedBasis::kGenerated : AbandonedBasis::kReservation;
}

std::string abandoned_reason(Abandonment how, AbandonedBasis basis, bool streamed,
                             std::string_view provider, long long answer_tokens) {
  const std::string who = provider.empty() ? std::string("an unnamed provider") : std::string(provider);
  std::string what = how == Abandonment::kFailedMidAnswer
                         ? "the upstream failed after " + std::to_string(answer_tokens) + " answer tokens"
                         : streamed ? "cancelled after " + std::to_string(answer_tokens) + " answer tokens"
                                    : "cut before the answer arrived";
  if (basis == AbandonedBasis::kGenerated) {
    if (how == Abandonment::kFailedMidAnswer) return what;
    return what + "; " + who + " stops billing when a stream is cut";
  }
  return what + (streamed ? "; " + who + " may bill the whole answer"
                          : "; a non-streamed call is billed in full");
}

}  // namespace orroute
