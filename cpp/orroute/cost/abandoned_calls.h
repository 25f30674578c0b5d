// What a call that was sent but never answered in full may still cost.
//
// OpenRouter bills a cut call (openrouter-api.md, "Cancellation"): when the client hangs up, a
// provider that supports cancellation stops generating and bills what it generated so far; every
// other provider, and every non-streamed request, keeps running and bills the whole answer. An
// upstream that fails after part of a streamed answer has generated that part. Releasing the
// reservation of such a call would let real spend bypass the budget, so these rules decide what
// is booked instead. Money fails closed: when we cannot see what was generated, the reservation
// (the call's worst case) is booked.
#pragma once

#include <string>
#include <string_view>

namespace orroute {

// How an attempt that the upstream received in full ended without a usable answer.
enum class Abandonment {
  kNone,             // answered, refused with an error status, or never sent: nothing to bill
  kClosedByUs,       // we hung up: the caller cancelled, a timeout, a stream we would not read on
  kFailedMidAnswer,  // the upstream sent part of a streamed answer, then an error or nothing
};

// How an attempt that ended without a usable answer was abandoned: the one rule for the engine's
// chat attempts (ChatSink) and the network client's calls (Call: the gateway's embeddings).
// `request_sent`: the whole request went out (TransferResult::request_sent); `status`: the reply's
// HTTP status (0: none came); `we_hung_up`: we cut the transfer (the caller cancelled, a timeout, a
// reply or stream event we refused); `answer_arrived`: part of a 2xx answer was handed over. An
// error status bills nothing (OpenRouter bills no failed request), and neither does a connection
// that failed before anything we know of was generated. Pure function.
Abandonment abandonment_of(bool request_sent, int status, bool we_hung_up, bool answer_arrived);

// Whether `provider` (the reply's "provider" field, e.g. "OpenAI", or a direct provider's name)
// stops generating and billing when the connection is closed. Case-insensitive; unknown -> false.
bool cancellation_stops_billing(std::string_view provider);

// How the charge of an abandoned attempt is reckoned.
enum class AbandonedBasis {
  kGenerated,    // the prompt and the answer tokens that arrived, at the catalog's prices
  kReservation,  // the whole answer may be billed and we cannot see it: the worst case
};

// The basis for an attempt abandoned as `how`; `streamed` says whether the tokens that arrived
// were counted. Pure function.
AbandonedBasis abandoned_basis(Abandonment how, bool streamed, std::string_view provider);

// A short reason for the ledger's cost_source ("cancelled after 12 answer tokens; OpenAI stops
// billing when a stream is cut"). Never contains request text.
std::string abandoned_reason(Abandonment how, AbandonedBasis basis, bool streamed,
                             std::string_view provider, long long answer_tokens);

}  // namespace orroute
