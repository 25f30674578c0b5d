// JSON answers: find the JSON in a model's reply, check that it parses and that it matches a JSON
// schema (a documented subset of draft 2020-12), and check tool-call arguments against the tools'
// parameter schemas. Answers are hostile: parsing is iterative (no recursion on the input), the
// validator stops at a fixed depth, and every failure is a Verdict, never an exception.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/verify/verdict.h"

namespace orroute {

// The JSON text inside a reply: the whole reply if it starts with '{' or '[' (after whitespace),
// else the first fenced code block (```json or ```) starting with '{' or '[', else the span from
// the first '{' to the last '}'. nullopt if there is none. Never throws; views into `reply`.
std::optional<std::string_view> extract_json(std::string_view reply);

// A compiled JSON schema. Supported keywords: type (string or list), enum, const, properties,
// required, additionalProperties (bool or schema), items (schema), prefixItems, minItems,
// maxItems, uniqueItems, minLength, maxLength (code points), minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, multipleOf, anyOf, oneOf, allOf, not. Other keywords (pattern, format, $ref
// ...) are not enforced and listed by unsupported_keywords(). Immutable; safe to share across
// threads.
class JsonSchema {
 public:
  // Throws InvalidArgument if `schema_json` is not JSON or not an object/boolean schema.
  explicit JsonSchema(std::string_view schema_json);
  ~JsonSchema();
  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;

  // Validates a JSON *text* (not a reply): pass, or fail with the first violation's path.
  Verdict validate_text(std::string_view json) const;
  // extract_json(reply) then validate_text; fail if the reply has no JSON.
  Verdict check_reply(std::string_view reply) const;
  const std::vector<std::string>& unsupported_keywords() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Pass if `reply` contains JSON that parses (see extract_json), fail otherwise. Never throws.
Verdict check_json_reply(std::string_view reply);

// Tool calls against the tools offered in the request. `tools_json` is the request's OpenAI
// `tools` array ([{"type":"function","function":{"name","parameters"}}]). Immutable; thread-safe.
class ToolCallValidator {
 public:
  // Throws InvalidArgument if `tools_json` is not such an array or a parameters schema is invalid.
  explicit ToolCallValidator(std::string_view tools_json);
  ~ToolCallValidator();
  ToolCallValidator(ToolCallValidator&&) noexcept;
  ToolCallValidator& operator=(ToolCallValidator&&) noexcept;

  // `tool_calls_json` is the reply message's `tool_calls` array. Fail if it is not an array of
  // calls, a name is not offered, or arguments are not a JSON object matching the schema; pass
  // when every call validates; abstain when the array is empty.
  Verdict check(std::string_view tool_calls_json) const;
  std::vector<std::string> tool_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orroute
