#include "orroute/provider/provider.h"

#include <array>
#include <utility>

#include "orroute/error.h"
#include "orroute/net/api_client.h"

namespace orroute {

namespace {

constexpr std::string_view kAnthropicVersion = "2023-06-01";
constexpr std::string_view kAzureApiVersion = "2024-10-21";

struct KindInfo {
  ProviderKind kind;
  const char* name;
  std::string_view base_url;  // "" when the deployment must give one
  const char* litellm;
};

constexpr std::array<KindInfo, 10> kKinds{{
    {ProviderKind::kOpenRouter, "openrouter", kDefaultBaseUrl, "openrouter"},
    {ProviderKind::kOpenAI, "openai", "https://api.openai.com/v1", "openai"},
    {ProviderKind::kAnthropic, "anthropic", "https://api.anthropic.com/v1", "anthropic"},
    {ProviderKind::kGemini, "gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "gemini"},
    {ProviderKind::kAzure, "azure", "", "azure"},
    {ProviderKind::kGroq, "groq", "https://api.groq.com/openai/v1", "groq"},
    {ProviderKind::kTogether, "together", "https://api.together.xyz/v1", "together_ai"},
    {ProviderKind::kOllama, "ollama", "http://localhost:11434/v1", "ollama"},
    {ProviderKind::kVllm, "vllm", "http://localhost:8000/v1", "hosted_vllm"},
    {ProviderKind::kOpenAICompatible, "openai_compatible", "", ""},
}};

const KindInfo& info(ProviderKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k;
  }
  return kKinds.back();
}

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

std::string url_escape_segment(std::string_view s) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace

ProviderKind parse_provider_kind(std::string_view name) {
  if (name == "openai-compatible") return ProviderKind::kOpenAICompatible;
  for (const auto& k : kKinds) {
    if (name == k.name) return k.kind;
  }
  std::string known;
  for (const auto& k : kKinds) known += std::string(known.empty() ? "" : ", ") + k.name;
  throw InvalidArgument("unknown provider kind \"" + std::string(name) + "\" (known: " + known + ")");
}

const char* to_string(ProviderKind kind) { return info(kind).name; }

WireFormat wire_format(ProviderKind kind) {
  return kind == ProviderKind::kAnthropic ? WireFormat::kAnthropicMessages : WireFormat::kChatCompletions;
}

std::string default_base_url(ProviderKind kind) { return std::string(info(kind).base_url); }

std::string litellm_provider(ProviderKind kind) { return info(kind).litellm; }

void validate(const ProviderConfig& config) {
  const std::string who = "provider \"" + config.name + "\"";
  if (config.name.empty()) throw InvalidArgument("a provider needs a name");
  const std::string url = config.base_url.empty() ? default_base_url(config.kind) : config.base_url;
  if (url.empty()) throw InvalidArgument(who + ": base_url is required for kind " + to_string(config.kind));
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    throw InvalidArgument(who + ": base_url must start with http:// or https://");
  }
  if (has_line_break(url) || has_line_break(config.api_version)) {
    throw InvalidArgument(who + ": base_url and api_version must be one line");
  }
  for (const auto& k : config.api_keys) {
    if (has_line_break(k)) throw InvalidArgument(who + ": an API key contains a line break");
  }
  for (const auto& [k, v] : config.headers.fields) {
    if (k.empty() || has_line_break(k) || has_line_break(v) || k.find(':') != std::string::npos) {
      throw InvalidArgument(who + ": header \"" + k + "\" is not a valid single-line header");
    }
  }
  if (config.weight < 0) throw InvalidArgument(who + ": weight must be >= 0");
  if (config.default_max_tokens <= 0) throw InvalidArgument(who + ": default_max_tokens must be > 0");
  if (config.max_retries < 0) throw InvalidArgument(who + ": max_retries must be >= 0");
  for (const Timeouts& t : {config.timeouts, config.stream_timeouts}) {
    if (t.connect_ms < 0 || t.first_byte_ms < 0 || t.idle_ms < 0 || t.total_ms < 0) {
      throw InvalidArgument(who + ": timeouts must not be negative");
    }
  }
}

ClientConfig client_config(const ProviderConfig& config) {
  validate(config);
  ClientConfig c;
  c.base_url = config.base_url.empty() ? default_base_url(config.kind) : config.base_url;
  c.api_keys = config.api_keys;
  c.timeouts = config.timeouts;
  c.stream_timeouts = config.stream_timeouts;
  c.retry.max_retries = config.max_retries;
  switch (config.kind) {
    case ProviderKind::kAnthropic:
      c.auth_header = "x-api-key";
      c.auth_prefix = "";
      c.headers.add("anthropic-version",
                    config.api_version.empty() ? std::string(kAnthropicVersion) : config.api_version);
      break;
    case ProviderKind::kAzure:
      c.auth_header = "api-key";
      c.auth_prefix = "";
      break;
    default:
      break;
  }
  for (const auto& [k, v] : config.headers.fields) c.headers.add(k, v);
  return c;
}

std::string chat_path(const ProviderConfig& config, std::string_view model) {
  switch (config.kind) {
    case ProviderKind::kAnthropic:
      return "/messages";
    case ProviderKind::kAzure:
      return "/openai/deployments/" + url_escape_segment(model) + "/chat/completions?api-version=" +
             url_escape_segment(config.api_version.empty() ? kAzureApiVersion : config.api_version);
    default:
      return "/chat/completions";
  }
}

}  // namespace orroute
