/* orroute._task: the type of orroute.Task, in C (plain CPython API).
 *
 * `Task(messages=M, max_tokens=16)` was a Python class with __slots__: ~7.7k instructions a task,
 * of which ~2.4k the class call itself (CPython makes the keywords a dict for type.__call__, and
 * slot_tp_init unpacks it again for __init__). This type's vectorcall takes the arguments as they
 * come, makes the instance and fills it in one C call.
 *
 * The rules stay where they were: every check and its message is task.py's order, the common case
 * in C (the usual task gives two fields), and the rare ones (a task type that is not a known one,
 * a message without a role, a budget, text fields that are not str, params, a compression, the
 * task id generator) are task.py's functions, looked up in its globals at the call as Python
 * code looks up a global (so a reset after fork, or a replaced function, is seen). task.py hands
 * its globals over once (`_bind`).
 *
 * Its own module, not part of orroute._core: `import orroute` loads Task eagerly and must not load
 * the core (a large library with libcurl). It needs nothing but libc.
 *
 * Fields are T_OBJECT_EX members, writable, named as the Python class's slots (and `__slots__`
 * lists them): the core reads them at their offsets (bind_route.cpp, task_slots), pickling and
 * copying see the same state as before, and an unset one raises AttributeError. Under the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX (3.10, 3.11; kept as an alias by 3.12+) */

/* Py_ALWAYS_INLINE is 3.11's (pyport.h): 3.10, the oldest CPython supported, has none. */
#ifndef Py_ALWAYS_INLINE
#if defined(__GNUC__) || defined(__clang__)
#define Py_ALWAYS_INLINE __attribute__((always_inline))
#elif defined(_MSC_VER)
#define Py_ALWAYS_INLINE __forceinline
#else
#define Py_ALWAYS_INLINE
#endif
#endif

/* The constructor's arguments, in its order. */
enum {
  A_ID,
  A_TYPE,
  A_MESSAGES,
  A_INPUT_SIZE,
  A_MAX_TOKENS,
  A_PROJECT,
  A_CAPABILITIES,
  A_QUALITY,
  A_BUDGET,
  A_CONVERSATION,
  A_TAGS,
  A_PARAMS,
  A_CACHE,
  A_COMPRESS,
  N_ARGS
};

static const char* const kArgNames[N_ARGS] = {
    "id",     "type",         "messages", "input_size", "max_tokens", "project", "capabilities",
    "quality", "budget",      "conversation", "tags",   "params",     "cache",   "compress"};

/* The instance: one pointer a field, in the slots' (sorted) order, as the Python class had them. */
typedef struct {
  PyObject_HEAD
  PyObject* budget;
  PyObject* cache;
  PyObject* capabilities;
  PyObject* compress;
  PyObject* conversation;
  PyObject* id;
  PyObject* input_size;
  PyObject* max_tokens;
  PyObject* messages;
  PyObject* params;
  PyObject* project;
  PyObject* quality;
  PyObject* tags;
  PyObject* type;
} TaskObject;

#define N_FIELDS 14

/* Each argument's field (its offset in TaskObject). */
static const Py_ssize_t kArgOffset[N_ARGS] = {
    offsetof(TaskObject, id),         offsetof(TaskObject, type),
    offsetof(TaskObject, messages),   offsetof(TaskObject, input_size),
    offsetof(TaskObject, max_tokens), offsetof(TaskObject, project),
    offsetof(TaskObject, capabilities), offsetof(TaskObject, quality),
    offsetof(TaskObject, budget),     offsetof(TaskObject, conversation),
    offsetof(TaskObject, tags),       offsetof(TaskObject, params),
    offsetof(TaskObject, cache),      offsetof(TaskObject, compress)};

/* Set at module init; never freed (the module is never unloaded). */
static PyObject* arg_names[N_ARGS]; /* interned */
static PyObject* slot_names;        /* the __slots__ tuple, sorted */
static PyObject* str_general;       /* "general", the default type */
static PyObject* str_role;
static PyObject* str_user;
static PyObject* str_content;
static PyObject* str_empty;
static PyObject* int_zero;
static PyObject* int_one;
static PyObject* float_zero;
static PyObject* float_one;
/* task.py's globals, looked up by these names */
static PyObject* g_known_set;   /* _KNOWN_SET */
static PyObject* g_id_prefix;   /* _id_prefix */
static PyObject* g_check_type_arg;
static PyObject* g_bad_message;
static PyObject* g_budget;
static PyObject* g_check_texts;
static PyObject* g_params;
static PyObject* g_compression;
static PyObject* g_coerce;
static PyObject* g_reduce_ex;
static PyObject* g_invalid; /* InvalidArgumentError */
static PyObject* g_mapping; /* collections.abc.Mapping */

