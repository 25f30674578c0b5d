// Bindings of the router: the Engine (plan, submit with callbacks, run), its configuration and task
// types, and the complexity analyzer. Results cross as plain dicts; Python builds the public objects.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <structmember.h>  // T_OBJECT_EX, READONLY: a Task's slots (task_slots)
#include <cxxabi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "bindings.h"
#include "casters.h"
#include "gil.h"
#include "json_py.h"
#include "lent_loop.h"
#include "orroute/catalog/capabilities.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/feedback_store.h"
#include "orroute/cost/open_ledger.h"
#include "orroute/cost/sqlite_ledger.h"
#include "orroute/cost/usage_audit.h"
#include "orroute/engine.h"
#include "orroute/engine/plain_reply.h"
#include "orroute/json.h"
#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"
#include "orroute/net/transport.h"
#include "orroute/route/complexity.h"
#include "orroute/select/quality_priors.h"
#include "orroute/seconds.h"

namespace py = pybind11;

namespace orroute::bindings {
namespace {

double secs(Duration d) { return static_cast<double>(d.count()) / 1e9; }
Duration from_secs(double s) { return clamped_duration(s, "a delay or window"); }
py::object opt(const std::optional<double>& v) { return v ? py::cast(*v) : py::none(); }

// `s` as an interned str, never released (the names below live for the process).
PyObject* intern(const char* s) {
  PyObject* k = PyUnicode_InternFromString(s);
  if (k == nullptr) throw py::error_already_set();
  return k;
}

// The keys of the dicts built for every call (result, plan, complexity, attempts), interned once:
// without them each dict insertion makes and frees a new str and hashes it (~45 per call). Made
// under the GIL on first use and never freed, like the constants of Python code.
struct ResultKeys {
  PyObject* score = intern("score");
  PyObject* tier = intern("tier");
  PyObject* task_type = intern("task_type");
  PyObject* reasons = intern("reasons");
  PyObject* length = intern("length");
  PyObject* code = intern("code");
  PyObject* math = intern("math");
  PyObject* multi_step = intern("multi_step");
  PyObject* question = intern("question");
  PyObject* tools = intern("tools");
  PyObject* depth = intern("depth");
  PyObject* output = intern("output");
  PyObject* features = intern("features");
  PyObject* candidates = intern("candidates");
  PyObject* complexity = intern("complexity");
  PyObject* prompt_tokens = intern("prompt_tokens");
  PyObject* max_tokens = intern("max_tokens");
  PyObject* estimate = intern("estimate");
  PyObject* ok = intern("ok");
  PyObject* error = intern("error");
  PyObject* http_status = intern("http_status");
  PyObject* message = intern("message");
  PyObject* model = intern("model");
  PyObject* served_model = intern("served_model");
  PyObject* completion = intern("completion");
  PyObject* completion_id = intern("completion_id");
  PyObject* content = intern("content");
  PyObject* completion_tokens = intern("completion_tokens");
  PyObject* cost = intern("cost");
  PyObject* cost_source = intern("cost_source");
  PyObject* cost_problem = intern("cost_problem");
  PyObject* cut_at_reservation = intern("cut_at_reservation");
  PyObject* provider = intern("provider");
  PyObject* provider_model = intern("provider_model");
  PyObject* alerts = intern("alerts");
  PyObject* budget_refused = intern("budget_refused");
  PyObject* budget_error_type = intern("budget_error_type");
  PyObject* budget_error_kind = intern("budget_error_kind");
  PyObject* nothing_sent = intern("nothing_sent");
  PyObject* ttft = intern("ttft");
  PyObject* outcome = intern("outcome");
  PyObject* status = intern("status");
  PyObject* latency = intern("latency");
  PyObject* waited = intern("waited");
  PyObject* attempts = intern("attempts");
  PyObject* kind = intern("kind");
  PyObject* code_json = intern("code_json");
  PyObject* metadata_json = intern("metadata_json");
  PyObject* generation_id = intern("generation_id");
  PyObject* retry_after = intern("retry_after");
  PyObject* api_error = intern("api_error");
  PyObject* plan = intern("plan");
  // the instance dict's keys task_result_maker sets besides the figures' (`_tokens` the usage's
  // counts, `_details` what the lazy fields are made from)
  PyObject* id = intern("id");
  PyObject* task_id = intern("task_id");
  PyObject* tokens = intern("_tokens");
  PyObject* completion_json_slot = intern("_completion_json");  // the lazy field's
  PyObject* compression = intern("compression");
  PyObject* details = intern("_details");
  PyObject* empty = intern("");
  PyObject* dict = intern("__dict__");
};

const ResultKeys& keys() {
  static const ResultKeys* k = new ResultKeys();  // never freed: outlives interpreter shutdown order
  return *k;
}

// d[key] = value for an interned key (straight into the dict: no item accessor, no generic
// mapping protocol).
template <typename T>
void put(py::dict& d, PyObject* key, T&& value) {
  py::object v;
  if constexpr (std::is_base_of_v<py::handle, std::remove_cvref_t<T>>) {
    v = py::reinterpret_borrow<py::object>(value);
  } else {
    v = py::cast(std::forward<T>(value));
  }
  if (PyDict_SetItem(d.ptr(), key, v.ptr()) != 0) throw py::error_already_set();
}

py::dict complexity_dict(const Complexity& c) {
  const ResultKeys& k = keys();
  py::dict d;
  put(d, k.score, c.score);
  put(d, k.tier, to_string(c.tier));
  put(d, k.task_type, c.task_type);
  put(d, k.reasons, complexity_reasons(c));
  py::dict f;
  put(f, k.length, c.features.length);
  put(f, k.code, c.features.code);
  put(f, k.math, c.features.math);
  put(f, k.multi_step, c.features.multi_step);
  put(f, k.question, c.features.question);
  put(f, k.tools, c.features.tools);
  put(f, k.depth, c.features.depth);
  put(f, k.output, c.features.output);
  put(d, k.features, f);
  return d;
}

py::dict plan_dict(const EnginePlan& p) {
  const ResultKeys& k = keys();
  py::dict d;
  put(d, k.candidates, p.candidates);
  put(d, k.reasons, plan_reasons(p));
  put(d, k.complexity, complexity_dict(p.complexity));
  put(d, k.task_type, p.task_type);
  put(d, k.prompt_tokens, p.prompt_tokens + p.image_tokens);
  put(d, k.max_tokens, p.max_tokens);
  put(d, k.estimate, p.estimate ? py::cast(*p.estimate) : py::none());
  return d;
}

// The most keys a result dict gets: result_head's 23, then result_dict's attempts, api_error and
// plan.
constexpr Py_ssize_t kResultKeys = 26;

// The figures of a call both result() and summary() give, in this order (summary()'s tuple, which
// manager.py's AIModelManager._made unpacks, follows it).
constexpr size_t kFigures = 14;

// A str of a text that repeats call after call (a model id, a cost source, a provider and its
// name for the model, the task type): the str made last for the same figure is handed out again
// when the bytes are the same, instead of a new one decoded (and freed) on every call. Decoded as
// before when not: `lenient` as upstream_str (an upstream's bytes), else strictly as py::cast
// (raises on bytes that are not UTF-8). Longer texts are not kept. Under the GIL, as every
// figure; a slot's str lives until another text takes the slot (never freed at exit: it may
// outlive the interpreter, as ResultKeys' names).
struct RepeatedStr {
  std::string text;
  PyObject* str = nullptr;
};

enum RepeatedFigure : size_t { kRepModel, kRepCostSource, kRepProvider, kRepProviderModel, kRepTaskType, kRepeated };

py::object repeated_str(RepeatedFigure figure, std::string_view text, bool lenient) {
  constexpr size_t kMaxKept = 256;
  static auto* const slots = new RepeatedStr[kRepeated];  // never destroyed (as ResultKeys)
  RepeatedStr& slot = slots[figure];
  if (slot.str != nullptr && text == slot.text) return py::reinterpret_borrow<py::object>(slot.str);
  py::object made;
  if (lenient) {
    made = upstream_str(text);
  } else {
    PyObject* o = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), nullptr);
    if (o == nullptr) throw py::error_already_set();
    made = py::reinterpret_steal<py::object>(o);
  }
  if (text.size() <= kMaxKept) {
    slot.text.assign(text);
    Py_XSETREF(slot.str, made.inc_ref().ptr());
  }
  return made;
}

// The figures, and with them what the manager reads of every call's result (manager.py's _made:
// summary()'s tuple, in this order) when `for_summary`: the task type after them, `alerts` None
// when there are none (no empty list made) and the completion None (the reply's text, the
// longest str of a call, decoded only when a TaskResult's completion_json is read:
// PendingResult.completion()); result() has the rest. Without `for_summary`, the last is empty.
using SummaryValues = std::array<py::object, kFigures + 1>;

