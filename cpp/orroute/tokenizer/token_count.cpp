#include "orroute/tokenizer/token_count.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/text_memo.h"
#include "orroute/tokenizer/encoding.h"
#include "orroute/utf8.h"
#include "orroute/json_writer.h"

namespace orroute {
namespace {

struct Family {
  const char* name;
  const char* encoding;
  double factor;
};

// Closest encoding and a rough length correction per tokenizer family (measured ratios on mixed
// English/code text reported for these tokenizers; estimates, not exact counts).
constexpr Family kFamilies[] = {
    {"GPT", "o200k_base", 1.00},      {"Claude", "cl100k_base", 1.15},
    {"Gemini", "o200k_base", 1.05},   {"Llama2", "cl100k_base", 1.30},
    {"Llama3", "cl100k_base", 0.97},  {"Llama4", "o200k_base", 1.00},
    {"Qwen", "cl100k_base", 1.00},    {"Qwen3", "cl100k_base", 1.00},
    {"Mistral", "cl100k_base", 1.10}, {"DeepSeek", "cl100k_base", 1.05},
    {"Grok", "o200k_base", 1.05},     {"Cohere", "cl100k_base", 1.05},
    {"Nova", "cl100k_base", 1.10},    {"Yi", "cl100k_base", 1.15},
    {"Router", "cl100k_base", 1.10},  {"Other", "cl100k_base", 1.10},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool equal_ci(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool contains(std::string_view s, std::string_view p) { return s.find(p) != std::string_view::npos; }

ModelTokenizer from_family(const Family& f, bool exact) {
  return {f.encoding, f.name, exact ? 1.0 : f.factor, exact};
}

const Family& family_named(std::string_view name) {
  for (const Family& f : kFamilies) {
    if (name == f.name) return f;
  }
  return kFamilies[std::size(kFamilies) - 1];
}

// tiktoken 0.14's tiktoken.model tables, in its order (exact names first, then prefixes).
constexpr std::pair<std::string_view, std::string_view> kTiktokenExact[] = {
    {"o1", "o200k_base"}, {"o3", "o200k_base"}, {"o4-mini", "o200k_base"}, {"gpt-5", "o200k_base"},
    {"gpt-4.1", "o200k_base"}, {"gpt-4o", "o200k_base"}, {"gpt-4", "cl100k_base"},
    {"gpt-3.5-turbo", "cl100k_base"}, {"gpt-3.5", "cl100k_base"}, {"gpt-35-turbo", "cl100k_base"},
    {"davinci-002", "cl100k_base"}, {"babbage-002", "cl100k_base"},
    {"text-embedding-ada-002", "cl100k_base"}, {"text-embedding-3-small", "cl100k_base"},
    {"text-embedding-3-large", "cl100k_base"},
    // deprecated text, code, edit and embedding models
    {"text-davinci-003", "p50k_base"}, {"text-davinci-002", "p50k_base"},
    {"text-davinci-001", "r50k_base"}, {"text-curie-001", "r50k_base"},
    {"text-babbage-001", "r50k_base"}, {"text-ada-001", "r50k_base"}, {"davinci", "r50k_base"},
    {"curie", "r50k_base"}, {"babbage", "r50k_base"}, {"ada", "r50k_base"},
    {"code-davinci-002", "p50k_base"}, {"code-davinci-001", "p50k_base"},
    {"code-cushman-002", "p50k_base"}, {"code-cushman-001", "p50k_base"},
    {"davinci-codex", "p50k_base"}, {"cushman-codex", "p50k_base"},
    {"text-davinci-edit-001", "p50k_edit"}, {"code-davinci-edit-001", "p50k_edit"},
    {"text-similarity-davinci-001", "r50k_base"}, {"text-similarity-curie-001", "r50k_base"},
    {"text-similarity-babbage-001", "r50k_base"}, {"text-similarity-ada-001", "r50k_base"},
    {"text-search-davinci-doc-001", "r50k_base"}, {"text-search-curie-doc-001", "r50k_base"},
    {"text-search-babbage-doc-001", "r50k_base"}, {"text-search-ada-doc-001", "r50k_base"},
    {"code-search-babbage-code-001", "r50k_base"}, {"code-search-ada-code-001", "r50k_base"},
    {"gpt2", "gpt2"}, {"gpt-2", "gpt2"},
};
constexpr std::pair<std::string_view, std::string_view> kTiktokenPrefix[] = {
    {"o1-", "o200k_base"}, {"o3-", "o200k_base"}, {"o4-mini-", "o200k_base"},
    {"gpt-5", "o200k_base"}, {"gpt-4.5-", "o200k_base"}, {"gpt-4.1-", "o200k_base"},
    {"chatgpt-4o-", "o200k_base"}, {"gpt-4o-", "o200k_base"}, {"gpt-4-", "cl100k_base"},
    {"gpt-3.5-turbo-", "cl100k_base"}, {"gpt-35-turbo-", "cl100k_base"},
    {"gpt-oss-", "o200k_harmony"}, {"ft:gpt-4o", "o200k_base"}, {"ft:gpt-4", "cl100k_base"},
    {"ft:gpt-3.5-turbo", "cl100k_base"}, {"ft:davinci-002", "cl100k_base"},
    {"ft:babbage-002", "cl100k_base"},
};

// Lower-cased id without OpenRouter's variant suffix (":free", ":thinking"; not "ft:"), and the
// same without its provider ("openai/").
struct ModelName {
  std::string full;
  std::string bare;
};
ModelName normalize(std::string_view model) {
  std::string m = lower(model);
  if (const size_t colon = m.rfind(':'); colon != std::string::npos && !starts_with(m, "ft:")) {
    m.resize(colon);
  }
  const size_t slash = m.find('/');
  std::string bare = m.substr(slash == std::string::npos ? 0 : slash + 1);
  return {std::move(m), std::move(bare)};
}

bool shipped(std::string_view encoding) {
  for (const std::string& n : encoding_names()) {
    if (n == encoding) return true;
  }
  return false;
}

}  // namespace

std::span<const std::pair<std::string_view, std::string_view>> tiktoken_model_names() noexcept {
  return kTiktokenExact;
}
std::span<const std::pair<std::string_view, std::string_view>> tiktoken_model_prefixes() noexcept {
  return kTiktokenPrefix;
}

std::string_view tiktoken_encoding_name(std::string_view model) noexcept {
  for (const auto& [name, enc] : kTiktokenExact) {
    if (model == name) return enc;
  }
  for (const auto& [prefix, enc] : kTiktokenPrefix) {
    if (starts_with(model, prefix)) return enc;
  }
  return {};
}

std::string encoding_for_model(std::string_view model_or_family, bool strict) {
  const ModelTokenizer t = tokenizer_for_model(model_or_family);
  if (t.exact) return std::string(t.encoding);
  const ModelName m = normalize(model_or_family);
  const std::string_view legacy = tiktoken_encoding_name(m.bare);
  if (!legacy.empty() && !shipped(legacy) && (m.full == m.bare || starts_with(m.full, "openai/"))) {
    std::string names;
    for (const std::string& n : encoding_names()) names += (names.empty() ? "" : ", ") + n;
    throw NotFound("model '" + client_text(model_or_family) + "' uses tiktoken's " +
                   std::string(legacy) + " encoding, which orroute does not ship (it ships " +
                   names + "); load its .tiktoken file with orroute.tiktoken_compat.Encoding(" +
                   "name, pat_str=..., mergeable_ranks=load_tiktoken_bpe(path), " +
                   "special_tokens=...)");
  }
  if (strict) {
    throw NotFound("no exact tokenizer known for model '" + client_text(model_or_family) + "'");
  }
  return std::string(t.encoding);
}

namespace {

// OpenAI's own models whose encoding orroute ships, as tiktoken maps them (o200k_harmony counts
// ordinary text as o200k_base); nullptr for others.
const char* openai_encoding(std::string_view m) {
  const std::string_view enc = tiktoken_encoding_name(m);
  if (enc == "cl100k_base") return "cl100k_base";
  if (enc == "o200k_base" || enc == "o200k_harmony") return "o200k_base";
  return nullptr;
}

}  // namespace

namespace {

ModelTokenizer resolve_tokenizer(std::string_view model_or_family) {
  for (const Family& f : kFamilies) {
    if (equal_ci(model_or_family, f.name)) return from_family(f, false);
  }
  const ModelName names = normalize(model_or_family);
  const std::string& m = names.full;
  const std::string& bare = names.bare;
  const bool openai_provider = starts_with(m, "openai/");
  if (const char* enc = openai_encoding(bare); enc && (openai_provider || m == bare)) {
    return {enc, "GPT", 1.0, true};
  }
  auto fam = [&](const char* name) { return from_family(family_named(name), false); };
  if (contains(m, "claude") || starts_with(m, "anthropic/")) return fam("Claude");
  if (contains(m, "gemini") || contains(m, "gemma") || starts_with(m, "google/")) return fam("Gemini");
  if (contains(m, "llama-4") || contains(m, "llama4")) return fam("Llama4");
  if (contains(m, "llama-2") || contains(m, "llama2")) return fam("Llama2");
  if (contains(m, "llama") || starts_with(m, "meta-llama/")) return fam("Llama3");
  if (contains(m, "qwen3")) return fam("Qwen3");
  if (contains(m, "qwen") || contains(m, "qwq")) return fam("Qwen");
  for (const char* k : {"mistral", "mixtral", "codestral", "ministral", "pixtral", "devstral",
                        "magistral"}) {
    if (contains(m, k)) return fam("Mistral");
  }
  if (contains(m, "deepseek")) return fam("DeepSeek");
  if (contains(m, "grok") || starts_with(m, "x-ai/")) return fam("Grok");
  if (starts_with(m, "cohere/") || contains(m, "command-r")) return fam("Cohere");
  if (contains(m, "nova")) return fam("Nova");
  if (starts_with(m, "01-ai/") || starts_with(bare, "yi-")) return fam("Yi");
  if (openai_provider || starts_with(bare, "gpt-") || starts_with(bare, "chatgpt")) return fam("GPT");
  return fam("Other");
}

}  // namespace

namespace {

// A model's tokenizer and, once a count asks for it, its encoding.
struct KnownModel {
  ModelTokenizer tokenizer;
  const Encoding* encoding = nullptr;
  std::string key;  // tokenizer_key(), once asked ("" = not yet)
};

// `model_or_family`'s entry, valid until this thread's next call (it may clear the map).
KnownModel& known_model(std::string_view model_or_family) {
  // A call asks several times for the same few models (plan, pricing, metering), and resolving
  // one lower-cases it and scans ~30 names: remembered per thread, no lock. Bounded: a thread
  // that sees more distinct ids than this starts over.
  constexpr size_t kMaxRemembered = 1024;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  thread_local std::unordered_map<std::string, KnownModel, Hash, std::equal_to<>> known;
  // The two entries found last: a call asks for one or two models over and over (the plan's
  // reference and its first candidate, in turn), and comparing one is a quarter of hashing it and
  // finding it in the map. Map nodes stay put until the map is cleared (which forgets both).
  using Entry = std::pair<const std::string, KnownModel>;
  thread_local Entry* last = nullptr;
  thread_local Entry* before = nullptr;
  if (last != nullptr && last->first == model_or_family) return last->second;
  if (before != nullptr && before->first == model_or_family) {
    std::swap(last, before);
    return last->second;
  }
  Entry* found = nullptr;
  if (auto it = known.find(model_or_family); it != known.end()) {
    found = &*it;
  } else {
    const ModelTokenizer t = resolve_tokenizer(model_or_family);
    if (known.size() >= kMaxRemembered) {
      known.clear();
      last = nullptr;
    }
    found = &*known.emplace(std::string(model_or_family), KnownModel{t, nullptr, {}}).first;
  }
  before = last;
  last = found;
  return last->second;
}

// The tokenizer of `model_or_family` and its encoding (looked up once per thread and model).
std::pair<ModelTokenizer, const Encoding*> tokenizer_and_encoding(std::string_view model_or_family) {
  KnownModel& k = known_model(model_or_family);
  if (k.encoding == nullptr) k.encoding = &encoding_named(k.tokenizer.encoding);
  return {k.tokenizer, k.encoding};
}

}  // namespace

ModelTokenizer tokenizer_for_model(std::string_view model_or_family) {
  return known_model(model_or_family).tokenizer;
}

std::string tokenizer_key(std::string_view model_or_family) {
  KnownModel& k = known_model(model_or_family);
  if (k.key.empty()) {
    // Short enough to live inside the string (no heap) for factors below 100.
    std::string_view encoding = k.tokenizer.encoding;
    if (encoding.ends_with("_base")) encoding.remove_suffix(5);
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, std::llround(k.tokenizer.factor * 1e6));
    k.key.reserve(encoding.size() + 1 + static_cast<size_t>(end - digits));
    k.key.append(encoding).append(1, '/').append(digits, end);
  }
  return k.key;
}

namespace {

TokenCount finish(const ModelTokenizer& t, int64_t raw) {
  const int64_t tokens =
      t.exact ? raw : static_cast<int64_t>(std::ceil(static_cast<double>(raw) * t.factor - 1e-9));
  return {tokens, t.exact, t.encoding, t.family};
}

std::string str_or_json(const rapidjson::Value& v) {
  if (v.IsString()) return {v.GetString(), v.GetStringLength()};
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

std::string strip_period(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// OpenAI cookbook ("How to count tokens with tiktoken", tools section).
int64_t tools_tokens(const Encoding& enc, bool o200k, std::string_view tools_json) {
  if (tools_json.empty()) return 0;
  rapidjson::Document doc;
  if (parse_json_text(tools_json, doc) != JsonParse::kOk || !doc.IsArray()) throw ParseError("tools must be a JSON array");
  if (doc.Empty()) return 0;
  const int64_t func_init = o200k ? 7 : 10, prop_init = 3, prop_key = 3, enum_init = -3,
                enum_item = 3, func_end = 12;
  auto count = [&](std::string_view s) { return static_cast<int64_t>(enc.count_ordinary(s)); };
  int64_t n = 0;
  for (const auto& tool : doc.GetArray()) {
    if (!tool.IsObject()) throw ParseError("each tool must be a JSON object");
    const auto fit = tool.FindMember("function");
    const rapidjson::Value& f = fit != tool.MemberEnd() ? fit->value : tool;
    if (!f.IsObject()) throw ParseError("tool function must be a JSON object");
    n += func_init;
    std::string name, desc;
    if (auto it = f.FindMember("name"); it != f.MemberEnd()) name = str_or_json(it->value);
    if (auto it = f.FindMember("description"); it != f.MemberEnd()) desc = str_or_json(it->value);
    n += count(name + ":" + strip_period(desc));
    const auto pit = f.FindMember("parameters");
    if (pit == f.MemberEnd() || !pit->value.IsObject()) continue;
    const auto props = pit->value.FindMember("properties");
    if (props == pit->value.MemberEnd() || !props->value.IsObject() ||
        props->value.MemberCount() == 0) {
      continue;
    }
    n += prop_init;
    for (const auto& p : props->value.GetObject()) {
      n += prop_key;
      std::string type, pdesc;
      if (p.value.IsObject()) {
        if (auto it = p.value.FindMember("type"); it != p.value.MemberEnd()) type = str_or_json(it->value);
        if (auto it = p.value.FindMember("description"); it != p.value.MemberEnd()) {
          pdesc = str_or_json(it->value);
        }
        if (auto it = p.value.FindMember("enum"); it != p.value.MemberEnd() && it->value.IsArray()) {
          n += enum_init;
          for (const auto& item : it->value.GetArray()) n += enum_item + count(str_or_json(item));
        }
      }
      n += count(std::string(p.name.GetString(), p.name.GetStringLength()) + ":" + type + ":" +
                 strip_period(pdesc));
    }
  }
  return n + func_end;
}

}  // namespace

int64_t image_tokens(std::string_view detail, int32_t width, int32_t height) {
  if (detail == "low") return 85;
  double w = width > 0 ? width : 1024, h = height > 0 ? height : 1024;
  if (std::max(w, h) > 2048) {  // fit in 2048x2048
    const double s = 2048 / std::max(w, h);
    w *= s;
    h *= s;
  }
  if (std::min(w, h) > 768) {  // shortest side to 768
    const double s = 768 / std::min(w, h);
    w *= s;
    h *= s;
  }
  const int64_t tiles = static_cast<int64_t>(std::ceil(w / 512) * std::ceil(h / 512));
  return 85 + 170 * tiles;
}

namespace {

// Counts of the texts of chat messages and of tools arrays, by encoding: an agent resends its
// system prompt, tools and earlier turns on every call, and each is counted once per process.
// 8 MiB: the stored texts of a few long conversations; a message over 128 KiB (a shard's quarter)
// is counted each time.
// Never destroyed: a network thread may still settle a call (and count) while statics are torn
// down at exit.
TextMemo<int64_t>& chat_count_memo() {
  static auto* memo = new TextMemo<int64_t>(TextMemoLimits{8u << 20, 256});
  return *memo;
}
// Made while the library loads, as the encoding registry (encoding.cpp): made on first use, on a
// thread without the GIL, a fork could copy its initialization half done.
[[maybe_unused]] const TextMemo<int64_t>& chat_count_memo_at_load = chat_count_memo();

// The tokens of a message's role. Nearly every role is one of a few words, each too short for the
// memo (every count of every message encoded its role again, ~0.5k instructions): those are
// counted once per encoding and thread, by the same encoder; any other role is counted as a text.
constexpr std::array<std::string_view, 5> kRoles = {"user", "assistant", "system", "tool", "developer"};

template <typename Count>
int64_t role_tokens(const Encoding& enc, std::string_view role, const Count& count) {
  size_t r = 0;
  while (r < kRoles.size() && kRoles[r] != role) ++r;
  if (r == kRoles.size()) return count(role);
  struct RoleCounts {
    const Encoding* encoding = nullptr;  // encodings live as long as the process
    std::array<int64_t, kRoles.size()> tokens{};
  };
  thread_local std::array<RoleCounts, 4> by_encoding;  // orroute ships two encodings
  for (RoleCounts& c : by_encoding) {
    if (c.encoding == &enc) return c.tokens[r];
    if (c.encoding == nullptr) {
      for (size_t i = 0; i < kRoles.size(); ++i) c.tokens[i] = static_cast<int64_t>(enc.count_ordinary(kRoles[i]));
      c.encoding = &enc;
      return c.tokens[r];
    }
  }
  return count(role);
}

}  // namespace

TextMemoStats chat_count_memo_stats() { return chat_count_memo().stats(); }

TokenCount count_text_tokens(std::string_view model_or_family, std::string_view text) {
  const auto [t, enc] = tokenizer_and_encoding(model_or_family);
  return finish(t, static_cast<int64_t>(enc->count_ordinary(text)));
}

TokenCount count_chat_tokens(std::string_view model_or_family, std::span<const ChatMessage> messages,
                             std::string_view tools_json, ImageCount images) {
  // Not a structured binding: clang before 16 cannot capture one in the lambdas below.
  const std::pair<ModelTokenizer, const Encoding*> found = tokenizer_and_encoding(model_or_family);
  const ModelTokenizer& t = found.first;
  const Encoding& enc = *found.second;
  auto count_now = [&](std::string_view s) { return static_cast<int64_t>(enc.count_ordinary(s)); };
  auto count = [&](std::string_view s) { return chat_count_memo().get(t.encoding, s, count_now); };
  int64_t n = 3;  // every reply is primed with <|start|>assistant<|message|>
  for (const ChatMessage& m : messages) {
    n += 3 + role_tokens(enc, m.role, count);
    for (const ChatContentPart& p : m.content) {
      if (!p.is_image) {
        n += count(p.text);
      } else if (images == ImageCount::kEstimated) {
        n += image_tokens(p.detail, p.width, p.height);
      }
    }
    if (!m.name.empty()) n += count(m.name) + 1;
    for (const ChatToolCall& c : m.tool_calls) n += 3 + count(c.name) + count(c.arguments);
  }
  // The tools array is one text in its own domain (its count is not a text's count).
  if (!tools_json.empty()) {
    n += chat_count_memo().get("tools " + std::string(t.encoding), tools_json, [&](std::string_view tools) {
      return tools_tokens(enc, t.encoding == "o200k_base", tools);
    });
  }
  return finish(t, n);
}

std::vector<ChatMessage> chat_messages_of(const rapidjson::Value& doc) {
  if (!doc.IsArray()) throw ParseError("messages must be a JSON array");
  std::vector<ChatMessage> messages;
  messages.reserve(doc.Size());
  for (const auto& v : doc.GetArray()) {
    if (!v.IsObject()) throw ParseError("each message must be a JSON object");
    ChatMessage m;
    for (const auto& member : v.GetObject()) {
      const std::string_view key(member.name.GetString(), member.name.GetStringLength());
      const rapidjson::Value& val = member.value;
      if (val.IsNull()) continue;
      if (key == "role") {
        m.role = str_or_json(val);
      } else if (key == "name") {
        m.name = str_or_json(val);
      } else if (key == "content") {
        if (!val.IsArray()) {
          m.content.push_back({false, str_or_json(val), {}, 0, 0});
          continue;
        }
        for (const auto& part : val.GetArray()) {
          ChatContentPart p;
          const auto type = part.IsObject() ? part.FindMember("type") : part.MemberEnd();
          const bool image = part.IsObject() && type != part.MemberEnd() && type->value.IsString() &&
                             std::string_view(type->value.GetString()) == "image_url";
          if (image) {
            p.is_image = true;
            if (auto it = part.FindMember("image_url"); it != part.MemberEnd() && it->value.IsObject()) {
              const auto& img = it->value;
              if (auto d = img.FindMember("detail"); d != img.MemberEnd() && d->value.IsString()) {
                p.detail = d->value.GetString();
              }
              if (auto w = img.FindMember("width"); w != img.MemberEnd() && w->value.IsInt()) p.width = w->value.GetInt();
              if (auto h = img.FindMember("height"); h != img.MemberEnd() && h->value.IsInt()) p.height = h->value.GetInt();
            }
          } else if (part.IsObject() && part.HasMember("text")) {
            p.text = str_or_json(part["text"]);
          } else {
            p.text = str_or_json(part);
          }
          m.content.push_back(std::move(p));
        }
      } else if (key == "tool_calls" && val.IsArray()) {
        for (const auto& call : val.GetArray()) {
          ChatToolCall c;
          if (call.IsObject()) {
            const auto f = call.FindMember("function");
            if (f != call.MemberEnd() && f->value.IsObject()) {
              if (auto it = f->value.FindMember("name"); it != f->value.MemberEnd()) c.name = str_or_json(it->value);
              if (auto it = f->value.FindMember("arguments"); it != f->value.MemberEnd()) {
                c.arguments = str_or_json(it->value);
              }
            }
          }
          m.tool_calls.push_back(std::move(c));
        }
      }
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

TokenCount count_chat_tokens_json(std::string_view model_or_family, std::string_view messages_json,
                                  std::string_view tools_json) {
  LocalJson<> messages_doc;  // no heap for usual messages
  rapidjson::Document& doc = messages_doc.doc();
  // Parsed in place in a copy: a conversation is mostly text, decoded where it lies, not copied.
  std::string text(messages_json);
  if (parse_json_in_place(text, doc) != JsonParse::kOk || !doc.IsArray()) throw ParseError("messages must be a JSON array");
  return count_chat_tokens(model_or_family, chat_messages_of(doc), tools_json);
}

}  // namespace orroute