static PyObject* task_globals; /* task.py's module dict (_bind) */

static PyTypeObject TaskType;

/* A borrowed reference to task.py's global `name`, or NULL with an error set. */
static PyObject* global(PyObject* name) {
  if (task_globals == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "orroute._task is used before orroute.task bound it");
    return NULL;
  }
  PyObject* v = PyDict_GetItemWithError(task_globals, name);
  if (v == NULL && !PyErr_Occurred()) PyErr_Format(PyExc_NameError, "name '%U' is not defined", name);
  return v;
}

/* task.py's function `name` called with `n` arguments: a new reference, or NULL. */
static PyObject* call_global(PyObject* name, PyObject* const* args, size_t n) {
  PyObject* fn = global(name);
  if (fn == NULL) return NULL;
  Py_INCREF(fn); /* the call may rebind the global */
  PyObject* r = PyObject_Vectorcall(fn, args, n, NULL);
  Py_DECREF(fn);
  return r;
}

/* Task ids (task.py's rule, see _id_prefix there): the process's 80 random bits as 20 hex digits,
 * asked of task.py's _id_prefix() for the first id and again after a fork (_forget_id_prefix),
 * then a 48-bit counter's 12 hex digits, 1, 2, ... (wrapping). Written here, under the GIL (a
 * call to a maker in the core, looked up in task.py's globals, cost ~0.45k instructions a Task
 * more). */
static char id_prefix[20];
static int id_prefix_set;
static uint64_t id_next;

static int is_prefix(const char* s, Py_ssize_t n) {
  if (n != (Py_ssize_t)sizeof id_prefix) return 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  }
  return 1;
}

static PyObject* new_task_id(void) {
  if (!id_prefix_set) {
    PyObject* drawn = call_global(g_id_prefix, NULL, 0);
    if (drawn == NULL) return NULL;
    Py_ssize_t n = 0;
    const char* s = PyUnicode_Check(drawn) ? PyUnicode_AsUTF8AndSize(drawn, &n) : NULL;
    if (s == NULL || !is_prefix(s, n)) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "_id_prefix() must give 20 lowercase hex digits");
      Py_DECREF(drawn);
      return NULL;
    }
    memcpy(id_prefix, s, sizeof id_prefix);
    Py_DECREF(drawn);
    id_prefix_set = 1;
    id_next = 1;
  }
  uint64_t n = id_next++ & 0xFFFFFFFFFFFFull;
  PyObject* id = PyUnicode_New(32, 127); /* ASCII, written in place */
  if (id == NULL) return NULL;
  Py_UCS1* out = PyUnicode_1BYTE_DATA(id);
  memcpy(out, id_prefix, sizeof id_prefix);
  for (int i = 31; i >= 20; --i, n >>= 4) out[i] = (Py_UCS1) "0123456789abcdef"[n & 0xF];
  return id;
}

/* _forget_id_prefix(): a forked child's next id draws a prefix of its own (task.py registers it
 * with os.register_at_fork), else parent and child would repeat ids. */
static PyObject* forget_id_prefix(PyObject* module, PyObject* unused) {
  (void)module;
  (void)unused;
  id_prefix_set = 0;
  Py_RETURN_NONE;
}

/* task.py's InvalidArgumentError with `text % value` (value formatted as an f-string does). */
static void refuse(const char* text, PyObject* value) {
  PyObject* cls = global(g_invalid);
  if (cls == NULL) return;
  Py_INCREF(cls);
  PyObject* shown = PyObject_Format(value, str_empty);
  if (shown != NULL) {
    PyErr_Format(cls, text, shown);
    Py_DECREF(shown);
  }
  Py_DECREF(cls);
}

/* Truth of `x < bound` (`bound_obj` is the same number as an object): 1, 0, or -1 on error. */
static int less_than(PyObject* x, long bound, PyObject* bound_obj) {
  if (PyLong_CheckExact(x)) {
    int overflow = 0;
    const long v = PyLong_AsLongAndOverflow(x, &overflow);
    if (overflow != 0) return overflow < 0;
    if (v == -1 && PyErr_Occurred()) return -1;
    return v < bound;
  }
  PyObject* r = PyObject_RichCompare(x, bound_obj, Py_LT);
  if (r == NULL) return -1;
  const int t = PyObject_IsTrue(r);
  Py_DECREF(r);
  return t;
}