SummaryValues figures(const EngineResult& r, bool for_summary = false) {
  const RouteOutcome& o = *r.route;
  return {py::cast(o.ok),
          repeated_str(kRepModel, o.model, false),
          for_summary ? py::object(py::none()) : py::object(upstream_str(r.completion_json)),
          o.ok ? py::object(upstream_str(r.summary.id)) : py::object(py::none()),
          o.ok ? py::object(upstream_str(r.summary.content)) : py::object(py::none()),
          py::cast(r.prompt_tokens),
          py::cast(r.completion_tokens),
          py::cast(o.cost),
          repeated_str(kRepCostSource, o.ok ? std::string_view(o.charge.source) : std::string_view(), false),
          py::cast(o.ok ? std::string_view(o.charge.problem) : std::string_view()),
          py::cast(r.cut_at_reservation),
          repeated_str(kRepProvider, r.provider, true),
          repeated_str(kRepProviderModel, r.provider_model, false),
          for_summary && r.alerts.empty() ? py::object(py::none()) : py::cast(r.alerts),
          for_summary ? repeated_str(kRepTaskType, r.plan.task_type, false) : py::object()};
}

void put_figures(py::dict& d, const EngineResult& r) {
  const ResultKeys& k = keys();
  const std::array<PyObject*, kFigures> names = {
      k.ok, k.model, k.completion, k.completion_id, k.content, k.prompt_tokens, k.completion_tokens,
      k.cost, k.cost_source, k.cost_problem, k.cut_at_reservation, k.provider, k.provider_model, k.alerts};
  SummaryValues values = figures(r);
  for (size_t i = 0; i < kFigures; ++i) put(d, names[i], std::move(values[i]));
}

// A run's result without its nested parts (attempts, the upstream error, the plan); result_dict
// adds the rest.
py::dict result_head(const EngineResult& r) {
  const ResultKeys& k = keys();
  const RouteOutcome& o = *r.route;
  py::dict d = presized_dict(kResultKeys);
  put_figures(d, r);
  put(d, k.error, o.ok ? py::none() : py::cast(std::string(to_string(o.error))));
  put(d, k.http_status, o.http_status);
  put(d, k.message, upstream_str(o.message));
  put(d, k.served_model, upstream_str(o.result.served_model));
  put(d, k.budget_refused, o.budget_refused);
  put(d, k.budget_error_type, o.budget_refused ? python_class(o.budget_error) : "");
  put(d, k.budget_error_kind, o.budget_refused ? py::cast(o.budget_error) : py::none());
  put(d, k.nothing_sent, o.nothing_sent);
  put(d, k.ttft, o.result.ttft ? py::cast(secs(*o.result.ttft)) : py::none());
  return d;
}

// The summary as a tuple: nothing hashed or inserted, and the manager unpacks it into locals
// instead of looking each key up.
py::tuple summary_tuple(SummaryValues&& values) {
  py::tuple t(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    PyTuple_SET_ITEM(t.ptr(), static_cast<Py_ssize_t>(i), values[i].release().ptr());
  }
  return t;
}

py::tuple summary_tuple(const EngineResult& r) { return summary_tuple(figures(r, /*for_summary=*/true)); }

py::dict result_dict(const EngineResult& r) {
  const ResultKeys& k = keys();
  const RouteOutcome& o = *r.route;
  py::dict d = result_head(r);
  py::list attempts;
  for (const AttemptRecord& a : o.attempts) {
    py::dict x;
    put(x, k.model, a.model);
    put(x, k.outcome, a.outcome);
    put(x, k.status, a.http_status);
    put(x, k.message, upstream_str(a.message));
    put(x, k.latency, secs(a.latency));
    put(x, k.waited, secs(a.waited));
    attempts.append(x);
  }
  put(d, k.attempts, attempts);
  if (r.api_error) {
    const ApiError& e = *r.api_error;
    static const char* kinds[] = {"status", "connection", "timeout", "stream", "cancelled"};
    py::dict x;
    put(x, k.kind, kinds[static_cast<int>(e.kind)]);
    put(x, k.status, e.status);
    put(x, k.message, upstream_str(e.message));
    put(x, k.code_json, upstream_str(e.code_json));
    put(x, k.metadata_json, upstream_str(e.metadata_json));
    put(x, k.generation_id, upstream_str(e.generation_id));
    put(x, k.retry_after, opt(e.retry_after));
    put(d, k.api_error, x);
  } else {
    put(d, k.api_error, py::none());
  }
  put(d, k.plan, plan_dict(r.plan));
  return d;
}

py::dict stats_dict(const ModelStats& s) {
  py::dict d;
  d["model"] = s.model;
  d["calls"] = s.calls;
  d["successes"] = s.successes;
  d["failures"] = s.failures;
  d["success_rate"] = s.success_rate();
  d["retries"] = s.retries;
  d["fallbacks"] = s.fallbacks;
  d["usage_corrections"] = s.usage_corrections;
  d["cut_at_reservation"] = s.cut_at_reservation;
  d["input_tokens"] = s.input_tokens;
  d["output_tokens"] = s.output_tokens;
  d["cost"] = s.cost_of_successes;
  d["cost_per_success"] = s.cost_per_success();
  d["errors"] = s.errors_by_class;
  d["window_calls"] = s.window_calls;
  for (auto [name, p] : {std::pair{"latency", &s.latency}, std::pair{"ttft", &s.ttft},
                         std::pair{"tokens_per_second", &s.tokens_per_second}}) {
    const std::string n(name);
    d[(n + "_p50").c_str()] = opt(p->p50);
    d[(n + "_p95").c_str()] = opt(p->p95);
    d[(n + "_p99").c_str()] = opt(p->p99);
  }
  return d;
}

py::dict health_dict(const HealthReport& h) {
  py::dict d;
  d["overall"] = to_string(h.overall);
  py::dict models;
  for (const ModelHealth& m : h.models) {
    py::dict x;
    x["state"] = to_string(m.state);
    x["reason"] = m.reason;
    x["breaker"] = to_string(m.breaker);
    x["retry_in"] = secs(m.retry_in);
    x["success_rate"] = m.success_rate;
    x["window_calls"] = m.window_calls;
    models[m.model.c_str()] = x;
  }
  d["models"] = models;
  py::list breakers;
  for (const BreakerHealth& b : h.breakers) {
    py::dict x;
    x["key"] = b.key;
    x["kind"] = b.kind;
    x["name"] = b.name;
    x["state"] = to_string(b.state);
    x["retry_in"] = secs(b.retry_in);
    x["consecutive_failures"] = b.consecutive_failures;
    x["times_opened"] = b.times_opened;
    breakers.append(std::move(x));
  }
  d["breakers"] = breakers;
  return d;
}

// The result of a task submitted from asyncio: the transport thread stores it and signals the
// loop's Notifier (eventfd) without taking the GIL; the loop then reads it (see client._bridge).
struct PendingResult {
  std::mutex mu;
  std::unique_ptr<EngineResult> result;  // as the engine made it (DoneCallback); null until then
  std::shared_ptr<Notifier> notifier;
  uint64_t token = 0;
  std::shared_ptr<EngineRun> run;

  void complete(std::unique_ptr<EngineResult> r) {
    std::shared_ptr<Notifier> n;
    uint64_t t = 0;
    {
      std::lock_guard lock(mu);
      result = std::move(r);
      n = notifier;
      t = token;
    }
    if (n) n->notify(t);
  }
  bool finished() {
    std::lock_guard lock(mu);
    return result != nullptr;
  }
  void cancel() {
    std::shared_ptr<EngineRun> r;
    {
      std::lock_guard lock(mu);
      r = run;
    }
    if (r) r->cancel();
  }
  void arm(std::shared_ptr<Notifier> n, uint64_t t) {
    bool ready = false;
    {
      std::lock_guard lock(mu);
      notifier = n;
      token = t;
      ready = result != nullptr;
    }
    if (ready) n->notify(t);
  }
};

// A Python callable that may be dropped on any thread: the GIL is taken to release it.
std::shared_ptr<py::object> hold_callable(py::object f) {
  return std::shared_ptr<py::object>(new py::object(std::move(f)), [](py::object* o) {
    py::gil_scoped_acquire gil;
    delete o;
  });
}

// Plans and starts `t` (the first attempt sent from this thread while the network loop is idle);
// `watch`: the watch (Notifier::watch()) of this thread's event loop, which will await the result
// and to which the network loop is lent, or none.
std::shared_ptr<PendingResult> submit_pending(Engine& e, const EngineTask& t, std::shared_ptr<LoopWatch> watch) {
  auto pending = std::make_shared<PendingResult>();
  GilRelease nogil;
  EnginePlan p = e.plan(t, Engine::PlanUse::kSend);
  auto done = [pending](std::unique_ptr<EngineResult> r) { pending->complete(std::move(r)); };
  // An approval hook may wait for a human, and the run asks it on this thread as it reserves:
  // the network loop is then not claimed for this thread, or every call of the engine would wait
  // for the hook (and a hook calling the manager would wait for itself).
  if (const BudgetGuard* guard = e.budget_guard(); guard && guard->approval_threshold()) {
    auto run = e.submit(t, std::move(p), nullptr, std::move(done));
    std::lock_guard lock(pending->mu);
    pending->run = std::move(run);
    return pending;
  }
  // As the client's async calls: while the network loop is idle, the first attempt is sent from
  // this thread (the loop claimed after the plan: no other call waits for it), and with a
  // `watch` its reply is read, priced and settled on this thread too.
  auto run = start_sending_here(
      e.client()->transport(),
      [&] { return e.submit(t, std::move(p), nullptr, std::move(done)); },
      std::move(watch));
  std::lock_guard lock(pending->mu);
  pending->run = std::move(run);
  return pending;
}

