#include "orroute/net/stream_scrub.h"

#include <algorithm>

#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"

namespace orroute {

namespace {

// The delta texts a consumer joins across chunks.
constexpr const char* kFields[] = {"content", "reasoning", "refusal"};

size_t choice_index(const rapidjson::Value& choice) {
  const auto it = choice.FindMember("index");
  if (it == choice.MemberEnd() || !it->value.IsInt64()) return 0;
  return static_cast<size_t>(std::clamp<int64_t>(it->value.GetInt64(), 0, 255));
}

bool finishes(const rapidjson::Value& choice) {
  const auto it = choice.FindMember("finish_reason");
  return it != choice.MemberEnd() && it->value.IsString() && it->value.GetStringLength() > 0;
}

}  // namespace

std::string StreamScrubber::take_held(size_t choice, const char* field) {
  auto it = std::find_if(held_.begin(), held_.end(),
                         [&](const Held& h) { return h.choice == choice && h.field == field; });
  if (it == held_.end()) return {};
  std::string text = std::move(it->text);
  held_.erase(it);
  return text;
}

std::optional<std::string> StreamScrubber::scrub_text(size_t choice, const char* field, std::string_view text,
                                                      const ApiClient& keys) {
  std::string joined = take_held(choice, field);
  if (joined.empty()) {  // the usual event: nothing held, nothing copied unless its end is held now
    const size_t tail = keys.key_start_at_end(text);
    if (tail == 0) return std::nullopt;
    held_.push_back(Held{choice, field, std::string(text.substr(text.size() - tail))});
    return std::string(text.substr(0, text.size() - tail));
  }
  // A key whole inside one event was masked where the event was read; one across the join is here.
  joined.append(text);
  joined = keys.scrub(std::move(joined));
  if (const size_t tail = keys.key_start_at_end(joined); tail > 0) {
    held_.push_back(Held{choice, field, joined.substr(joined.size() - tail)});
    joined.resize(joined.size() - tail);
  }
  return joined;
}

bool StreamScrubber::scrub(rapidjson::Document& chunk, const ApiClient& keys) {
  if (!chunk.IsObject()) return false;
  const auto choices = chunk.FindMember("choices");
  if (choices == chunk.MemberEnd() || !choices->value.IsArray()) return false;
  auto& alloc = chunk.GetAllocator();
  bool changed = false;
  for (auto& c : choices->value.GetArray()) {
    if (!c.IsObject()) continue;
    const size_t index = choice_index(c);
    const bool last = finishes(c);  // the choice ends: what it holds goes out here
    auto delta = c.FindMember("delta");
    if (delta == c.MemberEnd() || !delta->value.IsObject()) {
      if (!last || !holding()) continue;
      c.RemoveMember("delta");
      c.AddMember("delta", rapidjson::Value(rapidjson::kObjectType), alloc);
      delta = c.FindMember("delta");
    }
    for (const char* field : kFields) {
      const auto v = delta->value.FindMember(field);
      const bool present = v != delta->value.MemberEnd() && v->value.IsString();
      if (!present && !last) continue;
      const std::string_view text =
          present ? std::string_view(v->value.GetString(), v->value.GetStringLength()) : std::string_view();
      std::optional<std::string> out = scrub_text(index, field, text, keys);
      if (last) {
        if (std::string rest = take_held(index, field); !rest.empty()) out = (out ? *out : std::string(text)) + rest;
      }
      if (!out || (!present && out->empty())) continue;
      rapidjson::Value value(out->data(), static_cast<rapidjson::SizeType>(out->size()), alloc);
      if (present) {
        v->value = std::move(value);
      } else {
        delta->value.AddMember(rapidjson::StringRef(field), value, alloc);
      }
      changed = true;
    }
  }
  return changed;
}

bool StreamScrubber::flush(rapidjson::Document& out, const StreamAccumulator& acc) {
  if (held_.empty()) return false;
  std::stable_sort(held_.begin(), held_.end(), [](const Held& a, const Held& b) { return a.choice < b.choice; });
  out.SetObject();
  auto& a = out.GetAllocator();
  auto str = [&a](std::string_view s) {
    return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
  };
  out.AddMember("id", str(acc.id()), a);
  out.AddMember("object", "chat.completion.chunk", a);
  out.AddMember("created", acc.created(), a);
  out.AddMember("model", str(acc.model()), a);
  rapidjson::Value choices(rapidjson::kArrayType);
  for (const Held& h : held_) {
    if (choices.Empty() || choices[choices.Size() - 1]["index"].GetUint64() != h.choice) {
      rapidjson::Value choice(rapidjson::kObjectType);
      choice.AddMember("index", static_cast<uint64_t>(h.choice), a);
      choice.AddMember("delta", rapidjson::Value(rapidjson::kObjectType), a);
      choice.AddMember("finish_reason", rapidjson::Value(), a);
      choices.PushBack(choice, a);
    }
    choices[choices.Size() - 1]["delta"].AddMember(rapidjson::StringRef(h.field), str(h.text), a);
  }
  out.AddMember("choices", choices, a);
  held_.clear();
  return true;
}

}  // namespace orroute