/* Truth of `a <= b`: 1, 0, or -1 on error. */
static int less_equal(PyObject* a, PyObject* b) {
  PyObject* r = PyObject_RichCompare(a, b, Py_LE);
  if (r == NULL) return -1;
  const int t = PyObject_IsTrue(r);
  Py_DECREF(r);
  return t;
}

/* `self.<field> = value`, stealing `value`: in place for a Task (its fields are this type's own
 * members, and the type cannot be changed), as an attribute for a subclass's instance (which may
 * have slots of its own under the same names, or properties). */
static int store_attr(PyObject* self, int arg, PyObject* value) {
  const int r = PyObject_SetAttr(self, arg_names[arg], value);
  Py_DECREF(value);
  return r;
}

static Py_ALWAYS_INLINE inline int store(PyObject* self, int exact, int arg, PyObject* value) {
  if (value == NULL) return -1;
  if (!exact) return store_attr(self, arg, value);
  PyObject** slot = (PyObject**)((char*)self + kArgOffset[arg]);
  PyObject* old = *slot;
  *slot = value;
  Py_XDECREF(old);
  return 0;
}

static PyObject* new_ref(PyObject* o) {
  Py_INCREF(o);
  return o;
}

/* `Task.__init__(self, ...)`: `a` holds the arguments given (borrowed), NULL for a default. The
 * checks, their order, their messages and what is stored are task.py's __init__ as it was. */
