#include "orroute/net/stream_scrub.h"

#include <algorithm>

#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"

namespace orroute {

namespace {

// The delta texts a consumer joins across chunks, and a tool call's (in its "function"). A tool
// call's id is not joined (a chunk naming it replaces it) and is scrubbed with its event; but a
// consumer shows it beside the name, so one ending like a key's start waits for the name (kId).
constexpr const char* kFields[] = {"content", "reasoning", "refusal"};
constexpr const char* kName = "name";
constexpr const char* kToolFields[] = {kName, "arguments"};
constexpr const char* kId = "id";

// `value`'s "index" clamped to [0, max] (0 when it has none), as StreamAccumulator reads it.
size_t clamped_index(const rapidjson::Value& value, int64_t max) {
  const auto it = value.FindMember("index");
  if (it == value.MemberEnd() || !it->value.IsInt64()) return 0;
  return static_cast<size_t>(std::clamp<int64_t>(it->value.GetInt64(), 0, max));
}

size_t choice_index(const rapidjson::Value& choice) { return clamped_index(choice, 255); }
size_t tool_index(const rapidjson::Value& tool_call) { return clamped_index(tool_call, 1023); }

// The choice ends here, so what it holds goes out with it; one ending in an error does not (the
// error may carry the rest of a key, and the failed stream drops what is held).
bool finishes(const rapidjson::Value& choice) {
  const auto it = choice.FindMember("finish_reason");
  return it != choice.MemberEnd() && it->value.IsString() && it->value.GetStringLength() > 0 &&
         std::string_view(it->value.GetString(), it->value.GetStringLength()) != "error";
}

std::string_view view(const rapidjson::Value& s) { return {s.GetString(), s.GetStringLength()}; }

rapidjson::Value string_value(std::string_view s, rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

// Sets `object[name]` to `text`, in place if it has one.
void set_string(rapidjson::Value& object, const char* name, std::string_view text,
                rapidjson::Document::AllocatorType& a) {
  if (const auto it = object.FindMember(name); it != object.MemberEnd()) {
    it->value = string_value(text, a);
  } else {
    object.AddMember(rapidjson::StringRef(name), string_value(text, a), a);
  }
}

// Adds {"index": tool, "function": {field: text}} to `delta`'s tool_calls ({"index": tool, "id":
// text} for the id).
void add_tool_call(rapidjson::Value& delta, size_t tool, const char* field, std::string_view text,
                   rapidjson::Document::AllocatorType& a) {
  auto calls = delta.FindMember("tool_calls");
  if (calls == delta.MemberEnd() || !calls->value.IsArray()) {
    delta.RemoveMember("tool_calls");
    delta.AddMember("tool_calls", rapidjson::Value(rapidjson::kArrayType), a);
    calls = delta.FindMember("tool_calls");
  }
  rapidjson::Value call(rapidjson::kObjectType);
  call.AddMember("index", static_cast<uint64_t>(tool), a);
  if (field == kId) {
    call.AddMember(rapidjson::StringRef(kId), string_value(text, a), a);
  } else {
    rapidjson::Value function(rapidjson::kObjectType);
    function.AddMember(rapidjson::StringRef(field), string_value(text, a), a);
    call.AddMember("function", function, a);
  }
  calls->value.PushBack(call, a);
}

}  // namespace

std::string StreamScrubber::take_held(const Slot& slot) {
  auto it = std::find_if(held_.begin(), held_.end(), [&](const Held& h) {
    return h.choice == slot.choice && h.field == slot.field && h.tool == slot.tool;
  });
  if (it == held_.end()) return {};
  std::string text = std::move(it->text);
  held_.erase(it);
  return text;
}

bool StreamScrubber::holds(const Slot& slot) const {
  return std::any_of(held_.begin(), held_.end(), [&](const Held& h) {
    return h.choice == slot.choice && h.field == slot.field && h.tool == slot.tool;
  });
}

bool StreamScrubber::hold_id(size_t choice, size_t tool, rapidjson::Value& call, const ApiClient& keys) {
  const auto id = call.FindMember(kId);
  if (id == call.MemberEnd() || !id->value.IsString() || holds({choice, kId, tool}) ||
      holds({choice, kName, tool}) || keys.key_start_at_end(view(id->value)) == 0) {
    return false;
  }
  held_.push_back(Held{choice, kId, tool, std::string(view(id->value))});
  call.RemoveMember(kId);
  return true;
}

bool StreamScrubber::scrub_id_and_name(size_t choice, size_t tool, bool last, rapidjson::Value& call,
                                       rapidjson::Document& chunk, const ApiClient& keys) {
  auto& a = chunk.GetAllocator();
  auto function = call.FindMember("function");
  const bool in_function = function != call.MemberEnd() && function->value.IsObject();
  const auto name = in_function ? function->value.FindMember(kName) : call.MemberEnd();
  const bool has_name = in_function && name != function->value.MemberEnd() && name->value.IsString();
  if (!has_name && !last) return false;
  std::string id = take_held({choice, kId, tool});
  std::string joined_name = take_held({choice, kName, tool});
  if (has_name) joined_name.append(view(name->value));
  const size_t start = keys.key_start_at_end(id);
  if (!keys.scrub_across(id, joined_name) && !last &&
      keys.key_start_at_end(id.substr(id.size() - start) + joined_name) > joined_name.size()) {
    // The id's end and the name so far still begin a key: both wait for the next piece.
    held_.push_back(Held{choice, kId, tool, std::move(id)});
    held_.push_back(Held{choice, kName, tool, std::move(joined_name)});
    if (has_name) name->value = string_value("", a);
    return has_name;
  }
  set_string(call, kId, id, a);
  std::string out = pass({choice, kName, tool}, joined_name, last, keys).value_or(joined_name);
  if (out.empty() && !has_name) return true;
  if (!in_function) {
    call.RemoveMember("function");
    call.AddMember("function", rapidjson::Value(rapidjson::kObjectType), a);
    function = call.FindMember("function");
  }
  set_string(function->value, kName, out, a);
  return true;
}

bool StreamScrubber::holds_for(size_t choice) const {
  return std::any_of(held_.begin(), held_.end(), [&](const Held& h) { return h.choice == choice; });
}

std::optional<std::string> StreamScrubber::scrub_text(const Slot& slot, std::string_view text, const ApiClient& keys) {
  std::string joined = take_held(slot);
  if (joined.empty()) {  // the usual event: nothing held, nothing copied unless its end is held now
    const size_t tail = keys.key_start_at_end(text);
    if (tail == 0) return std::nullopt;
    held_.push_back(Held{slot.choice, slot.field, slot.tool, std::string(text.substr(text.size() - tail))});
    return std::string(text.substr(0, text.size() - tail));
  }
  // A key whole inside one event was masked where the event was read; one across the join is here.
  joined.append(text);
  joined = keys.scrub(std::move(joined));
  if (const size_t tail = keys.key_start_at_end(joined); tail > 0) {
    held_.push_back(Held{slot.choice, slot.field, slot.tool, joined.substr(joined.size() - tail)});
    joined.resize(joined.size() - tail);
  }
  return joined;
}

std::optional<std::string> StreamScrubber::pass(const Slot& slot, std::string_view text, bool last,
                                                const ApiClient& keys) {
  std::optional<std::string> out = scrub_text(slot, text, keys);
  if (last) {
    if (std::string rest = take_held(slot); !rest.empty()) out = (out ? *out : std::string(text)) + rest;
  }
  return out;
}

bool StreamScrubber::scrub_fields(size_t choice, bool last, rapidjson::Value& delta, rapidjson::Document& chunk,
                                  const ApiClient& keys) {
  bool changed = false;
  for (const char* field : kFields) {
    const auto v = delta.FindMember(field);
    const bool present = v != delta.MemberEnd() && v->value.IsString();
    if (!present && !last) continue;
    const std::string_view text = present ? view(v->value) : std::string_view();
    const std::optional<std::string> out = pass({choice, field}, text, last, keys);
    if (!out || (!present && out->empty())) continue;
    if (present) {
      v->value = string_value(*out, chunk.GetAllocator());
    } else {
      delta.AddMember(rapidjson::StringRef(field), string_value(*out, chunk.GetAllocator()), chunk.GetAllocator());
    }
    changed = true;
  }
  return changed;
}

bool StreamScrubber::scrub_tool_calls(size_t choice, bool last, rapidjson::Value& delta, rapidjson::Document& chunk,
                                      const ApiClient& keys) {
  bool changed = false;
  size_t current = kNoTool;  // the last tool call this delta carries
  const auto calls = delta.FindMember("tool_calls");
  if (calls != delta.MemberEnd() && calls->value.IsArray()) {
    for (auto& call : calls->value.GetArray()) {
      if (!call.IsObject()) continue;
      current = tool_index(call);
      changed |= hold_id(choice, current, call, keys);
      const bool id_held = holds({choice, kId, current});
      if (id_held) changed |= scrub_id_and_name(choice, current, last, call, chunk, keys);
      const auto function = call.FindMember("function");
      if (function == call.MemberEnd() || !function->value.IsObject()) continue;
      for (const char* field : kToolFields) {
        if (field == kName && id_held) continue;  // scrub_id_and_name's
        const auto text = function->value.FindMember(field);
        if (text == function->value.MemberEnd() || !text->value.IsString()) continue;
        const std::optional<std::string> out = pass({choice, field, current}, view(text->value), last, keys);
        if (!out) continue;
        text->value = string_value(*out, chunk.GetAllocator());
        changed = true;
      }
    }
  }
  // A tool call ends when the choice's next one begins (or the choice finishes).
  if (last || current != kNoTool) changed |= release_tool_calls(choice, last ? kNoTool : current, delta, chunk);
  return changed;
}

bool StreamScrubber::release_tool_calls(size_t choice, size_t keep, rapidjson::Value& delta,
                                        rapidjson::Document& chunk) {
  bool changed = false;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->choice != choice || it->tool == kNoTool || it->tool == keep) {
      ++it;
      continue;
    }
    add_tool_call(delta, it->tool, it->field, it->text, chunk.GetAllocator());
    it = held_.erase(it);
    changed = true;
  }
  return changed;
}

