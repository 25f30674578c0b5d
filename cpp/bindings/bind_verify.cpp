// Answer verifiers, the escalation model and budget-targeted operating points (cpp/orroute/verify).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "gil.h"
#include "orroute/verify/arithmetic.h"
#include "orroute/verify/escalation_model.h"
#include "orroute/verify/json_check.h"
#include "orroute/verify/operating_point.h"
#include "orroute/verify/signals.h"
#include "orroute/verify/verdict.h"

namespace py = pybind11;

namespace orroute::bindings {

namespace {
using Release = py::call_guard<GilRelease>;
}  // namespace

void bind_verify(py::module_& m) {
  py::enum_<VerdictOutcome>(m, "VerdictOutcome")
      .value("PASS", VerdictOutcome::kPass)
      .value("FAIL", VerdictOutcome::kFail)
      .value("ABSTAIN", VerdictOutcome::kAbstain);
  py::class_<Verdict>(m, "Verdict")
      .def_readonly("outcome", &Verdict::outcome)
      .def_readonly("score", &Verdict::score)
      .def_readonly("reason", &Verdict::reason);

  m.def("extract_json", &extract_json, py::arg("reply"), Release());
  m.def("check_json_reply", &check_json_reply, py::arg("reply"), Release());
  py::class_<JsonSchema>(m, "JsonSchema")
      .def(py::init<std::string_view>(), py::arg("schema_json"), Release())
      .def("validate_text", &JsonSchema::validate_text, py::arg("json"), Release())
      .def("check_reply", &JsonSchema::check_reply, py::arg("reply"), Release())
      .def("unsupported_keywords", &JsonSchema::unsupported_keywords);
  py::class_<ToolCallValidator>(m, "ToolCallValidator")
      .def(py::init<std::string_view>(), py::arg("tools_json"), Release())
      .def("check", &ToolCallValidator::check, py::arg("tool_calls_json"), Release())
      .def("tool_names", &ToolCallValidator::tool_names);

  py::class_<FinalAnswer>(m, "FinalAnswer")
      .def_readonly("found", &FinalAnswer::found)
      .def_readonly("marked", &FinalAnswer::marked)
      .def_readonly("value", &FinalAnswer::value)
      .def_readonly("text", &FinalAnswer::text);
  py::class_<CalculationCheck>(m, "CalculationCheck")
      .def_readonly("checked", &CalculationCheck::checked)
      .def_readonly("wrong", &CalculationCheck::wrong)
      .def_readonly("first_wrong", &CalculationCheck::first_wrong)
      .def_readonly("final_answer", &CalculationCheck::final_answer)
      .def_readonly("final_is_last_result", &CalculationCheck::final_is_last_result)
      .def_readonly("final_in_results", &CalculationCheck::final_in_results);
  m.def("final_answer", &final_answer, py::arg("text"), Release());
  m.def("check_calculations", &check_calculations, py::arg("solution"), Release());
  m.def("arithmetic_verdict", &arithmetic_verdict, py::arg("check"),
        py::arg("require_final") = true, Release());

  py::class_<AnswerSignals>(m, "AnswerSignals")
      .def_readonly("chars", &AnswerSignals::chars)
      .def_readonly("words", &AnswerSignals::words)
      .def_readonly("lines", &AnswerSignals::lines)
      .def_readonly("numbers", &AnswerSignals::numbers)
      .def_readonly("hedges", &AnswerSignals::hedges)
      .def_readonly("refusals", &AnswerSignals::refusals)
      .def_readonly("code_fences", &AnswerSignals::code_fences)
      .def_readonly("repeated_lines", &AnswerSignals::repeated_lines)
      .def_readonly("ends_cleanly", &AnswerSignals::ends_cleanly);
  m.def("answer_signals", &answer_signals, py::arg("answer"), Release());
  py::class_<Agreement>(m, "Agreement")
      .def_readonly("key", &Agreement::key)
      .def_readonly("count", &Agreement::count)
      .def_readonly("answered", &Agreement::answered)
      .def_readonly("share", &Agreement::share);
  m.def("agreement", &agreement, py::arg("keys"), Release());
  m.def("escalation_features", &escalation_features, py::arg("prompt"), py::arg("answer"),
        py::arg("extra") = std::vector<double>{}, Release());
  m.def("escalation_feature_names", &escalation_feature_names);

  py::class_<EscalationModel>(m, "EscalationModel")
      .def(py::init<std::vector<double>, std::vector<double>, std::vector<double>, double>(),
           py::arg("mean"), py::arg("scale"), py::arg("weights"), py::arg("intercept"))
      .def_static("fit", &EscalationModel::fit, py::arg("x"), py::arg("y"),
                  py::arg("weights") = std::vector<double>{}, py::arg("l2") = 1.0,
                  py::arg("max_iterations") = 50, Release())
      .def("predict", &EscalationModel::predict, py::arg("x"), Release())
      .def("predict_many", &EscalationModel::predict_many, py::arg("x"), Release())
      .def_property_readonly("mean", &EscalationModel::mean)
      .def_property_readonly("scale", &EscalationModel::scale)
      .def_property_readonly("weights", &EscalationModel::weights)
      .def_property_readonly("intercept", &EscalationModel::intercept);

  py::enum_<ShareMode>(m, "ShareMode")
      .value("TARGET", ShareMode::kTarget)
      .value("AT_MOST", ShareMode::kAtMost);
  py::class_<OperatingPoint>(m, "OperatingPoint")
      .def_readonly("threshold", &OperatingPoint::threshold)
      .def_readonly("share", &OperatingPoint::share)
      .def_readonly("share_lo", &OperatingPoint::share_lo)
      .def_readonly("share_hi", &OperatingPoint::share_hi)
      .def_readonly("escalated", &OperatingPoint::escalated)
      .def_readonly("met", &OperatingPoint::met)
      .def_readonly("rows", &OperatingPoint::rows);
  m.def("choose_operating_point", &choose_operating_point, py::arg("score"), py::arg("base"),
        py::arg("escalated"), py::arg("reference"), py::arg("share"), py::arg("mode"),
        py::arg("bootstrap") = 1000, py::arg("seed") = 0, py::arg("level") = 0.9, Release());
  m.def("cost_share_at", &cost_share_at, py::arg("score"), py::arg("base"), py::arg("escalated"),
        py::arg("reference"), py::arg("threshold"), Release());
  m.def(
      "choose_grid_point",
      [](const std::vector<std::vector<double>>& cost, const std::vector<double>& reference,
         double share, ShareMode mode, int32_t bootstrap, uint64_t seed, double level) {
        OperatingPoint op;
        const size_t i = choose_grid_point(cost, reference, share, mode, &op, bootstrap, seed, level);
        return std::make_pair(i, op);
      },
      py::arg("cost"), py::arg("reference"), py::arg("share"), py::arg("mode"),
      py::arg("bootstrap") = 1000, py::arg("seed") = 0, py::arg("level") = 0.9, Release());
}

}  // namespace orroute::bindings