static int task_fill(PyObject* self, PyObject* const* a) {
  const int exact = Py_IS_TYPE(self, &TaskType);
  PyObject* type = a[A_TYPE] != NULL ? a[A_TYPE] : str_general;
  PyObject* none = Py_None;
#define ARG(i) (a[i] != NULL ? a[i] : none)

  /* if type.__class__ is not str or type not in _KNOWN_SET: _check_type_arg(type); the default,
   * "general", is a known type (the engine's first): nothing asked (~0.3k instructions a Task) */
  int known = a[A_TYPE] == NULL;
  if (!known && PyUnicode_CheckExact(type)) {
    PyObject* set = global(g_known_set);
    if (set == NULL) return -1;
    if (PyAnySet_CheckExact(set)) {  /* a str's hash and equality run no Python code */
      known = PySet_Contains(set, type);
    } else {  /* anything else may: held while asked */
      Py_INCREF(set);
      known = PySequence_Contains(set, type);
      Py_DECREF(set);
    }
    if (known < 0) return -1;
  }
  if (!known) {
    PyObject* r = call_global(g_check_type_arg, &type, 1);
    if (r == NULL) return -1;
    Py_DECREF(r);
  }

  /* a list copied; a str as one user message; anything else through list() */
  PyObject* messages = a[A_MESSAGES];
  PyObject* msgs;
  if (messages == NULL) {
    msgs = PyList_New(0);
  } else if (PyList_CheckExact(messages)) {
    msgs = PyList_GetSlice(messages, 0, PyList_GET_SIZE(messages));
  } else if (PyUnicode_Check(messages)) {
    PyObject* one = PyDict_New();
    if (one == NULL) return -1;
    if (PyDict_SetItem(one, str_role, str_user) < 0 || PyDict_SetItem(one, str_content, messages) < 0) {
      Py_DECREF(one);
      return -1;
    }
    msgs = PyList_New(1);
    if (msgs == NULL) {
      Py_DECREF(one);
      return -1;
    }
    PyList_SET_ITEM(msgs, 0, one);
  } else {
    msgs = PySequence_List(messages);
  }
  if (msgs == NULL) return -1;
  /* every message a mapping with a role (a dict first: the Mapping check is an ABC's) */
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(msgs); ++i) {
    PyObject* m = PyList_GET_ITEM(msgs, i);
    Py_INCREF(m);
    int ok;
    if (PyDict_CheckExact(m)) {
      ok = PyDict_Contains(m, str_role);
    } else {
      PyObject* mapping = global(g_mapping);
      if (mapping == NULL) {
        ok = -1;
      } else {  /* held: an ABC's check may run Python code */
        Py_INCREF(mapping);
        ok = PyObject_IsInstance(m, mapping);
        Py_DECREF(mapping);
      }
      if (ok == 1) ok = PySequence_Contains(m, str_role);
    }
    if (ok == 0) { /* raises naming its place */
      PyObject* args[2] = {msgs, m};
      PyObject* r = call_global(g_bad_message, args, 2);
      ok = r == NULL ? -1 : 1;
      Py_XDECREF(r);
    }
    Py_DECREF(m);
    if (ok < 0) {
      Py_DECREF(msgs);
      return -1;
    }
  }

  PyObject* input_size = a[A_INPUT_SIZE];
  PyObject* max_tokens = a[A_MAX_TOKENS];
  PyObject* quality = a[A_QUALITY];
  int bad = 0;
  if (input_size != NULL && input_size != none) {
    bad = less_than(input_size, 0, int_zero);
    if (bad == 1) refuse("input_size must be >= 0, got %U", input_size);
  }
  if (bad == 0 && max_tokens != NULL && max_tokens != none) {
    bad = less_than(max_tokens, 1, int_one);
    if (bad == 1) refuse("max_tokens must be >= 1, got %U", max_tokens);
  }
  if (bad == 0 && quality != NULL && quality != none) { /* not 0.0 <= quality <= 1.0 */
    int in = less_equal(float_zero, quality);
    if (in == 1) in = less_equal(quality, float_one);
    bad = in < 0 ? -1 : !in;
    if (bad == 1) refuse("quality must be in [0, 1], got %U", quality);
  }
  if (bad != 0) {
    Py_DECREF(msgs);
    return -1;
  }
  PyObject* budget;
  if (a[A_BUDGET] != NULL && a[A_BUDGET] != none) {
    budget = call_global(g_budget, &a[A_BUDGET], 1);
    if (budget == NULL) {
      Py_DECREF(msgs);
      return -1;
    }
  } else {
    budget = new_ref(none);
  }
  PyObject* id = ARG(A_ID);
  PyObject* project = ARG(A_PROJECT);
  PyObject* conversation = ARG(A_CONVERSATION);
  if ((id != none && !PyUnicode_CheckExact(id)) || (project != none && !PyUnicode_CheckExact(project)) ||
      (conversation != none && !PyUnicode_CheckExact(conversation))) {
    PyObject* args[3] = {id, project, conversation}; /* the engine reads them as text */
    PyObject* r = call_global(g_check_texts, args, 3);
    if (r == NULL) {
      Py_DECREF(budget);
      Py_DECREF(msgs);
      return -1;
    }
    Py_DECREF(r);
  }
  PyObject* params;
  const int given = a[A_PARAMS] != NULL ? PyObject_IsTrue(a[A_PARAMS]) : 0;
  if (given < 0) {
    params = NULL;
  } else if (given) {
    params = call_global(g_params, &a[A_PARAMS], 1);
  } else {
    params = PyDict_New();
  }
  if (params == NULL) {
    Py_DECREF(budget);
    Py_DECREF(msgs);
    return -1;
  }

  /* stored in __init__'s order (a re-init that fails half-way leaves what it had stored);
   * store takes its value, even when it fails */
  PyObject* capabilities = ARG(A_CAPABILITIES);
  PyObject* tags = ARG(A_TAGS);
  int has = 0;
  if (store(self, exact, A_ID, id != none ? new_ref(id) : new_task_id()) < 0 ||
      store(self, exact, A_TYPE, new_ref(type)) < 0) {
    Py_DECREF(msgs);
    goto fail_budget;
  }
  if (store(self, exact, A_MESSAGES, msgs) < 0 ||
      store(self, exact, A_INPUT_SIZE, new_ref(ARG(A_INPUT_SIZE))) < 0 ||
      store(self, exact, A_MAX_TOKENS, new_ref(ARG(A_MAX_TOKENS))) < 0 ||
      store(self, exact, A_PROJECT, new_ref(project)) < 0 || (has = PyObject_IsTrue(capabilities)) < 0 ||
      store(self, exact, A_CAPABILITIES, has ? PySequence_Tuple(capabilities) : PyTuple_New(0)) < 0 ||
      store(self, exact, A_QUALITY, new_ref(ARG(A_QUALITY))) < 0) {
    goto fail_budget;
  }
  if (store(self, exact, A_BUDGET, budget) < 0 ||
      store(self, exact, A_CONVERSATION, new_ref(conversation)) < 0 || (has = PyObject_IsTrue(tags)) < 0 ||
      store(self, exact, A_TAGS, has ? PyObject_CallOneArg((PyObject*)&PyDict_Type, tags) : PyDict_New()) < 0) {
    goto fail_params;
  }
  if (store(self, exact, A_PARAMS, params) < 0) return -1;
  PyObject* compress = ARG(A_COMPRESS);
  if (compress != none && compress != Py_False) {
    compress = call_global(g_compression, &compress, 1);
  } else {
    Py_INCREF(compress);
  }
  if (store(self, exact, A_COMPRESS, compress) < 0) return -1;
  PyObject* cache = a[A_CACHE];
  int on = 1;
  if (cache != NULL && cache != Py_True && (on = PyObject_IsTrue(cache)) < 0) return -1;
  return store(self, exact, A_CACHE, new_ref(on ? Py_True : Py_False));

