#include "orroute/engine/generated_text_reader.h"

#include <string_view>

namespace orroute {

void GeneratedTextReader::key(std::string_view name) {
  const auto read = [&](Next next, std::string* field = nullptr) {
    next_ = next;
    field_ = field;
  };
  switch (in_[depth_]) {
    case In::kRoot:
      if (name == "choices") read(Next::kChoices);
      break;
    case In::kChoice:
      if (name == "message") read(Next::kMessage);
      break;
    case In::kMessage:
      if (name == "content") {
        read(Next::kText, &content_);
      } else if (name == "reasoning") {
        read(Next::kText, &reasoning_);
        first_reasoning_next_ = !reasoning_seen_;  // the one a lookup by name finds
        reasoning_seen_ = true;
      } else if (name == "refusal") {
        read(Next::kText, &refusal_);
      } else if (name == "reasoning_details") {
        read(Next::kDetails);
      } else if (name == "tool_calls") {
        read(Next::kCalls);
      }
      break;
    case In::kPart:
      if (name == "text") read(Next::kString, parts_of_);
      break;
    case In::kDetail:
      if (name == "text") {
        read(Next::kString, &detail_text_);
      } else if (name == "summary") {
        read(Next::kString, &detail_summary_);
      }
      break;
    case In::kCall:
      if (name == "function") read(Next::kFunction);
      break;
    case In::kFunction:
      if (name == "name") {
        read(Next::kString, &function_name_);
      } else if (name == "arguments") {
        read(Next::kString, &function_arguments_);
      }
      break;
    default:
      break;
  }
}

void GeneratedTextReader::read_value(const char* s, rapidjson::SizeType n) {
  if (first_reasoning_next_) reasoning_is_string_ = s != nullptr;
  first_reasoning_next_ = false;
  if (s != nullptr && (next_ == Next::kText || next_ == Next::kString)) field_->append(s, n);
  next_ = Next::kNone;
}

GeneratedTextReader::In GeneratedTextReader::member_container(bool object) {
  switch (next_) {
    case Next::kChoices:
      return object ? In::kOther : In::kChoices;
    case Next::kMessage:
      if (!object) return In::kOther;
      reasoning_seen_ = reasoning_is_string_ = false;
      details_.clear();
      content_.clear();
      reasoning_.clear();
      refusal_.clear();
      calls_.clear();
      return In::kMessage;
    case Next::kText:
      if (object) return In::kOther;
      parts_of_ = field_;
      return In::kParts;
    case Next::kDetails:
      return object ? In::kOther : In::kDetails;
    case Next::kCalls:
      return object ? In::kOther : In::kCalls;
    case Next::kFunction:
      if (!object) return In::kOther;
      function_name_.clear();
      function_arguments_.clear();
      return In::kFunction;
    default:
      return In::kOther;
  }
}

GeneratedTextReader::In GeneratedTextReader::element_container(bool object) {
  if (!object) return In::kOther;  // only objects are read in the arrays read
  switch (in_[depth_]) {
    case In::kChoices:
      return In::kChoice;
    case In::kParts:
      return In::kPart;
    case In::kDetails:
      detail_text_.clear();
      detail_summary_.clear();
      return In::kDetail;
    case In::kCalls:
      return In::kCall;
    default:
      return In::kOther;
  }
}

void GeneratedTextReader::open_read(bool object) {
  In inside = In::kOther;
  if (depth_ == 0) {
    inside = object ? In::kRoot : In::kOther;
  } else if (next_ != Next::kNone) {
    inside = member_container(object);
  } else {
    inside = element_container(object);
  }
  if (first_reasoning_next_) reasoning_is_string_ = false;
  first_reasoning_next_ = false;
  next_ = Next::kNone;
  ++depth_;
  in_[depth_] = inside;
}

void GeneratedTextReader::close_read() {
  switch (in_[depth_]) {
    case In::kMessage:
      if (!reasoning_is_string_) out_ += details_;
      out_ += content_;
      out_ += reasoning_;
      out_ += refusal_;
      out_ += calls_;
      break;
    case In::kDetail:
      details_ += detail_text_;
      details_ += detail_summary_;
      break;
    case In::kFunction:
      calls_ += function_name_;
      calls_ += function_arguments_;
      break;
    default:
      break;
  }
}

}  // namespace orroute