// ---- an orroute.Task as the engine's task, in one conversion ----------------------------------
//
// The Task's fields read straight into an EngineTask: its messages (with the task's params,
// max_tokens and the model asked for) written as the request body, and how to route it. Was
// Python (task_request: a dict, then EngineTask's pybind11 constructor with its argument casts,
// and a property set per field), ~12.5k instructions of every manager call.

struct TaskNames {
  PyObject* messages = intern("messages");
  PyObject* params = intern("params");
  PyObject* max_tokens = intern("max_tokens");
  PyObject* model = intern("model");
  PyObject* id = intern("id");
  PyObject* type = intern("type");
  PyObject* capabilities = intern("capabilities");
  PyObject* budget = intern("budget");
  PyObject* quality = intern("quality");
  PyObject* project = intern("project");
  PyObject* conversation = intern("conversation");
  PyObject* tags = intern("tags");
  PyObject* cache = intern("cache");
};

const TaskNames& task_names() {
  static const TaskNames* names = new TaskNames();  // under the GIL; never freed (as ResultKeys)
  return *names;
}

py::object checked(PyObject* o) {
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

// The Task fields engine_task_of reads, in TaskSlots' order.
enum TaskField : size_t { kMessages, kParams, kMaxTokens, kId, kType, kCapabilities, kBudget,
                          kQuality, kProject, kConversation, kTags, kCache, kTaskFields };

// Where a type keeps each field of TaskField when every one of them is a __slots__ member (an
// orroute.Task): read at its offset, the value PyObject_GetAttr would give, without its
// attribute lookup (~160 instructions a field, ~2k a call). Valid while the type's version tag
// is the one seen: assigning to the class (a property over a field, another __getattribute__)
// clears the tag, and the type is looked at again. Under the GIL; the cached type is borrowed
// and only compared (its version tag is checked first).
struct TaskSlots {
  PyTypeObject* type = nullptr;
  unsigned int version = 0;
  bool slotted = false;
  std::array<Py_ssize_t, kTaskFields> offsets{};
};

// Offsets of `type`'s fields, or nullptr when one is not a plain object slot (read by name).
const TaskSlots* task_slots(PyTypeObject* type) {
  static TaskSlots cache;
  if (cache.type == type && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0 &&
      type->tp_version_tag == cache.version) {
    return cache.slotted ? &cache : nullptr;
  }
  const TaskNames& k = task_names();
  const std::array<PyObject*, kTaskFields> names = {k.messages, k.params, k.max_tokens, k.id,
                                                    k.type, k.capabilities, k.budget, k.quality,
                                                    k.project, k.conversation, k.tags, k.cache};
  TaskSlots found;
  found.type = type;
  found.slotted = type->tp_getattro == PyObject_GenericGetAttr;
  for (size_t i = 0; i < kTaskFields && found.slotted; ++i) {
    PyObject* d = _PyType_Lookup(type, names[i]);  // borrowed; gives the type a version tag
    const PyMemberDef* member =
        d != nullptr && Py_IS_TYPE(d, &PyMemberDescr_Type) ? reinterpret_cast<PyMemberDescrObject*>(d)->d_member
                                                           : nullptr;
    found.slotted = member != nullptr && member->type == T_OBJECT_EX && (member->flags & READONLY) == 0 &&
                    PyType_IsSubtype(type, PyDescr_TYPE(d));
    if (found.slotted) found.offsets[i] = member->offset;
  }
  if ((type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) == 0) return nullptr;  // no tag: not cached
  found.version = type->tp_version_tag;
  cache = found;
  return cache.slotted ? &cache : nullptr;
}

// A Task's fields, at their slots when its type has them there (task_slots), else by name. The
// offsets are copied, and checked against the task's type and its version tag at every read:
// reading a field may run Python code (a messages iterable, a budget's conversion), which may
// change the class or read another type's task, refilling task_slots' one cache.
class TaskFields {
 public:
  explicit TaskFields(PyObject* task) : task_(task) {
    if (const TaskSlots* s = task_slots(Py_TYPE(task))) slots_ = *s;
  }

  // A new reference to the field's value; an unset slot raises AttributeError, as reading it does.
  py::object get(TaskField field, PyObject* name) const {
    PyTypeObject* const type = Py_TYPE(task_);
    if (slots_.slotted && type == slots_.type && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0 &&
        type->tp_version_tag == slots_.version) {
      PyObject* v = *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(task_) + slots_.offsets[field]);
      if (v != nullptr) return py::reinterpret_borrow<py::object>(v);
    }
    return checked(PyObject_GetAttr(task_, name));
  }

 private:
  PyObject* task_;
  TaskSlots slots_;  // slotted false: every field by name
};

// `bool(o)`; None, the bools and exact str, list, dict and tuple (a Task's usual fields)
// answered inline (~20 instructions of a call each, ~10 a task).
inline bool truthy(PyObject* o) {
  if (o == Py_None || o == Py_False) return false;
  if (o == Py_True) return true;
  if (PyUnicode_CheckExact(o)) return PyUnicode_GET_LENGTH(o) != 0;
  if (PyList_CheckExact(o)) return PyList_GET_SIZE(o) != 0;
  if (PyDict_CheckExact(o)) return PyDict_GET_SIZE(o) != 0;
  if (PyTuple_CheckExact(o)) return PyTuple_GET_SIZE(o) != 0;
  const int r = PyObject_IsTrue(o);
  if (r < 0) throw py::error_already_set();
  return r == 1;
}

// A str field's text; anything else is refused naming the field.
std::string task_text(PyObject* o, const char* what) {
  Py_ssize_t n = 0;
  const char* s = PyUnicode_Check(o) ? PyUnicode_AsUTF8AndSize(o, &n) : nullptr;
  if (s == nullptr) {
    if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "task %s must be a str", what);
    throw py::error_already_set();
  }
  return {s, static_cast<size_t>(n)};
}

// `value or ""` of a str field.
std::string task_text_or_empty(PyObject* o, const char* what) {
  return truthy(o) ? task_text(o, what) : std::string();
}

EngineTask engine_task_of(py::handle task, bool stream, py::handle model, bool pin, py::handle project) {
  const TaskNames& k = task_names();
  PyObject* const obj = task.ptr();
  EngineTask t;
  const TaskFields fields(obj);
  py::object messages = fields.get(kMessages, k.messages);
  if (!truthy(messages.ptr())) throw InvalidArgument("task has no messages");
  // a Task makes a list; one assigned later may be any iterable
  if (!PyList_CheckExact(messages.ptr())) messages = checked(PySequence_List(messages.ptr()));
  // {**params, "messages": ..., "max_tokens": ..., "model": ...}, written as the client writes
  py::object params = fields.get(kParams, k.params);
  py::object max_tokens = fields.get(kMaxTokens, k.max_tokens);
  const bool has_model = !model.is_none() && truthy(model.ptr());
  if (!truthy(params.ptr())) {  // the usual task: the members written, no dict made for them
    t.request_json = py_members_to_json({{"messages", messages},
                                         {"max_tokens", max_tokens.is_none() ? py::handle() : max_tokens},
                                         {"model", has_model ? model : py::handle()}});
  } else {
    if (!PyDict_Check(params.ptr()) && PyObject_HasAttrString(params.ptr(), "keys") != 1) {
      PyErr_SetString(PyExc_TypeError, "task params must be a mapping");
      throw py::error_already_set();
    }
    py::dict body;
    if (PyDict_Merge(body.ptr(), params.ptr(), 1) < 0) throw py::error_already_set();
    if (PyDict_SetItem(body.ptr(), k.messages, messages.ptr()) < 0) throw py::error_already_set();
    if (!max_tokens.is_none() && PyDict_SetItem(body.ptr(), k.max_tokens, max_tokens.ptr()) < 0) {
      throw py::error_already_set();
    }
    if (has_model && PyDict_SetItem(body.ptr(), k.model, model.ptr()) < 0) throw py::error_already_set();
    t.request_json = py_to_json(body);
  }
  t.task_id = task_text_or_empty(fields.get(kId, k.id).ptr(), "id");
  t.stream = stream;
  if (std::string type = task_text_or_empty(fields.get(kType, k.type).ptr(), "type");
      !type.empty()) {
    t.task_type = std::move(type);  // else "general"
  }
  if (pin && has_model) t.fallbacks = {task_text(model.ptr(), "model")};
  if (py::object caps = fields.get(kCapabilities, k.capabilities); truthy(caps.ptr())) {
    t.required_capabilities =
        capability_bits(py::cast<std::vector<std::string>>(checked(PySequence_List(caps.ptr()))));
  }
  if (py::object budget = fields.get(kBudget, k.budget); !budget.is_none()) {
    t.max_cost = py::cast<Money>(decimal_class()(budget));
  }
  if (py::object quality = fields.get(kQuality, k.quality); !quality.is_none()) {
    t.min_quality = PyFloat_AsDouble(checked(PyNumber_Float(quality.ptr())).ptr());
  }
  py::object own_project = fields.get(kProject, k.project);
  PyObject* const scope = truthy(own_project.ptr()) ? own_project.ptr() : project.ptr();
  if (!py::handle(scope).is_none() && truthy(scope)) t.scope.project = task_text(scope, "project");
  t.scope.conversation =
      task_text_or_empty(fields.get(kConversation, k.conversation).ptr(), "conversation");
  if (py::object tags = fields.get(kTags, k.tags); truthy(tags.ptr())) {
    py::object items = checked(PyMapping_Items(tags.ptr()));
    for (py::handle item : items) {
      // `for k, v in tags.items()`: any pair (a mapping's own items() may give lists), nothing else
      py::object kv = checked(PySequence_Tuple(item.ptr()));
      if (PyTuple_GET_SIZE(kv.ptr()) != 2) {
        PyErr_SetString(PyExc_ValueError, "task tags' items must be (key, value) pairs");
        throw py::error_already_set();
      }
      t.scope.tags.emplace_back(
          task_text(checked(PyObject_Str(PyTuple_GET_ITEM(kv.ptr(), 0))).ptr(), "tag"),
          task_text(checked(PyObject_Str(PyTuple_GET_ITEM(kv.ptr(), 1))).ptr(), "tag"));
    }
    std::sort(t.scope.tags.begin(), t.scope.tags.end());  // UTF-8 sorts as the code points do
  }
  if (!truthy(fields.get(kCache, k.cache).ptr())) t.use_cache = false;
  return t;
}