fail_budget:
  Py_DECREF(budget);
fail_params:
  Py_DECREF(params);
  return -1;
#undef ARG
}

/* The argument a keyword names, or -1 with TypeError set. */
static int keyword_index(PyObject* key) {
  for (int i = 0; i < N_ARGS; ++i) {
    if (key == arg_names[i]) return i;
  }
  if (!PyUnicode_Check(key)) {
    PyErr_SetString(PyExc_TypeError, "keywords must be strings");
    return -1;
  }
  for (int i = 0; i < N_ARGS; ++i) {
    if (PyUnicode_Compare(key, arg_names[i]) == 0) return i;
  }
  PyErr_Format(PyExc_TypeError, "Task.__init__() got an unexpected keyword argument '%U'", key);
  return -1;
}

static int positional(PyObject** a, PyObject* const* args, Py_ssize_t n) {
  if (n > N_ARGS) {
    PyErr_Format(PyExc_TypeError,
                 "Task.__init__() takes from 1 to %d positional arguments but %zd were given",
                 N_ARGS + 1, n + 1);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; ++i) a[i] = args[i];
  return 0;
}

static int keyword(PyObject** a, PyObject* key, PyObject* value) {
  const int i = keyword_index(key);
  if (i < 0) return -1;
  if (a[i] != NULL) {
    PyErr_Format(PyExc_TypeError, "Task.__init__() got multiple values for argument '%U'", key);
    return -1;
  }
  a[i] = value;
  return 0;
}

static PyObject* task_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  (void)args; /* __init__'s, as object.__new__ leaves them when __init__ is overridden */
  (void)kwds;
  return type->tp_alloc(type, 0);
}

static int task_init(PyObject* self, PyObject* args, PyObject* kwds) {
  PyObject* a[N_ARGS] = {NULL};
  if (positional(a, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args)) < 0) return -1;
  if (kwds != NULL) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwds, &pos, &key, &value)) {
      if (keyword(a, key, value) < 0) return -1;
    }
  }
  return task_fill(self, a);
}

/* `Task(...)`: the instance made and filled in one call (Task's __new__ and __init__ are this
 * type's own and cannot be replaced: the type is immutable). A subclass is called the usual way
 * (type.__call__: its __new__, then its __init__), tp_vectorcall being never inherited. */
static PyObject* task_vectorcall(PyObject* callable, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  PyTypeObject* type = (PyTypeObject*)callable;
  const Py_ssize_t n = PyVectorcall_NARGS(nargsf);
  if (type != &TaskType) { /* not expected: the generic path */
    PyObject* tuple = PyTuple_New(n);
    if (tuple == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; ++i) PyTuple_SET_ITEM(tuple, i, new_ref(args[i]));
    PyObject* kw = NULL;
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
      kw = PyDict_New();
      for (Py_ssize_t i = 0; kw != NULL && i < PyTuple_GET_SIZE(kwnames); ++i) {
        if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), args[n + i]) < 0) Py_CLEAR(kw);
      }
      if (kw == NULL) {
        Py_DECREF(tuple);
        return NULL;
      }
    }
    PyObject* r = PyType_Type.tp_call(callable, tuple, kw);
    Py_DECREF(tuple);
    Py_XDECREF(kw);
    return r;
  }
  PyObject* a[N_ARGS] = {NULL};
  if (positional(a, args, n) < 0) return NULL;
  if (kwnames != NULL) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      if (keyword(a, PyTuple_GET_ITEM(kwnames, i), args[n + i]) < 0) return NULL;
    }
  }
  PyObject* self = type->tp_alloc(type, 0);
  if (self == NULL) return NULL;
  if (task_fill(self, a) < 0) {
    Py_DECREF(self);
    return NULL;
  }
  return self;
}

