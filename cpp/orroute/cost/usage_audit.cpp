#include "orroute/cost/usage_audit.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "orroute/cost/prompt_bounds.h"
#include "orroute/no_destructor.h"

namespace orroute {
namespace {

UsageCounts counts_from(const Usage& u) {
  UsageCounts c;
  c.prompt_tokens = u.prompt_tokens;
  c.completion_tokens = u.completion_tokens;
  c.cached_tokens = u.cached_tokens;
  c.cache_write_tokens = u.cache_write_tokens;
  c.audio_tokens = u.audio_tokens;
  c.reasoning_tokens = u.reasoning_tokens;
  c.audio_output_tokens = u.audio_output_tokens;
  c.image_output_tokens = u.image_output_tokens;
  return c;
}

// Breakdowns larger than their totals (a server's bug) are dropped: the totals alone are billed.
bool breakdowns_fit(const UsageCounts& c) {
  return c.cached_tokens + c.cache_write_tokens + c.audio_tokens <= c.prompt_tokens &&
         c.reasoning_tokens + c.audio_output_tokens + c.image_output_tokens <= c.completion_tokens;
}

// Token counts below ours would book less than the call cost. Our count (of a prompt's text: its
// images are left out, each model bills them its own way) is exact for OpenAI's families and close
// for others, but other tokenizers legitimately report fewer, and a tiny prompt is mostly our chat
// template: only a report under a quarter of our count, less that template, is refused.
constexpr int64_t kUnderReportRatio = 4;
constexpr int64_t kTemplateTokens = 16;

// Why `reported` (the upstream's) cannot be the count of what we `counted`, or "".
std::string under_report(const char* field, int64_t reported, int64_t counted) {
  if (reported * kUnderReportRatio + kTemplateTokens >= counted) return "";
  return "usage." + std::string(field) + " " + std::to_string(reported) +
         " is less than a quarter of the " + std::to_string(counted) + " tokens counted";
}

std::string under_reported(const UsageCounts& reported, const UsageCounts& counted) {
  std::string why = under_report("prompt_tokens", reported.prompt_tokens, counted.prompt_tokens);
  if (why.empty()) {
    why = under_report("completion_tokens", reported.completion_tokens, counted.completion_tokens);
  }
  return why;
}

// A prompt with input audio whose upstream did not say which of its tokens were audio: every
// prompt token but the cache's read as audio (a copy of `c`), the dearer reading where audio costs
// more; `c` itself when the upstream named its audio tokens or the request sent none.
UsageCounts all_audio(const UsageCounts& c, const RequestShape& shape) {
  UsageCounts a = c;
  if (shape.audio_parts > 0 && c.audio_tokens == 0) {
    a.audio_tokens = std::max<int64_t>(0, c.prompt_tokens - c.cached_tokens - c.cache_write_tokens);
  }
  return a;
}

// Adds `why` to the charge's problems: its counts are cut to a bound, and its cost, which priced
// the tokens cut, is not believed (the catalog price of the counts is booked).
void note_capped(AuditedCharge& out, const std::string& why) {
  out.problem = out.problem.empty() ? why : out.problem + "; " + why;
  out.counts_capped = true;
}

// Prompt tokens far above our count of what was sent. We count a prompt's text exactly for
// OpenAI's encodings and within a family factor for others (docs/tokenizer.md); a provider adds a
// prompt of its own at times (a few tokens a message, a system prompt of a few hundred). Twice our
// count and kPromptOverheadTokens is past all of that for a vocabulary of 100k tokens and more; a
// 32k vocabulary with byte fallback may spell the text one token per byte, so its bound is the
// text's bytes (TextBound, cost/prompt_bounds.h). Images add the most their model may bill for
// them. A report above the bound is not an honest count (believed up to the context window, it let
// one reply book a window's worth of a ten-token prompt), and is charged at that bound, its
// breakdowns cut to fit.
constexpr int64_t kOverReportRatio = 2;

// The most the request's images may be billed by any model that may answer it (the one asked and
// its `models`); nullopt when one of them has no rule for images.
std::optional<int64_t> images_bound(const ChargeInput& in, const RequestShape& shape) {
  std::optional<int64_t> most = image_prompt_tokens(in.requested, shape);
  for (const std::string& m : shape.models) {
    const std::optional<int64_t> b = most ? image_prompt_tokens(m, shape) : std::nullopt;
    most = b ? std::max(*most, *b) : b;
  }
  return most;
}

// Whether a model that may answer the request (the one asked, one of its `models`, which the
// upstream falls back to, or `priced`, the model the call is priced as: a router's pick) spells
// text by bytes (TextBound::kUtf8Bytes): its honest count may reach the text's bytes whoever was
// asked first.
bool any_spells_by_bytes(const ChargeInput& in, std::string_view priced, const RequestShape& shape) {
  const auto by_bytes = [](std::string_view m) { return prompt_bounds(m).text == TextBound::kUtf8Bytes; };
  return by_bytes(in.requested) || (priced != in.requested && by_bytes(priced)) ||
         std::any_of(shape.models.begin(), shape.models.end(), by_bytes);
}

// Whether our count of the prompt (with its images' bound) bounds what an honest upstream bills
// for it. Not with tools or reasoning carried back (RequestShape::tools), the web plugin (its
// results are added to the prompt upstream), images no rule bounds, or parts only the upstream
// can size: there the window bounds the prompt.
bool prompt_sized(const RequestShape& shape, const std::optional<int64_t>& images) {
  return shape.unsized_parts == 0 && images && shape.tools == 0 && shape.replayed_reasoning == 0 &&
         !shape.web_plugin;
}

void cap_prompt(const ChargeInput& in, std::string_view priced, const RequestShape& shape, int64_t images,
                AuditedCharge& out) {
  UsageCounts& c = out.counts;
  const int64_t counted = std::max<int64_t>(0, in.counted_prompt_tokens);
  const int64_t twice = counted * kOverReportRatio + kPromptOverheadTokens + images;
  if (c.prompt_tokens <= twice) return;  // within every bound: the model's row is not looked up
  const bool by_bytes = any_spells_by_bytes(in, priced, shape);
  const int64_t bound = by_bytes ? std::max(twice, shape.text_bytes + kPromptOverheadTokens + images) : twice;
  if (c.prompt_tokens <= bound) return;
  std::string why = "usage.prompt_tokens " + std::to_string(c.prompt_tokens) + " is more than twice the " +
                    std::to_string(counted) + " prompt tokens counted";
  if (by_bytes) why += " or the " + std::to_string(shape.text_bytes) + " bytes of its text";
  why += ", and " + std::to_string(kPromptOverheadTokens) + " more";
  if (images > 0) why += ", and " + std::to_string(images) + " for its images";
  note_capped(out, why);
  c.prompt_tokens = bound;
  c.cached_tokens = std::min(c.cached_tokens, bound);
  c.cache_write_tokens = std::min(c.cache_write_tokens, bound - c.cached_tokens);
  c.audio_tokens = std::min(c.audio_tokens, bound - c.cached_tokens - c.cache_write_tokens);
}

// Completion tokens above the bound the request carried: charged at the bound, so one lying
// reply cannot book more than its reservation allowed. Its output breakdowns are cut to fit.
void cap_output(int64_t bound, AuditedCharge& out) {
  UsageCounts& c = out.counts;
  if (bound <= 0 || c.completion_tokens <= bound) return;
  const std::string why = "usage.completion_tokens " + std::to_string(c.completion_tokens) +
                          " is more than the " + std::to_string(bound) +
                          " output tokens the request allowed (its max_tokens)";
  note_capped(out, why);
  c.completion_tokens = bound;
  c.reasoning_tokens = std::min(c.reasoning_tokens, bound);
  c.audio_output_tokens = std::min(c.audio_output_tokens, bound - c.reasoning_tokens);
  c.image_output_tokens = std::min(c.image_output_tokens, bound - c.reasoning_tokens - c.audio_output_tokens);
}

// The catalog price a reported cost is checked against from above (up to cost_check_multiple
// times it), and what a cost above that is booked at: the price of the charged counts, or for a
// router's pick the router's bound (the dearest model it may pick, what the reservation assumed),
// not the pick's own. An upstream naming a cheaper model than it ran, with the cost of the one it
// ran, is booked at that cost (it was replaced by the named model's price: booked low); the
// named model's price stays the floor.
Money cost_ceiling(const CallPricer& pricer, const ChargeInput& in, const RequestShape& shape,
                   const UsageCounts& counts, Money priced) {
  if (in.served.empty() || in.served == in.requested || !pricer.is_router(in.requested) ||
      pricer.priced_id(in.requested, in.served, shape) == in.requested) {
    return priced;
  }
  const std::optional<Money> bound = pricer.price(in.requested, "", shape, counts);
  return bound ? std::max(priced, *bound) : priced;
}

const RequestShape& shape_of(const ChargeInput& in) {
  static const NoDestructor<RequestShape> kPlain;  // a plain request's shape (no exit-time destructor)
  return in.shape != nullptr ? *in.shape : *kPlain;
}

// audit_tokens, written into `out` (audit_charge's own: no charge copied a call); `priced` is the
// model the call is priced as (CallPricer::priced_id; the one asked where no pricer tells).
void audit_tokens_into(const ChargeInput& in, std::string_view priced, AuditedCharge& out) {
  const RequestShape& shape = shape_of(in);
  const Usage* u = in.usage && in.usage->present ? in.usage : nullptr;
  const std::optional<int64_t> images = images_bound(in, shape);
  UsageCounts counted;
  counted.prompt_tokens = std::max<int64_t>(0, in.counted_prompt_tokens);
  counted.completion_tokens = std::max<int64_t>(0, in.counted_completion_tokens);

  if (in.metered) {
    out.source = "metered";
    out.counts = counted;
  } else if (!u) {
    out.source = "tokenizer";
    out.problem = "the reply had no usage";
    out.counts = counted;
  } else if (!u->token_problem.empty()) {
    out.source = "tokenizer";
    out.problem = "usage." + u->token_problem;
    out.counts = counted;
  } else {
    out.counts = counts_from(*u);
    const int64_t window = in.context_length.value_or(0);
    if (window > 0 && (out.counts.prompt_tokens > window || out.counts.completion_tokens > window)) {
      out.source = "tokenizer";
      out.problem = "usage token counts exceed the model's context window";
      out.counts = counted;
    } else if (std::string why = under_reported(out.counts, counted); !why.empty()) {
      out.source = "tokenizer";
      out.problem = std::move(why);
      out.counts = counted;
    } else if (!breakdowns_fit(out.counts)) {
      UsageCounts totals;
      totals.prompt_tokens = out.counts.prompt_tokens;
      totals.completion_tokens = out.counts.completion_tokens;
      out.counts = totals;
      out.problem = "usage breakdowns exceed their totals";
    }
    if (prompt_sized(shape, images)) cap_prompt(in, priced, shape, *images, out);
    cap_output(in.output_bound, out);
  }

  // Where our count (its text) stands in for the upstream's, the images are what the reservation
  // assumed: the most their model may bill. A prompt with parts only the upstream can size (a
  // file, a video, audio, an image at its original size or one no rule bounds) is what the
  // reservation assumed too, the whole window.
  if (!out.source.empty() && images) out.counts.prompt_tokens += *images;
  if (!out.source.empty() && (shape.unsized_parts > 0 || !images)) {
    const int64_t window = in.context_length.value_or(0);
    if (window <= 0) {
      out.cost = in.reserved;
      out.source = "reservation";
      out.problem = (out.problem.empty() ? "" : out.problem + "; ") +
                    "the prompt has parts only the upstream can size and the model lists no context length";
      return;
    }
    out.counts.prompt_tokens = std::max(out.counts.prompt_tokens, window);
  }
}

}  // namespace

AuditedCharge audit_tokens(const ChargeInput& in) {
  AuditedCharge out;
  audit_tokens_into(in, in.requested, out);
  return out;
}

AuditedCharge audit_charge(const CallPricer& pricer, const ChargeInput& in) noexcept {
  AuditedCharge out;
  const RequestShape& shape = shape_of(in);
  try {
    const Usage* u = in.usage && in.usage->present ? in.usage : nullptr;
    audit_tokens_into(in, pricer.priced_id(in.requested, in.served, shape), out);
    if (out.source == "reservation") return out;

    const std::optional<Money> catalog = pricer.price(in.requested, in.served, shape, out.counts);
    if (!catalog) {
      out.cost = in.reserved;
      out.source = "reservation";
      if (out.problem.empty()) out.problem = "the call could not be priced";
      return out;
    }
    // The catalog price at its dearest reading of the counts (see all_audio): what a replaced
    // figure is booked at, and the ceiling of the reported cost; `catalog` stays its floor.
    Money dearest = *catalog;
    UsageCounts dearest_counts = out.counts;
    if (shape.audio_parts > 0 && out.counts.audio_tokens == 0) {
      const UsageCounts audio = all_audio(out.counts, shape);
      if (const std::optional<Money> a = pricer.price(in.requested, in.served, shape, audio); !a) {
        out.cost = in.reserved;
        out.source = "reservation";
        if (out.problem.empty()) out.problem = "the call could not be priced";
        return out;
      } else if (*a > dearest) {
        dearest = *a;
        dearest_counts = audio;
      }
    }
    if (!out.source.empty()) {  // metered or tokenizer: our own count, priced
      out.cost = dearest;
      out.counts = dearest_counts;
      return out;
    }
    if (out.counts_capped) {  // its cost priced tokens it could not have been billed
      out.cost = dearest;
      out.counts = dearest_counts;
      out.source = "catalog";
      return out;
    }
    if (!u->cost_reported) {
      out.cost = dearest;
      out.counts = dearest_counts;
      out.source = "catalog";
      if (out.problem.empty()) out.problem = "no cost reported";
      return out;
    }
    if (!u->cost_problem.empty()) {
      out.cost = dearest;
      out.counts = dearest_counts;
      out.source = "catalog";
      out.problem = "usage." + u->cost_problem;
      return out;
    }
    const Money ceiling = cost_ceiling(pricer, in, shape, dearest_counts, dearest);
    if (*u->cost > ceiling * pricer.policy().cost_check_multiple) {
      out.cost = ceiling;
      out.counts = dearest_counts;
      out.source = "catalog";
      out.problem = "usage.cost " + u->cost->to_string() + " is more than " +
                    std::to_string(pricer.policy().cost_check_multiple) +
                    "x the catalog price " + ceiling.to_string();
      return out;
    }
    if (*u->cost * pricer.policy().cost_check_multiple < *catalog) {  // a paid call reported free
      out.cost = dearest;
      out.counts = dearest_counts;
      out.source = "catalog";
      out.problem = "usage.cost " + u->cost->to_string() + " is less than 1/" +
                    std::to_string(pricer.policy().cost_check_multiple) + " of the catalog price " +
                    catalog->to_string();
      return out;
    }

    out.cost = *u->cost;
    out.source = "upstream";
  } catch (const std::exception&) {
    out.cost = in.reserved;
    out.source = "reservation";
    out.problem = "the charge could not be computed";
  }
  if (out.cost.is_negative()) out.cost = Money();
  return out;
}

AuditedCharge audit_usage(const ModelCatalog& catalog, const PricingPolicy& policy, const std::string& model,
                          const Usage& usage, int64_t counted_prompt_tokens, Money reserved) {
  ChargeInput in;
  in.requested = model;
  in.served = model;
  in.usage = &usage;
  in.counted_prompt_tokens = counted_prompt_tokens;
  if (const ModelInfo* m = catalog.find(model); m && m->context_length > 0) {
    in.context_length = m->context_length;
  }
  in.reserved = reserved;
  return audit_charge(CallPricer(catalog, policy), in);
}

}  // namespace orroute