bool StreamScrubber::scrub(rapidjson::Document& chunk, const ApiClient& keys) {
  if (!chunk.IsObject()) return false;
  const auto choices = chunk.FindMember("choices");
  if (choices == chunk.MemberEnd() || !choices->value.IsArray()) return false;
  bool changed = false;
  for (auto& c : choices->value.GetArray()) {
    if (!c.IsObject()) continue;
    const size_t index = choice_index(c);
    const bool last = finishes(c);  // the choice ends: what it holds goes out here
    auto delta = c.FindMember("delta");
    if (delta == c.MemberEnd() || !delta->value.IsObject()) {
      if (!last || !holds_for(index)) continue;
      c.RemoveMember("delta");
      c.AddMember("delta", rapidjson::Value(rapidjson::kObjectType), chunk.GetAllocator());
      delta = c.FindMember("delta");
    }
    changed |= scrub_fields(index, last, delta->value, chunk, keys);
    changed |= scrub_tool_calls(index, last, delta->value, chunk, keys);
  }
  return changed;
}

bool StreamScrubber::flush(rapidjson::Document& out, const StreamAccumulator& acc) {
  return flush(out, ChunkHead{acc.id(), acc.created(), acc.model()});
}

bool StreamScrubber::flush(rapidjson::Document& out, const ChunkHead& head) {
  if (held_.empty()) return false;
  std::stable_sort(held_.begin(), held_.end(), [](const Held& a, const Held& b) { return a.choice < b.choice; });
  out.SetObject();
  auto& a = out.GetAllocator();
  out.AddMember("id", string_value(head.id, a), a);
  out.AddMember("object", "chat.completion.chunk", a);
  out.AddMember("created", head.created, a);
  out.AddMember("model", string_value(head.model, a), a);
  rapidjson::Value choices(rapidjson::kArrayType);
  for (const Held& h : held_) {
    if (choices.Empty() || choices[choices.Size() - 1]["index"].GetUint64() != h.choice) {
      rapidjson::Value choice(rapidjson::kObjectType);
      choice.AddMember("index", static_cast<uint64_t>(h.choice), a);
      choice.AddMember("delta", rapidjson::Value(rapidjson::kObjectType), a);
      choice.AddMember("finish_reason", rapidjson::Value(), a);
      choices.PushBack(choice, a);
    }
    rapidjson::Value& delta = choices[choices.Size() - 1]["delta"];
    if (h.tool == kNoTool) {
      delta.AddMember(rapidjson::StringRef(h.field), string_value(h.text, a), a);
    } else {
      add_tool_call(delta, h.tool, h.field, h.text, a);
    }
  }
  out.AddMember("choices", choices, a);
  held_.clear();
  return true;
}

}  // namespace orroute