static int task_traverse(PyObject* self, visitproc visit, void* arg) {
  TaskObject* t = (TaskObject*)self;
  Py_VISIT(t->budget);
  Py_VISIT(t->cache);
  Py_VISIT(t->capabilities);
  Py_VISIT(t->compress);
  Py_VISIT(t->conversation);
  Py_VISIT(t->id);
  Py_VISIT(t->input_size);
  Py_VISIT(t->max_tokens);
  Py_VISIT(t->messages);
  Py_VISIT(t->params);
  Py_VISIT(t->project);
  Py_VISIT(t->quality);
  Py_VISIT(t->tags);
  Py_VISIT(t->type);
  return 0;
}

static int task_clear(PyObject* self) {
  TaskObject* t = (TaskObject*)self;
  Py_CLEAR(t->budget);
  Py_CLEAR(t->cache);
  Py_CLEAR(t->capabilities);
  Py_CLEAR(t->compress);
  Py_CLEAR(t->conversation);
  Py_CLEAR(t->id);
  Py_CLEAR(t->input_size);
  Py_CLEAR(t->max_tokens);
  Py_CLEAR(t->messages);
  Py_CLEAR(t->params);
  Py_CLEAR(t->project);
  Py_CLEAR(t->quality);
  Py_CLEAR(t->tags);
  Py_CLEAR(t->type);
  return 0;
}

static void task_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  Py_TRASHCAN_BEGIN(self, task_dealloc)
  task_clear(self);
  Py_TYPE(self)->tp_free(self);
  Py_TRASHCAN_END
}

/* f"Task(id={self.id!r}, type={self.type!r}, messages=<{len(self.messages)}>, "
 * f"max_tokens={self.max_tokens!r}, project={self.project!r}, budget={self.budget!r})" */
static PyObject* task_repr(PyObject* self) {
  static const int kShown[] = {A_ID, A_TYPE, A_MESSAGES, A_MAX_TOKENS, A_PROJECT, A_BUDGET};
  PyObject* v[6] = {NULL};
  PyObject* r = NULL;
  Py_ssize_t n = -1;
  for (int i = 0; i < 6; ++i) {
    v[i] = PyObject_GetAttr(self, arg_names[kShown[i]]);
    if (v[i] == NULL) goto done;
    if (i == 2 && (n = PyObject_Size(v[i])) < 0) goto done;
  }
  r = PyUnicode_FromFormat("Task(id=%R, type=%R, messages=<%zd>, max_tokens=%R, project=%R, budget=%R)",
                           v[0], v[1], n, v[3], v[4], v[5]);
done:
  for (int i = 0; i < 6; ++i) Py_XDECREF(v[i]);
  return r;
}

/* __eq__: NotImplemented unless `other` is a Task; else every field equal (read as getattr reads
 * them, in __slots__' order, stopping at the first that differs). __ne__ is its negation. */
static PyObject* task_richcompare(PyObject* self, PyObject* other, int op) {
  if (op != Py_EQ && op != Py_NE) Py_RETURN_NOTIMPLEMENTED;
  const int is_task = PyObject_IsInstance(other, (PyObject*)&TaskType);
  if (is_task < 0) return NULL;
  if (!is_task) Py_RETURN_NOTIMPLEMENTED;
  int equal = 1;
  for (Py_ssize_t i = 0; equal == 1 && i < PyTuple_GET_SIZE(slot_names); ++i) {
    PyObject* name = PyTuple_GET_ITEM(slot_names, i);
    PyObject* mine = PyObject_GetAttr(self, name);
    if (mine == NULL) return NULL;
    PyObject* theirs = PyObject_GetAttr(other, name);
    if (theirs == NULL) {
      Py_DECREF(mine);
      return NULL;
    }
    PyObject* same = PyObject_RichCompare(mine, theirs, Py_EQ);
    Py_DECREF(mine);
    Py_DECREF(theirs);
    if (same == NULL) return NULL;
    equal = PyObject_IsTrue(same);
    Py_DECREF(same);
    if (equal < 0) return NULL;
  }
  return PyBool_FromLong(op == Py_EQ ? equal : !equal);
}

static PyObject* task_coerce(PyObject* cls, PyObject* args, PyObject* kwds) {
  static char* kwlist[] = {"task", NULL};
  PyObject* task = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:coerce", kwlist, &task)) return NULL;
  PyObject* call[2] = {cls, task};
  return call_global(g_coerce, call, 2);
}

/* pickle's protocols 0 and 1 would rebuild a subclass's instance by calling Task(instance)
 * (copyreg._reduce_ex): task.py's _reduce_ex makes that the TypeError Python raises for any
 * object those protocols cannot pickle. */
static PyObject* task_reduce_ex(PyObject* self, PyObject* protocol) {
  PyObject* call[2] = {self, protocol};
  return call_global(g_reduce_ex, call, 2);
}