// ---- a finished call's details -----------------------------------------------------------------
//
// What submit_task hands back for a call that finished inside it (the usual awaited manager call,
// served on the event loop's thread): the result behind the TaskResult's lazy fields, with
// PendingResult's result() and nothing to await. A plain CPython type: a pybind11 PendingResult
// (its holder, the instance registry's insert and erase) cost ~1.7k instructions of every call
// more, made and freed.
struct FinishedObject {
  PyObject_HEAD
  std::shared_ptr<PendingResult> pending;  // constructed in place after the allocation
};

PyTypeObject* finished_type = nullptr;  // set by bind_route (a heap type, kept for the process)

py::object finished_result(std::shared_ptr<PendingResult> pending) {
  FinishedObject* f = PyObject_New(FinishedObject, finished_type);
  if (f == nullptr) throw py::error_already_set();
  new (&f->pending) std::shared_ptr<PendingResult>(std::move(pending));
  return py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(f));
}

void finished_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  reinterpret_cast<FinishedObject*>(self)->pending.~shared_ptr();
  PyObject_Free(self);
  Py_DECREF(type);  // a heap type: each instance holds a reference to it
}

PyObject* finished_result_dict(PyObject* self, PyObject* /*unused*/) {
  try {
    PendingResult& p = *reinterpret_cast<FinishedObject*>(self)->pending;
    std::lock_guard lock(p.mu);
    return result_dict(*p.result).release().ptr();  // finished: the result is there
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyObject* finished_completion(PyObject* self, PyObject* /*unused*/) {
  try {
    PendingResult& p = *reinterpret_cast<FinishedObject*>(self)->pending;
    std::lock_guard lock(p.mu);
    return upstream_str(p.result->completion_json).release().ptr();  // finished: the result is there
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyMethodDef finished_methods[] = {
    {"result", finished_result_dict, METH_NOARGS,
     "result($self, /)\n--\n\nThe whole result as PendingResult.result() gives it."},
    {"completion", finished_completion, METH_NOARGS,
     "completion($self, /)\n--\n\nThe reply's JSON text as PendingResult.completion() gives it."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot finished_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(finished_dealloc)},
    {Py_tp_methods, finished_methods},
    {Py_tp_doc, const_cast<char*>("A finished call's result, behind a TaskResult (private).")},
    {0, nullptr},
};

PyType_Spec finished_spec = {
    "orroute._core.FinishedResult", static_cast<int>(sizeof(FinishedObject)), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION, finished_slots};

// ---- a TaskResult made from a call's summary -------------------------------------------------
//
// `task_result_maker(cls, state)`: the function manager.py's AIModelManager._made calls for every
// result, `make(summary, details, result_id, task_id, compression)`: an instance of `cls`
// (TaskResult, made as `cls.__new__(cls)` makes it) whose instance dict is a copy of `state` (the
// class's every field and slot, placeholders) with the summary's figures in place: nothing
// inserted, no frame, no bytecode store a field (the Python version, its 14 stores, the copy and
// the instance, cost ~2.5k instructions more a call). The summary is summary_tuple's (or the
// manager's of a result dict): its order is figures()'s, then the task type; its completion None
// (summary_tuple's: the lazy completion_json reads it from `details` when first read) or a str.
//
// The figures that repeat call after call (the model, the task type, the cost's source, the
// provider and its model name, the cut flag: repeated_str hands out the same str for the same
// text) are kept in the maker's own copy of `state` as the last call had them: a call with the
// same ones (the same objects) stores nothing for them, and one with others stores them in its
// result and in the copy (~190 instructions a store; 6 of 13 per call saved when they repeat).
constexpr size_t kRepeatedFields = 6;

struct ResultMaker {
  ResultMaker(PyObject* c, PyObject* s) : cls(c), state(s) { Py_INCREF(cls); }
  ~ResultMaker() { Py_DECREF(cls); Py_DECREF(state); }  // with the capsule, under the GIL
  ResultMaker(const ResultMaker&) = delete;
  ResultMaker& operator=(const ResultMaker&) = delete;

  PyObject* cls;
  PyObject* state;  // owned: a copy of the template given, changed only here
  // the keys of the repeated figures, and their values in `state` (borrowed: `state` holds them)
  std::array<PyObject*, kRepeatedFields> repeated_keys{};
  std::array<PyObject*, kRepeatedFields> repeated_values{};
};

constexpr const char* kResultMakerCapsule = "orroute._core.task_result_maker";

// The result of a summary's figures `at` (figures()'s order, then the task type; borrowed).
PyObject* make_result(ResultMaker& maker, PyObject* const* at, PyObject* details, PyObject* result_id,
                      PyObject* task_id, PyObject* compression) {
  const int cut = PyObject_IsTrue(at[10]);
  if (cut < 0) return nullptr;
  const int has_content = PyObject_IsTrue(at[4]);  // `content or ""`
  if (has_content < 0) return nullptr;
  const ResultKeys& k = keys();
  PyObject* content = has_content ? at[4] : k.empty;
  PyObject* tokens = PyTuple_Pack(2, at[5], at[6]);
  if (tokens == nullptr) return nullptr;
  py::object tokens_owned = py::reinterpret_steal<py::object>(tokens);
  // in repeated_keys' order
  const std::array<PyObject*, kRepeatedFields> repeated = {
      at[1], at[14], at[8], cut ? Py_True : Py_False, at[11], at[12]};
  // a repeated figure that changed: the maker's copy takes it first (this call's copy has it)
  for (size_t i = 0; i < kRepeatedFields; ++i) {
    if (repeated[i] == maker.repeated_values[i]) continue;
    if (PyDict_SetItem(maker.state, maker.repeated_keys[i], repeated[i]) < 0) return nullptr;
    maker.repeated_values[i] = repeated[i];
  }
  py::object state = py::reinterpret_steal<py::object>(PyDict_Copy(maker.state));
  if (!state) return nullptr;
  const std::array<std::pair<PyObject*, PyObject*>, 6> values = {{
      {k.id, result_id},
      {k.task_id, task_id},
      {k.content, content},
      {k.tokens, tokens},
      {k.cost, at[7]},
      {k.details, details},
  }};
  for (const auto& [key, value] : values) {
    if (PyDict_SetItem(state.ptr(), key, value) < 0) return nullptr;
  }
  if (at[2] != Py_None && PyDict_SetItem(state.ptr(), k.completion_json_slot, at[2]) < 0) return nullptr;
  if (compression != Py_None && PyDict_SetItem(state.ptr(), k.compression, compression) < 0) return nullptr;
  // as `cls.__new__(cls)` then `result.__dict__ = state`. When that __new__ is object's, the
  // instance is allocated alone: object.__new__ would also make it the inline attribute values
  // (CPython 3.11, 3.12) that the dict assignment drops at once (~0.3k instructions a call).
  PyTypeObject* cls = reinterpret_cast<PyTypeObject*>(maker.cls);
  py::object result;
  if (cls->tp_new == PyBaseObject_Type.tp_new && (cls->tp_flags & Py_TPFLAGS_IS_ABSTRACT) == 0) {
    result = py::reinterpret_steal<py::object>(cls->tp_alloc(cls, 0));
  } else {
    py::object no_args = py::reinterpret_steal<py::object>(PyTuple_New(0));
    if (!no_args) return nullptr;
    result = py::reinterpret_steal<py::object>(cls->tp_new(cls, no_args.ptr(), nullptr));
  }
  if (!result) return nullptr;
#if PY_VERSION_HEX >= 0x030D0000
  // CPython 3.13: PyObject_GenericSetDict on an instance with inline values swaps the dict but
  // leaves the (empty) inline values valid, which attribute reads take first: every field would
  // raise AttributeError (rev17, a standalone extension on 3.13.0). The type's own __dict__ setter
  // drops the inline values.
  if (PyObject_SetAttr(result.ptr(), k.dict, state.ptr()) < 0) return nullptr;
#else
  if (PyObject_GenericSetDict(result.ptr(), state.ptr(), nullptr) < 0) return nullptr;
#endif
  return result.release().ptr();
}

PyObject* make_task_result(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5) {
    PyErr_SetString(PyExc_TypeError, "expected (summary, details, result_id, task_id, compression)");
    return nullptr;
  }
  auto* maker = static_cast<ResultMaker*>(PyCapsule_GetPointer(capsule, kResultMakerCapsule));
  if (maker == nullptr) return nullptr;
  PyObject* summary = args[0];
  if (!PyTuple_CheckExact(summary) || PyTuple_GET_SIZE(summary) != static_cast<Py_ssize_t>(kFigures + 1)) {
    PyErr_SetString(PyExc_TypeError, "summary must be a call summary's tuple");
    return nullptr;
  }
  return make_result(*maker, PySequence_Fast_ITEMS(summary), args[1], args[2], args[3], args[4]);
}

PyMethodDef kMakeTaskResult = {"make_task_result",
                               reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(make_task_result)),
                               METH_FASTCALL, nullptr};

py::object task_result_maker(py::handle cls, py::handle state) {
  if (!PyType_Check(cls.ptr())) throw InvalidArgument("task_result_maker: cls must be a class");
  if (!PyDict_CheckExact(state.ptr())) throw InvalidArgument("task_result_maker: state must be a dict");
  const ResultKeys& k = keys();
  for (PyObject* key : {k.id, k.task_id, k.content, k.model, k.tokens, k.cost, k.task_type, k.cost_source,
                        k.cut_at_reservation, k.provider, k.provider_model, k.completion_json_slot,
                        k.compression, k.details}) {
    const int has = PyDict_Contains(state.ptr(), key);
    if (has < 0) throw py::error_already_set();
    if (has == 0) {
      throw InvalidArgument("task_result_maker: state has no " + py::str(key).cast<std::string>() +
                            " (every key the maker sets must be there: a copy is never grown)");
    }
  }
  PyObject* own = PyDict_Copy(state.ptr());  // changed by the maker: not the caller's dict
  if (own == nullptr) throw py::error_already_set();
  auto maker = std::make_unique<ResultMaker>(cls.ptr(), own);
  maker->repeated_keys = {k.model, k.task_type, k.cost_source, k.cut_at_reservation, k.provider,
                          k.provider_model};
  for (size_t i = 0; i < kRepeatedFields; ++i) {
    maker->repeated_values[i] = PyDict_GetItemWithError(own, maker->repeated_keys[i]);  // borrowed
    if (maker->repeated_values[i] == nullptr) throw py::error_already_set();
  }
  return capsule_function(&kMakeTaskResult, kResultMakerCapsule, std::move(maker));
}

// `submit_task(task, model, pin, project, notifier, lend, loop_fd, serve_timeout)`: the manager's
// awaited call in one plain CPython function (METH_FASTCALL; `self` a capsule holding the engine
// and its Python object): engine_task_of and submit_pending, with no EngineTask object made
// between them (the network loop lent to `notifier`, the event loop's, when `lend`), then, as
// the client's chat_sender does, the result waited for on this thread while the event loop has
// nothing else to do (`serve_timeout` seconds at most, counted from the call; -1: no limit;
// None: not served). Returns (pending, summary): the PendingResult, and its summary() when it
// finished here (else None: await it). With `make` (a task_result_maker's function), `task_id`
// and `compression`: a call that finished here as a plain success (plain_success) comes back as
// the TaskResult `make` would give, alone (its details hold the finished result), the reply's id
// its id.
constexpr const char* kEngineCapsule = "orroute._core.Engine";

struct EngineRef {
  explicit EngineRef(py::handle py_engine) : engine(&py_engine.cast<Engine&>()), owner(py_engine.inc_ref().ptr()) {}
  ~EngineRef() { Py_DECREF(owner); }  // with the capsule, under the GIL
  EngineRef(const EngineRef&) = delete;
  EngineRef& operator=(const EngineRef&) = delete;

  Engine* engine;
  PyObject* owner;  // the Python Engine: kept alive while the function is
};

// The maker behind `make`, a task_result_maker function (or nullptr and an error set).
ResultMaker* maker_of(PyObject* make) {
  if (!PyCFunction_Check(make) || PyCFunction_GET_SELF(make) == nullptr ||
      !PyCapsule_IsValid(PyCFunction_GET_SELF(make), kResultMakerCapsule)) {
    PyErr_SetString(PyExc_TypeError, "make must be a task_result_maker function or None");
    return nullptr;
  }
  return static_cast<ResultMaker*>(PyCapsule_GetPointer(PyCFunction_GET_SELF(make), kResultMakerCapsule));
}

// Whether a finished call's summary is one the manager's _made would only make a result of: a
// success without alerts nor a cost problem, with the reply's id for the result's. Else _made
// has more to do (fire the alerts, log the problem, raise the error, draw an id).
bool plain_success(PyObject* const* at) {
  return at[0] == Py_True && at[13] == Py_None && PyUnicode_Check(at[9]) && PyUnicode_GET_LENGTH(at[9]) == 0 &&
         PyUnicode_Check(at[3]) && PyUnicode_GET_LENGTH(at[3]) > 0;
}

PyObject* fast_submit_task(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 8 && nargs != 11) {
    PyErr_SetString(PyExc_TypeError,
                    "expected (task, model, pin, project, notifier, lend, loop_fd, serve_timeout"
                    "[, make, task_id, compression])");
    return nullptr;
  }
  ResultMaker* maker = nullptr;
  if (nargs == 11 && args[8] != Py_None && (maker = maker_of(args[8])) == nullptr) return nullptr;
  try {
    const auto started = std::chrono::steady_clock::now();
    const auto* ref = static_cast<EngineRef*>(PyCapsule_GetPointer(capsule, kEngineCapsule));
    // the Notifier read once (its type checked by the load), for the lend and the serve
    Notifier* notifier = nullptr;
    if (args[4] != Py_None) {
      py::detail::make_caster<Notifier> load;
      if (!load.load(args[4], false)) {
        PyErr_SetString(PyExc_TypeError, "notifier must be a Notifier or None");
        return nullptr;
      }
      notifier = py::detail::cast_op<Notifier*>(load);
    }
    const bool lend = truthy(args[5]);
    const bool serve = notifier != nullptr && args[7] != Py_None;
    // read as the pybind11 casts did (an int's value, a number's float), without their casters
    const long fd = serve ? PyLong_AsLong(args[6]) : -1;
    if (fd == -1 && serve && PyErr_Occurred()) throw py::error_already_set();
    const int loop_fd = static_cast<int>(fd);
    const double limit = serve ? PyFloat_AsDouble(args[7]) : 0.0;  // < 0: none
    if (limit == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    const EngineTask t = engine_task_of(args[0], false, args[1], truthy(args[2]), args[3]);
    std::shared_ptr<PendingResult> pending =
        submit_pending(*ref->engine, t, lend && notifier != nullptr ? notifier->watch() : nullptr);
    // the loop's time left: the plan and the send took some of it
    const double left =
        limit < 0 ? -1.0
                  : limit - std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (serve && (limit < 0 || left > 0) && !pending->finished()) {
      PendingResult& p = *pending;
      serve_lent(*notifier, loop_fd, left, [&p] { return p.finished(); }, [&p] { p.cancel(); });
    }
    std::optional<SummaryValues> summary;
    {
      std::lock_guard lock(pending->mu);
      if (pending->result) {
        pending->run.reset();  // finished: a result kept for its details keeps no run alive
        summary = figures(*pending->result, /*for_summary=*/true);
      }
    }
    if (!summary) {
      const py::object handle = py::cast(std::move(pending));
      return PyTuple_Pack(2, handle.ptr(), Py_None);
    }
    const py::object handle = finished_result(std::move(pending));
    std::array<PyObject*, kFigures + 1> at{};  // borrowed from `summary`
    for (size_t i = 0; i < at.size(); ++i) at[i] = (*summary)[i].ptr();
    if (maker != nullptr && plain_success(at.data())) {
      // _made's result, made here from the figures (no summary tuple, no pair): the reply's id is
      // the result's
      return make_result(*maker, at.data(), handle.ptr(), at[3], args[9], args[10]);
    }
    return PyTuple_Pack(2, handle.ptr(), summary_tuple(std::move(*summary)).ptr());
  } catch (abi::__forced_unwind&) {
    throw;  // a daemon thread ended at exit (see gil.h)
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyMethodDef kSubmitTask = {"submit_task",
                           reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_submit_task)),
                           METH_FASTCALL, nullptr};

py::object task_submitter(py::handle engine) {
  return capsule_function(&kSubmitTask, kEngineCapsule, std::make_unique<EngineRef>(engine));
}

}  // namespace

void bind_route(py::module_& m) {
  auto finished = py::reinterpret_steal<py::object>(PyType_FromSpec(&finished_spec));
  if (!finished) throw py::error_already_set();
  finished_type = reinterpret_cast<PyTypeObject*>(finished.inc_ref().ptr());  // kept for the process
  m.add_object("FinishedResult", finished);
  m.def("default_fallback_order", &default_fallback_order,
        "The integration guide's model order (bundled catalog ids).");
  py::class_<ComplexityAnalyzer>(m, "ComplexityAnalyzer")
      .def(py::init([](double simple, double complex_, double frontier) {
             return ComplexityAnalyzer({simple, complex_, frontier});
           }),
           py::arg("simple_below") = 0.3, py::arg("complex_from") = 0.7,
           py::arg("frontier_from") = 0.9)
      .def(
          "analyze",
          [](const ComplexityAnalyzer& a, std::string_view prompt, int32_t prior_turns,
             int64_t prompt_tokens, int32_t tools, int64_t max_output_tokens,
             std::string_view task_type) {
            return complexity_dict(a.analyze(
                {prompt, prior_turns, prompt_tokens, tools, max_output_tokens, task_type}));
          },
          py::arg("prompt"), py::arg("prior_turns") = 0, py::arg("prompt_tokens") = -1,
          py::arg("tools") = 0, py::arg("max_output_tokens") = 0, py::arg("task_type") = "general");

  py::class_<EngineConfig>(m, "EngineConfig")
      .def(py::init<>())
      .def_property("base_url", [](const EngineConfig& c) { return c.client.base_url; },
                    [](EngineConfig& c, std::string v) { c.client.base_url = std::move(v); })
      .def_property("api_keys", [](const EngineConfig&) { return std::vector<std::string>{}; },
                    [](EngineConfig& c, std::vector<std::string> v) { c.client.api_keys = std::move(v); })
      .def_property("app_name", [](const EngineConfig& c) { return c.client.app_name; },
                    [](EngineConfig& c, std::string v) {
                      check_header_value("app_name", v);  // sent as X-Title: no header injection
                      c.client.app_name = std::move(v);
                    })
      .def_property("app_url", [](const EngineConfig& c) { return c.client.app_url; },
                    [](EngineConfig& c, std::string v) {
                      check_header_value("app_url", v);  // sent as HTTP-Referer
                      c.client.app_url = std::move(v);
                    })
      .def_property("user_agent", [](const EngineConfig& c) { return c.client.user_agent; },
                    [](EngineConfig& c, std::string v) {
                      check_header_value("user_agent", v);  // sent as User-Agent
                      c.client.user_agent = std::move(v);
                    })
      .def_property("timeout", [](const EngineConfig& c) { return c.client.timeouts.total_ms / 1e3; },
                    [](EngineConfig& c, double s) {
                      const int64_t ms = limit_ms(s, "timeout").value_or(0);  // 0: no limit
                      c.client.timeouts.total_ms = ms;
                      c.client.stream_timeouts.first_byte_ms = ms;
                      c.client.stream_timeouts.idle_ms = ms;
                    })
      .def_property("stream_deadline", [](const EngineConfig& c) { return c.client.stream_timeouts.total_ms / 1e3; },
                    [](EngineConfig& c, double s) { c.client.stream_timeouts.total_ms = stream_deadline_ms(s); })
      .def_property("max_retries", [](const EngineConfig& c) { return c.loop.retry.max_retries_per_model; },
                    [](EngineConfig& c, int v) { c.loop.retry.max_retries_per_model = v; })
      .def_property("retry_base_delay", [](const EngineConfig& c) { return secs(c.loop.retry.base_delay); },
                    [](EngineConfig& c, double v) { c.loop.retry.base_delay = from_secs(v); })
      .def_property("retry_max_delay", [](const EngineConfig& c) { return secs(c.loop.retry.max_delay); },
                    [](EngineConfig& c, double v) { c.loop.retry.max_delay = from_secs(v); })
      .def_property("max_server_wait", [](const EngineConfig& c) { return secs(c.loop.retry.max_server_wait); },
                    [](EngineConfig& c, double v) { c.loop.retry.max_server_wait = from_secs(v); })
      .def_property("max_admission_wait", [](const EngineConfig& c) { return secs(c.loop.max_admission_wait); },
                    [](EngineConfig& c, double v) { c.loop.max_admission_wait = from_secs(v); })
      .def_property("provider_breakers", [](const EngineConfig& c) { return c.loop.provider_breakers; },
                    [](EngineConfig& c, bool v) { c.loop.provider_breakers = v; })
      .def_property("breaker_failures", [](const EngineConfig& c) { return c.breaker.consecutive_failures; },
                    [](EngineConfig& c, int v) { c.breaker.consecutive_failures = v; })
      .def_property("breaker_failure_rate", [](const EngineConfig& c) { return c.breaker.failure_rate; },
                    [](EngineConfig& c, double v) { c.breaker.failure_rate = v; })
      .def_property("breaker_min_calls", [](const EngineConfig& c) { return c.breaker.min_calls_in_window; },
                    [](EngineConfig& c, int v) { c.breaker.min_calls_in_window = v; })
      .def_property("breaker_window", [](const EngineConfig& c) { return secs(c.breaker.window); },
                    [](EngineConfig& c, double v) { c.breaker.window = from_secs(v); })
      .def_property("breaker_cooldown", [](const EngineConfig& c) { return secs(c.breaker.cooldown); },
                    [](EngineConfig& c, double v) { c.breaker.cooldown = from_secs(v); })
      .def_property("breaker_successes_to_close", [](const EngineConfig& c) { return c.breaker.successes_to_close; },
                    [](EngineConfig& c, int v) { c.breaker.successes_to_close = v; })
      .def_property("metrics_window", [](const EngineConfig& c) { return secs(c.metrics.window); },
                    [](EngineConfig& c, double v) { c.metrics.window = from_secs(v); })
      .def_property("thresholds",
                    [](const EngineConfig& c) {
                      return std::tuple(c.thresholds.simple_below, c.thresholds.complex_from,
                                        c.thresholds.frontier_from);
                    },
                    [](EngineConfig& c, std::tuple<double, double, double> t) {
                      c.thresholds = {std::get<0>(t), std::get<1>(t), std::get<2>(t)};
                    })
      .def_property("strategy", [](const EngineConfig& c) { return std::string(strategy_name(c.strategy)); },
                    [](EngineConfig& c, std::string_view v) { c.strategy = strategy_from_name(v); })
      .def_readwrite("fallbacks", &EngineConfig::fallbacks)
      .def_readwrite("preferred_model", &EngineConfig::preferred_model)
      .def_readwrite("max_candidates", &EngineConfig::max_candidates)
      .def_readwrite("server_side_fallbacks", &EngineConfig::server_side_fallbacks)
      .def_readwrite("default_max_tokens", &EngineConfig::default_max_tokens)
      .def_readwrite("router_state", &EngineConfig::router_state)
      .def_readwrite("refresh_catalog", &EngineConfig::refresh_catalog)
      .def_readwrite("provider_name", &EngineConfig::provider_name)
      .def_readwrite("provider_priority", &EngineConfig::provider_priority)
      .def(
          "add_provider",
          [](EngineConfig& c, const ProviderConfig& p, const ProviderPrices& prices) {
            validate(p);
            c.providers.push_back({p, prices});
          },
          py::arg("config"), py::arg("prices"), "A provider beside the engine's own endpoint, with its own prices.")
      .def_property_readonly("provider_names",
                             [](const EngineConfig& c) {
                               std::vector<std::string> out{c.provider_name};
                               for (const auto& p : c.providers) out.push_back(p.config.name);
                               return out;
                             })
      .def(
          "set_model_name",
          [](EngineConfig& c, const std::string& model, const std::string& provider, const std::string& native) {
            c.model_map.set(model, provider, native);
          },
          py::arg("model"), py::arg("provider"), py::arg("native"), "The provider's name for a model (overrides).")
      .def(
          "add_model_group",
          [](EngineConfig& c, const std::string& model, std::vector<std::pair<std::string, int32_t>> deployments,
             const std::string& strategy, const std::string& failover, double ramp_seconds, int32_t failures_to_down,
             double cooldown_seconds) {
            EngineModelGroup g;
            g.model = model;
            for (auto& [name, weight] : deployments) g.deployments.push_back({std::move(name), weight});
            g.options.strategy = parse_balance_strategy(strategy);
            g.options.failover = parse_failover_mode(failover);
            g.options.ramp = from_secs(ramp_seconds);
            g.options.failures_to_down = failures_to_down;
            g.options.cooldown = from_secs(cooldown_seconds);
            BalancerRules check(g.deployments.empty() ? std::vector<Deployment>{{"x", 1}} : g.deployments, g.options);
            (void)check;
            c.groups.push_back(std::move(g));
          },
          py::arg("model"), py::arg("deployments") = std::vector<std::pair<std::string, int32_t>>{},
          py::arg("strategy") = "round_robin", py::arg("failover") = "immediate", py::arg("ramp_seconds") = 60.0,
          py::arg("failures_to_down") = 3, py::arg("cooldown_seconds") = 30.0,
          "Balances one model over its deployments (provider names and weights; empty: every provider serving it).")
      .def_property(
          "unpriced_model_price",
          [](const EngineConfig& c) -> std::optional<std::pair<Money, Money>> {
            const auto& u = c.pricing.unpriced_model_price;
            if (!u) return std::nullopt;
            return std::pair{u->prompt, u->completion};
          },
          [](EngineConfig& c, std::optional<std::pair<Money, Money>> v) {
            if (!v) {
              c.pricing.unpriced_model_price.reset();
              return;
            }
            PriceSet p;
            p.prompt = v->first;
            p.completion = v->second;
            c.pricing.unpriced_model_price = p;
          },
          "(prompt, completion) USD per token for ids the catalog cannot price; None refuses them")
      .def_property("cost_check_multiple",
                    [](const EngineConfig& c) { return c.pricing.cost_check_multiple; },
                    [](EngineConfig& c, int64_t v) { c.pricing.cost_check_multiple = v; })
      .def_property("endpoint_markup_pct",
                    [](const EngineConfig& c) { return c.pricing.endpoint_markup_pct; },
                    [](EngineConfig& c, int64_t v) { c.pricing.endpoint_markup_pct = v; })
      .def_property("web_search_fee",
                    [](const EngineConfig& c) { return c.pricing.web_search_fee; },
                    [](EngineConfig& c, Money v) { c.pricing.web_search_fee = v; })
      .def(
          "set_limit",
          [](EngineConfig& c, const std::string& scope, int64_t requests, int64_t input_tokens,
             int64_t output_tokens, double window) {
            c.limits[scope] = RateLimit{requests, input_tokens, output_tokens, from_secs(window)};
          },
          py::arg("scope"), py::arg("requests") = 0, py::arg("input_tokens") = 0,
          py::arg("output_tokens") = 0, py::arg("window") = 60.0);

  py::class_<Prepaid, std::shared_ptr<Prepaid>>(m, "Prepaid")
      .def(py::init<int>(), py::arg("runs"))
      .def_property_readonly("runs", &Prepaid::runs);

  py::class_<EngineTask>(m, "EngineTask")
      // The fields every task sets, in one call (each property set is a call of its own). The
      // request is JSON text, or a dict written as the client writes its bodies (no str between).
      .def(py::init([](py::handle request, std::string task_id, bool stream, std::string task_type) {
             EngineTask t;
             t.request_json = PyUnicode_Check(request.ptr()) ? request.cast<std::string>() : py_to_json(request);
             t.task_id = std::move(task_id);
             t.stream = stream;
             if (!task_type.empty()) t.task_type = std::move(task_type);  // else "general"
             return t;
           }),
           py::arg("request_json") = py::str(), py::arg("task_id") = std::string(),
           py::arg("stream") = false, py::arg("task_type") = std::string())
      .def_readwrite("request_json", &EngineTask::request_json)
      .def_readwrite("task_type", &EngineTask::task_type)
      .def_readwrite("task_id", &EngineTask::task_id)
      .def_readwrite("fallbacks", &EngineTask::fallbacks)
      .def_readwrite("max_cost", &EngineTask::max_cost)
      .def_readwrite("min_quality", &EngineTask::min_quality)
      .def_readwrite("required_capabilities", &EngineTask::required_capabilities)
      .def_property(
          "capabilities",
          [](const EngineTask& t) { return capability_list(t.required_capabilities); },
          [](EngineTask& t, const std::vector<std::string>& names) {
            t.required_capabilities = capability_bits(names);
          })
      .def_property(
          "strategy",
          [](const EngineTask& t) -> std::optional<std::string> {
            if (!t.strategy) return std::nullopt;
            return std::string(strategy_name(*t.strategy));
          },
          [](EngineTask& t, const std::optional<std::string>& name) {
            t.strategy = name ? std::optional(strategy_from_name(*name)) : std::nullopt;
          })
      .def_readwrite("stream", &EngineTask::stream)
      .def_readwrite("use_cache", &EngineTask::use_cache)
      .def_readwrite("prepaid", &EngineTask::prepaid)
      .def_property("project", [](const EngineTask& t) { return t.scope.project; },
                    [](EngineTask& t, std::string v) { t.scope.project = std::move(v); })
      .def_property("conversation", [](const EngineTask& t) { return t.scope.conversation; },
                    [](EngineTask& t, std::string v) { t.scope.conversation = std::move(v); })
      .def_property("tags", [](const EngineTask& t) { return t.scope.tags; },
                    [](EngineTask& t, std::vector<std::pair<std::string, std::string>> v) {
                      t.scope.tags = std::move(v);
                    });

  m.def(
      "engine_task_of",
      [](py::handle task, bool stream, py::handle model, bool pin, py::handle project) {
        return engine_task_of(task, stream, model, pin, project);
      },
      py::arg("task"), py::arg("stream") = false, py::arg("model") = py::none(),
      py::arg("pin") = false, py::arg("project") = py::none(),
      "The EngineTask of an orroute.Task: its messages (with its params and max_tokens; `model` "
      "first, `pin`: that model only) as the request body, its type, id, budget, quality floor, "
      "capabilities, project (else `project`), conversation, tags and cache switch.");
  m.def("task_result_maker", &task_result_maker, py::arg("cls"), py::arg("state"),
        "make(summary, details, result_id, task_id, compression) -> an instance of `cls` whose "
        "instance dict is a copy of `state` with the call summary's figures in place (private: "
        "AIModelManager._made).");
  m.def("task_submitter", &task_submitter, py::arg("engine"),
        "submit_task(task, model, pin, project, notifier, lend, loop_fd, serve_timeout[, make, "
        "task_id, compression]) -> (PendingResult, None) or, finished, (FinishedResult, summary), "
        "or with `make` (a task_result_maker's function) and a plain success, make's result "
        "with the reply's id, task_id and compression (alone: no pair), for `engine`: "
        "engine_task_of(task, False, model, pin, "
        "project) planned and started as Engine.submit_async (lent to `notifier` when `lend`), "
        "then served as PendingResult.serve_lent for at most `serve_timeout` seconds (None: not "
        "served); the summary when it finished.");

  py::class_<PendingResult, std::shared_ptr<PendingResult>>(m, "PendingResult")
      .def("arm", &PendingResult::arm, py::arg("notifier"), py::arg("token"))
      .def_property_readonly("done", &PendingResult::finished)
      .def(
          "serve_lent",
          [](PendingResult& p, const Notifier& n, int loop_fd, double timeout) {
            return serve_lent(n, loop_fd, timeout, [&p] { return p.finished(); }, [&p] { p.cancel(); });
          },
          py::arg("notifier"), py::arg("loop_fd"), py::arg("timeout"),
          "As Call.serve_lent: waits for the result on this thread while the network loop is "
          "lent to `notifier` (GIL released).")
      .def("summary", [](PendingResult& p) {
             std::lock_guard lock(p.mu);
             if (!p.result) throw InvalidArgument("the task has not finished");
             p.run.reset();  // finished: a result kept for its details keeps no run alive
             return summary_tuple(*p.result);
           },
           "What a call's caller reads on every call, as a tuple: (ok, model, None, "
           "completion_id, content, prompt_tokens, completion_tokens, cost, cost_source, "
           "cost_problem, cut_at_reservation, provider, provider_model, alerts (None: none), "
           "task_type); the completion (None here) is completion()'s; result() gives them by "
           "name and the rest (errors, attempts, plan).")
      .def("completion", [](PendingResult& p) {
             std::lock_guard lock(p.mu);
             if (!p.result) throw InvalidArgument("the task has not finished");
             return upstream_str(p.result->completion_json);
           },
           "The reply's JSON text (str; bytes that are not UTF-8 replaced), as result()'s "
           "'completion'.")
      .def("cancel", &PendingResult::cancel, py::call_guard<GilRelease>())
      .def("result", [](PendingResult& p) {
        std::lock_guard lock(p.mu);
        if (!p.result) throw InvalidArgument("the task has not finished");
        return result_dict(*p.result);
      })
      .def("body", [](PendingResult& p) {
        std::lock_guard lock(p.mu);
        if (!p.result) throw InvalidArgument("the task has not finished");
        return py::bytes(p.result->completion_json);
      }, "The response body as the upstream sent it (bytes).");

  py::class_<EngineRun, std::shared_ptr<EngineRun>>(m, "EngineRun")
      .def("cancel", &EngineRun::cancel, py::call_guard<GilRelease>())
      .def("resume", &EngineRun::resume, py::call_guard<GilRelease>());

  // The bounded stream hand-off: the transport thread queues chunks and signals the Notifier; the
  // loop takes them in batches. No Python object is touched off the GIL.
  py::class_<StreamedRun, std::shared_ptr<StreamedRun>>(m, "StreamedRun")
      .def("arm", [](StreamedRun& s, std::shared_ptr<Notifier> n, uint64_t token) {
             s.queue().arm(std::move(n), token);
           }, py::arg("notifier"), py::arg("token"))
      .def("take", [](StreamedRun& s) {
             py::list out;
             for (const std::string& c : s.queue().take()) out.append(py::bytes(c));
             return out;
           }, "Every queued chunk's JSON text (bytes), oldest first.")
      .def("take_sse", [](StreamedRun& s) { return py::bytes(s.queue().take_sse()); },
           "Every queued chunk framed as 'data: <text>\\n\\n' (bytes).")
      .def("finished", [](StreamedRun& s) { return s.queue().finished(); })
      .def("result", [](StreamedRun& s) -> py::object {
             auto r = s.result();
             return r ? py::object(result_dict(*r)) : py::object(py::none());
           })
      .def("cancel", &StreamedRun::cancel, py::call_guard<GilRelease>())
      .def("model", [](const StreamedRun& s) { return s.progress().first; })
      .def("attempts", [](const StreamedRun& s) { return s.progress().second; })
      .def("pauses", [](StreamedRun& s) { return s.queue().pauses(); });

  py::class_<Engine>(m, "Engine")
      .def(py::init([](const EngineConfig& config, std::shared_ptr<ModelCatalog> catalog,
                       std::optional<std::string> ledger_path, std::string_view priors_json) {
             std::shared_ptr<Ledger> ledger;
             if (ledger_path) ledger = open_ledger(*ledger_path);  // a file or redis://
             QualityPriors priors;
             if (!priors_json.empty()) priors = QualityPriors::from_json(priors_json);
             GilRelease nogil;  // may fetch {base_url}/models
             auto engine = std::make_unique<Engine>(config, std::move(catalog), std::move(ledger),
                                                    std::move(priors));
             // feedback kept next to the ledger: the selector starts from what was recorded
             if (ledger_path) engine->set_feedback_store(open_feedback_store(*ledger_path));
             return engine;
           }),
           py::arg("config"), py::arg("catalog"), py::arg("ledger_path") = py::none(),
           py::arg("priors_json") = "")
      .def("plan", [](const Engine& e, const EngineTask& t) {
             EnginePlan p;
             {
               GilRelease nogil;
               p = e.plan(t);
             }
             return plan_dict(p);
           })
      .def(
          "submit",
          [](Engine& e, const EngineTask& t, py::object on_chunk, py::object on_done) {
            ChunkCallback chunk;
            if (!on_chunk.is_none()) {
              auto f = hold_callable(on_chunk);
              chunk = [f](const std::string& data) {
                py::gil_scoped_acquire gil;
                try {
                  return py::bool_((*f)(py::bytes(data))) ? ChunkAction::kContinue
                                                          : ChunkAction::kCancel;
                } catch (py::error_already_set& err) {  // reported, and the stream stops
                  err.discard_as_unraisable("orroute: stream chunk callback");
                  return ChunkAction::kCancel;
                }
              };
            }
            auto done_f = hold_callable(on_done);
            DoneCallback done = [done_f](std::unique_ptr<EngineResult> r) {
              py::gil_scoped_acquire gil;
              try {
                (*done_f)(result_dict(*r));
              } catch (py::error_already_set& err) {  // never onto the transport thread
                err.discard_as_unraisable("orroute: task done callback");
              }
            };
            GilRelease nogil;
            EnginePlan p = e.plan(t, Engine::PlanUse::kSend);
            return e.submit(t, std::move(p), std::move(chunk), std::move(done));
          },
          py::arg("task"), py::arg("on_chunk"), py::arg("on_done"))
      .def(
          "submit_stream",
          [](Engine& e, const EngineTask& t, size_t capacity) {
            GilRelease nogil;
            return StreamedRun::start(e, t, e.plan(t, Engine::PlanUse::kSend), capacity);
          },
          py::arg("task"), py::arg("capacity") = 64,
          "Plans and starts a streamed task; chunks go to a bounded queue (GIL not taken).")
      .def_property_readonly("catalog", [](const Engine& e) {
             return std::const_pointer_cast<ModelCatalog>(e.catalog_ptr());
           })
      .def_property_readonly("net_client", &Engine::client,
                             "The engine's HTTP client (its libcurl loop), for other calls.")
      .def(
          "submit_async",
          [](Engine& e, const EngineTask& t, const py::object& lend_to) {
            std::shared_ptr<LoopWatch> watch;  // an object, not a shared_ptr: see NetClient.start
            if (!lend_to.is_none()) watch = lend_to.cast<std::shared_ptr<Notifier>>()->watch();
            return submit_pending(e, t, std::move(watch));
          },
          py::arg("task"), py::arg("lend_to") = py::none(),
          "Plans and starts `task`; `lend_to`: the lendable Notifier of this thread's event loop, "
          "which will await the result (see NetClient.start).")
      .def("run", [](Engine& e, const EngineTask& t) {
             EngineResult r;
             {
               GilRelease nogil;
               r = e.run(t);
             }
             return result_dict(r);
           })
      .def("health", [](const Engine& e) { return health_dict(e.health()); })
      .def("metrics", [](const Engine& e) {
             py::list out;
             for (const ModelStats& s : e.metrics()) out.append(stats_dict(s));
             return out;
           })
      .def(
          "set_response_cache",
          [](Engine& e, std::shared_ptr<ResponseCache> cache, bool allow_sampling) {
            e.set_response_cache(std::move(cache), CachePolicy{allow_sampling});
          },
          py::arg("cache"), py::arg("allow_sampling") = false)
      .def("record_feedback", &Engine::record_feedback, py::arg("model"), py::arg("task_type"),
           py::arg("score"), py::arg("source") = "user", py::arg("result_id") = "")
      .def(
          "set_limit",
          [](Engine& e, const std::string& scope, int64_t requests, int64_t input_tokens,
             int64_t output_tokens, double window) {
            e.set_limit(scope, RateLimit{requests, input_tokens, output_tokens, from_secs(window)});
          },
          py::arg("scope"), py::arg("requests") = 0, py::arg("input_tokens") = 0,
          py::arg("output_tokens") = 0, py::arg("window") = 60.0)
      .def(
          "set_budget",
          [](Engine& e, const std::string& scope, const std::string& window, Money limit,
             const std::string& policy) {
            if (!e.budget_guard()) throw InvalidArgument("this engine has no ledger");
            BudgetSpec spec;
            spec.scope = parse_scope(scope);
            spec.window = parse_window(window);
            spec.limit = limit;
            spec.policy = parse_policy(policy);
            e.budget_guard()->ledger().set_budget(spec);
          },
          py::arg("scope"), py::arg("window"), py::arg("limit"), py::arg("policy") = "refuse")
      .def(
          "set_approval",  // the CostTracker's rule, for the calls this engine reserves
          [](Engine& e, std::optional<Money> above, ApprovalHook hook) {
            if (!e.budget_guard()) throw InvalidArgument("this engine has no ledger");
            e.budget_guard()->set_approval(above, std::move(hook));
          },
          py::arg("above"), py::arg("hook"))
      .def(
          "audit_usage",  // a call the engine did not make (/v1/embeddings), under its pricing policy
          [](const Engine& e, const ModelCatalog& catalog, const std::string& model, const Call& call,
             int64_t counted_prompt_tokens, Money reserved) {
            const AuditedCharge c = audit_usage(catalog, e.config().pricing, model,
                                                text_usage(call.response().body, kMaxJsonBytes).value_or(Usage{}),
                                                counted_prompt_tokens, reserved);
            return py::make_tuple(c.cost, c.source, c.problem, c.counts.prompt_tokens);
          },
          py::arg("catalog"), py::arg("model"), py::arg("call"), py::arg("counted_prompt_tokens"),
          py::arg("reserved"),
          "(cost, source, problem, prompt_tokens): the usage of `call`'s reply (a JSON object) audited "
          "(usage_audit.h), its cost read from its own digits.")
      .def(
          "release_leases",  // this process's unused lease money back to the budgets
          [](Engine& e) {
            if (e.budget_guard()) e.budget_guard()->ledger().release_leases();
          },
          py::call_guard<GilRelease>())
      .def("reserved",
           [](Engine& e) {
             if (!e.budget_guard()) return std::pair<int64_t, Money>{0, Money::zero()};
             return e.budget_guard()->ledger().live_reservations();
           })
      .def("spent", [](Engine& e) {
        if (!e.budget_guard()) return Money::zero();
        return e.budget_guard()->ledger().total_cost(CallQuery{});
      });
}

}  // namespace orroute::bindings