static PyMethodDef task_methods[] = {
    {"__reduce_ex__", task_reduce_ex, METH_O, "__reduce_ex__($self, protocol, /)\n--\n\nHelper for pickle."},
    {"coerce", (PyCFunction)(void (*)(void))task_coerce, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "coerce($cls, /, task)\n--\n\n"
     "A :class:`Task` from a Task, a mapping or any object with the plan's fields.\n\n"
     "Fields read (as keys or attributes): ``id``, ``type``, ``messages`` (or ``input``: a\n"
     "string or messages), ``input_size``, ``max_tokens``, ``project``, ``capabilities``,\n"
     "``quality``, ``budget``, ``conversation``, ``tags``, ``params``, ``compress``. Missing\n"
     "fields take the defaults of the constructor; the values are validated as there.\n\n"
     "Raises:\n"
     "    InvalidArgumentError: a field has a bad value, or both ``messages`` and ``input``\n"
     "        are given and differ.\n\n"
     ">>> Task.coerce({\"type\": \"coding\", \"input\": \"hi\", \"max_tokens\": 50}).max_tokens\n"
     "50\n"},
    {NULL, NULL, 0, NULL}};

#define MEMBER(name, doc) {#name, T_OBJECT_EX, offsetof(TaskObject, name), 0, doc}
static PyMemberDef task_members[] = {
    MEMBER(budget, "most this one task may cost, in USD (a ``decimal.Decimal``), or None"),
    MEMBER(cache, "False skips the manager's response cache for this task"),
    MEMBER(capabilities, "capabilities the model must have (a tuple of names)"),
    MEMBER(compress, "prompt compression for this task (a ``Compression``, False, or None: the manager's)"),
    MEMBER(conversation, "conversation the spend is booked to"),
    MEMBER(id, "task id recorded in the ledger"),
    MEMBER(input_size, "prompt size in tokens, or None: counted from ``messages``"),
    MEMBER(max_tokens, "upper bound on output tokens (drives the worst-case cost reservation)"),
    MEMBER(messages, "chat messages in OpenAI shape (the task's own list)"),
    MEMBER(params, "more OpenAI chat request fields sent as given (a dict)"),
    MEMBER(project, "project the spend is booked to"),
    MEMBER(quality, "minimum quality in [0, 1] the caller wants, or None"),
    MEMBER(tags, "extra budget scopes (a dict)"),
    MEMBER(type, "task type of the plan"),
    {NULL, 0, 0, 0, NULL}};
#undef MEMBER

static const char task_doc[] =
    "Task(id=None, type='general', messages=(), input_size=None, max_tokens=None, project=None, "
    "capabilities=(), quality=None, budget=None, conversation=None, tags=None, params=None, "
    "cache=True, compress=None)\n--\n\n"
    "A task for a model: its messages, what it needs, and what it may cost.\n\n"
    "Args:\n"
    "    id: task id recorded in the ledger (a fresh one if omitted).\n"
    "    type: task type of the plan (``\"coding\"``, ``\"reasoning\"``, ``\"general\"``, ...).\n"
    "    messages: chat messages in OpenAI shape; a string is taken as one user message.\n"
    "    input_size: prompt size in tokens; counted from ``messages`` when omitted.\n"
    "    max_tokens: upper bound on output tokens (drives the worst-case cost reservation).\n"
    "    project: project the spend is booked to.\n"
    "    capabilities: capabilities the model must have (``\"tools\"``, ``\"vision\"``, ...).\n"
    "    quality: minimum quality in [0, 1] the caller wants, if any.\n"
    "    budget: most this one task may cost, in USD (stored as ``decimal.Decimal``).\n"
    "    conversation: conversation the spend is booked to.\n"
    "    tags: extra budget scopes, e.g. ``{\"user\": \"alice\", \"team\": \"search\"}``.\n"
    "    params: more OpenAI chat request fields sent as given (``temperature``, ``tools``,\n"
    "        ``response_format``, ...); ``model``, ``messages``, ``stream`` and ``max_tokens`` are\n"
    "        the router's and may not appear here.\n"
    "    compress: prompt compression for this task (an ``orroute.compress.Compression`` or a\n"
    "        mapping of its fields; ``False`` turns the manager's off; None: the manager's).\n"
    "    cache: False skips the manager's response cache for this task (see orroute.cache).\n\n"
    ">>> Task(type=\"coding\", messages=\"Write a haiku about C++\").messages[0][\"role\"]\n"
    "'user'\n";

static PyTypeObject TaskType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "orroute.task.Task",
    .tp_basicsize = sizeof(TaskObject),
    .tp_dealloc = task_dealloc,
    .tp_repr = task_repr,
    .tp_hash = PyObject_HashNotImplemented, /* mutable: not hashable (__hash__ is None) */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = task_doc,
    .tp_traverse = task_traverse,
    .tp_clear = task_clear,
    .tp_richcompare = task_richcompare,
    .tp_methods = task_methods,
    .tp_members = task_members,
    .tp_init = task_init,
    .tp_alloc = PyType_GenericAlloc,
    .tp_new = task_new,
    .tp_free = PyObject_GC_Del,
    .tp_vectorcall = task_vectorcall,
};

/* _bind(globals): task.py hands over its module dict, where the type finds its helpers. */
static PyObject* bind(PyObject* module, PyObject* globals) {
  (void)module;
  if (!PyDict_Check(globals)) {
    PyErr_SetString(PyExc_TypeError, "_bind takes a module's globals (a dict)");
    return NULL;
  }
  Py_INCREF(globals);
  Py_XSETREF(task_globals, globals);
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_bind", bind, METH_O, "_bind(globals, /)\n--\n\nHands task.py's globals to the Task type."},
    {"_forget_id_prefix", forget_id_prefix, METH_NOARGS,
     "_forget_id_prefix($module, /)\n--\n\nThe next task id draws the process's prefix again (after a fork)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef task_module = {PyModuleDef_HEAD_INIT, "orroute._task",
                                         "orroute.Task's type, in C (see orroute.task).", -1,
                                         module_methods, NULL, NULL, NULL, NULL};

static PyObject* intern(const char* s) {
  return PyUnicode_InternFromString(s);
}

PyMODINIT_FUNC PyInit__task(void) {
  for (int i = 0; i < N_ARGS; ++i) {
    if ((arg_names[i] = intern(kArgNames[i])) == NULL) return NULL;
  }
  static const char* const kSlots[N_FIELDS] = {"budget", "cache", "capabilities", "compress",
                                               "conversation", "id", "input_size", "max_tokens",
                                               "messages", "params", "project", "quality", "tags",
                                               "type"};
  if ((slot_names = PyTuple_New(N_FIELDS)) == NULL) return NULL;
  for (int i = 0; i < N_FIELDS; ++i) {
    PyObject* name = intern(kSlots[i]);
    if (name == NULL) return NULL;
    PyTuple_SET_ITEM(slot_names, i, name);
  }
  if ((str_general = intern("general")) == NULL || (str_role = intern("role")) == NULL ||
      (str_user = intern("user")) == NULL || (str_content = intern("content")) == NULL ||
      (str_empty = PyUnicode_FromString("")) == NULL || (int_zero = PyLong_FromLong(0)) == NULL ||
      (int_one = PyLong_FromLong(1)) == NULL || (float_zero = PyFloat_FromDouble(0.0)) == NULL ||
      (float_one = PyFloat_FromDouble(1.0)) == NULL || (g_known_set = intern("_KNOWN_SET")) == NULL ||
      (g_id_prefix = intern("_id_prefix")) == NULL ||
      (g_check_type_arg = intern("_check_type_arg")) == NULL ||
      (g_bad_message = intern("_bad_message")) == NULL || (g_budget = intern("_budget")) == NULL ||
      (g_check_texts = intern("_check_texts")) == NULL || (g_params = intern("_params")) == NULL ||
      (g_compression = intern("_compression")) == NULL || (g_coerce = intern("_coerce")) == NULL ||
      (g_reduce_ex = intern("_reduce_ex")) == NULL ||
      (g_invalid = intern("InvalidArgumentError")) == NULL || (g_mapping = intern("Mapping")) == NULL) {
    return NULL;
  }
  if (PyType_Ready(&TaskType) < 0) return NULL;
  /* the field names, as the Python class listed them: pickling and copying read a slotted
   * type's state by them (copyreg._slotnames), and a subclass may name them */
  if (PyDict_SetItemString(TaskType.tp_dict, "__slots__", slot_names) < 0) return NULL;
  PyType_Modified(&TaskType);
  PyObject* m = PyModule_Create(&task_module);
  if (m == NULL) return NULL;
  Py_INCREF(&TaskType);
  if (PyModule_AddObject(m, "Task", (PyObject*)&TaskType) < 0) {
    Py_DECREF(&TaskType);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
