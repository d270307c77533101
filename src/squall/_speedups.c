/*
 * Optional C accelerator for the per-tuple hot path (see executor.py).
 *
 * Everything here has a pure-Python twin in executor.py / api/tuple.py, and the
 * Python code is the specification: when this module is missing, or when a call
 * is anything but the common case, the Python path runs. Squall never depends on
 * this module for correctness.
 *
 *   SelfDescriptor  a descriptor whose __get__ returns the instance: `tup.values`.
 *   make_values     build a tuple-subclass instance straight from a list/tuple.
 *   RouteBase       C fields of executor.Route used by the fast emit.
 *   Emitter         a callable bound as `component.emit`: the fast path for
 *                   `emit(values)` / `emit(values, stream=...)` to one single-target
 *                   subscriber, unanchored or auto-anchored to a current tuple with
 *                   one root; everything else calls `fallback`.
 *   AckedTuple      one delivery of a tuple when acking is on.
 *   run_unanchored  the bolt loop `for v in vals: process(v)` with per-tuple error
 *                   handling delegated to a Python callback.
 *   run_anchored    the same loop with acking on (AckedTuple, auto-ack).
 *   acker_apply     AckerLedger.apply's loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* ---------------------------------------------------------------- helpers */

static PyObject *str_stream; /* interned "stream" */
static PyObject *str_choose; /* interned "choose" */

static PyObject *
new_values(PyTypeObject *cls, PyObject *seq)
{
    Py_ssize_t n, i;
    PyObject **src;
    PyObject *obj;
    if (PyList_CheckExact(seq)) {
        n = PyList_GET_SIZE(seq);
        src = ((PyListObject *)seq)->ob_item;
    }
    else if (PyTuple_Check(seq)) {
        n = PyTuple_GET_SIZE(seq);
        src = ((PyTupleObject *)seq)->ob_item;
    }
    else {
        /* tuple.__new__(cls, seq) for any other iterable */
        PyObject *args = PyTuple_Pack(1, seq);
        PyObject *res;
        if (args == NULL)
            return NULL;
        res = PyTuple_Type.tp_new(cls, args, NULL);
        Py_DECREF(args);
        return res;
    }
    obj = cls->tp_alloc(cls, n);
    if (obj == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *item = src[i];
        Py_INCREF(item);
        PyTuple_SET_ITEM(obj, i, item);
    }
    return obj;
}

static PyObject *
make_values(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "make_values(tuple_subclass, sequence)");
        return NULL;
    }
    return new_values((PyTypeObject *)args[0], args[1]);
}


/* --------------------------------------------------------------- AckedTuple */

/* One delivery of a tuple when acking is on (twin of api.tuple.AckedTuple). */
typedef struct {
    PyObject_HEAD
    PyObject *values;             /* the ValuesTuple */
    PyObject *roots;              /* dict root -> edge xor, or None */
    unsigned long long ack_val;   /* XOR of children's edge ids */
    char done;                    /* acked or failed: _ack_val reads None */
} AckedTupleObject;

static PyTypeObject AckedTupleType;

static PyObject *
acked_new_fast(PyObject *values, PyObject *roots)
{
    AckedTupleObject *t = PyObject_GC_New(AckedTupleObject, &AckedTupleType);
    if (t == NULL)
        return NULL;
    Py_INCREF(values);
    t->values = values;
    Py_INCREF(roots);
    t->roots = roots;
    t->ack_val = 0;
    t->done = 0;
    PyObject_GC_Track(t);
    return (PyObject *)t;
}

static PyObject *
acked_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *values, *roots;
    if (!PyArg_ParseTuple(args, "OO:AckedTuple", &values, &roots))
        return NULL;
    if (type != &AckedTupleType) {
        PyErr_SetString(PyExc_TypeError, "AckedTuple cannot be subclassed");
        return NULL;
    }
    return acked_new_fast(values, roots);
}

static int
acked_traverse(AckedTupleObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->values);
    Py_VISIT(self->roots);
    return 0;
}

static int
acked_clear(AckedTupleObject *self)
{
    Py_CLEAR(self->values);
    Py_CLEAR(self->roots);
    return 0;
}

static void
acked_dealloc(AckedTupleObject *self)
{
    PyObject_GC_UnTrack(self);
    acked_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
acked_get_ack_val(AckedTupleObject *self, void *closure)
{
    if (self->done)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(self->ack_val);
}

static int
acked_set_ack_val(AckedTupleObject *self, PyObject *value, void *closure)
{
    unsigned long long v;
    if (value == NULL || value == Py_None) {
        self->done = 1;
        return 0;
    }
    v = PyLong_AsUnsignedLongLongMask(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    self->ack_val = v;
    self->done = 0;
    return 0;
}

static PyObject *
acked_get_roots(AckedTupleObject *self, void *closure)
{
    Py_INCREF(self->roots);
    return self->roots;
}

static int
acked_set_roots(AckedTupleObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _roots");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->roots, value);
    return 0;
}

static PyObject *
acked_forward(AckedTupleObject *self, void *closure)
{
    return PyObject_GetAttrString(self->values, (const char *)closure);
}

static PyObject *
acked_get_id(AckedTupleObject *self, void *closure)
{
    return PyUnicode_FromFormat("%zu", (size_t)(void *)self);
}

static PyObject *
acked_is_tick(AckedTupleObject *self, void *closure)
{
    PyObject *comp = PyObject_GetAttrString(self->values, "component");
    PyObject *stream;
    int r;
    if (comp == NULL)
        return NULL;
    stream = PyObject_GetAttrString(self->values, "stream");
    if (stream == NULL) {
        Py_DECREF(comp);
        return NULL;
    }
    r = PyUnicode_Check(comp) && PyUnicode_Check(stream) &&
        PyUnicode_CompareWithASCIIString(comp, "__system") == 0 &&
        PyUnicode_CompareWithASCIIString(stream, "__tick") == 0;
    Py_DECREF(comp);
    Py_DECREF(stream);
    return PyBool_FromLong(r);
}

static PyObject *
acked_repr(AckedTupleObject *self)
{
    return PyUnicode_FromFormat("Tuple(%R, anchored=%s)", self->values,
                                self->roots == Py_None ? "False" : "True");
}

/* A delivered tuple is its values: len(t), t[i] and iteration see the values. */
static Py_ssize_t
acked_length(AckedTupleObject *self)
{
    return PyObject_Length(self->values);
}

static PyObject *
acked_subscript(AckedTupleObject *self, PyObject *key)
{
    return PyObject_GetItem(self->values, key);
}

static PyObject *
acked_iter(AckedTupleObject *self)
{
    return PyObject_GetIter(self->values);
}

static PyMappingMethods acked_as_mapping = {
    .mp_length = (lenfunc)acked_length,
    .mp_subscript = (binaryfunc)acked_subscript,
};

static PyGetSetDef acked_getset[] = {
    {"_ack_val", (getter)acked_get_ack_val, (setter)acked_set_ack_val,
     "XOR of child edge ids; None once acked or failed", NULL},
    {"_roots", (getter)acked_get_roots, (setter)acked_set_roots, "root id -> edge xor", NULL},
    {"component", (getter)acked_forward, NULL, "emitting component", "component"},
    {"stream", (getter)acked_forward, NULL, "stream", "stream"},
    {"task", (getter)acked_forward, NULL, "emitting task", "task"},
    {"id", (getter)acked_get_id, NULL, "an id unique among live tuples", NULL},
    {"is_tick", (getter)acked_is_tick, NULL, "True for tick tuples", NULL},
    {NULL}
};

static PyMemberDef acked_members[] = {
    {"values", T_OBJECT, offsetof(AckedTupleObject, values), READONLY, "the values"},
    {NULL}
};

static PyTypeObject AckedTupleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "squall.AckedTuple",
    .tp_basicsize = sizeof(AckedTupleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One delivery of a tuple when acking is on: values plus its anchor ids.",
    .tp_traverse = (traverseproc)acked_traverse,
    .tp_clear = (inquiry)acked_clear,
    .tp_dealloc = (destructor)acked_dealloc,
    .tp_repr = (reprfunc)acked_repr,
    .tp_as_mapping = &acked_as_mapping,
    .tp_iter = (getiterfunc)acked_iter,
    .tp_getset = acked_getset,
    .tp_members = acked_members,
    .tp_new = acked_tp_new,
};

/* splitmix64: edge ids only need to be random-looking 64-bit values. */
static unsigned long long
next_edge(unsigned long long *state)
{
    unsigned long long z;
    do {
        z = (*state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z = z ^ (z >> 31);
    } while (z == 0);
    return z;
}

/* XOR `x` into pending[root] (a dict of Python ints). */
static int
xor_into(PyObject *pending, PyObject *root, unsigned long long x)
{
    PyObject *old = PyDict_GetItemWithError(pending, root);
    PyObject *nv;
    int rc;
    if (old == NULL && PyErr_Occurred())
        return -1;
    if (old != NULL) {
        unsigned long long o = PyLong_AsUnsignedLongLongMask(old);
        if (o == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        x ^= o;
    }
    nv = PyLong_FromUnsignedLongLong(x);
    if (nv == NULL)
        return -1;
    rc = PyDict_SetItem(pending, root, nv);
    Py_DECREF(nv);
    return rc;
}

/* make_values_many(cls, seqs) -> [make_values(cls, s) for s in seqs] */
static PyObject *
make_values_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyTypeObject *cls;
    PyObject *seqs, *out;
    Py_ssize_t i, n;
    if (nargs != 2 || !PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "make_values_many(tuple_subclass, list)");
        return NULL;
    }
    cls = (PyTypeObject *)args[0];
    seqs = args[1];
    n = PyList_GET_SIZE(seqs);
    out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *v = new_values(cls, PyList_GET_ITEM(seqs, i));
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

/* ---------------------------------------------------------- SelfDescriptor */

typedef struct {
    PyObject_HEAD
} SelfDescriptor;

static PyObject *
selfdesc_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    Py_INCREF(obj);
    return obj;
}

static PyTypeObject SelfDescriptorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "squall._speedups.SelfDescriptor",
    .tp_basicsize = sizeof(SelfDescriptor),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A descriptor that returns the instance itself (``tup.values``).",
    .tp_descr_get = selfdesc_get,
    .tp_new = PyType_GenericNew,
};

/* ---------------------------------------------------------------- RouteBase */

typedef struct {
    PyObject_HEAD
    PyObject *cls;       /* the values class (a tuple subclass) */
    Py_ssize_t width;    /* number of declared fields */
    PyObject *one;       /* the single grouper, or None: no fast path */
    PyObject *fcache;    /* dict key -> task, or None */
    Py_ssize_t fidx;     /* index of the grouping field for fcache */
    PyObject *staging;   /* dict task -> list of values */
    long long emitted;
    char sink;           /* nobody subscribes: emits are only checked and counted */
    char acking;         /* emits carry anchor ids (staged in rstaging) */
    PyObject *rstaging;  /* dict task -> list of anchor dicts (acking only) */
} RouteBase;

static int
route_traverse(RouteBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    Py_VISIT(self->one);
    Py_VISIT(self->fcache);
    Py_VISIT(self->staging);
    Py_VISIT(self->rstaging);
    return 0;
}

static int
route_clear(RouteBase *self)
{
    Py_CLEAR(self->cls);
    Py_CLEAR(self->one);
    Py_CLEAR(self->fcache);
    Py_CLEAR(self->staging);
    Py_CLEAR(self->rstaging);
    return 0;
}

static void
route_dealloc(RouteBase *self)
{
    PyObject_GC_UnTrack(self);
    route_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef route_members[] = {
    {"cls", T_OBJECT, offsetof(RouteBase, cls), 0, "values class"},
    {"width", T_PYSSIZET, offsetof(RouteBase, width), 0, "number of fields"},
    {"one", T_OBJECT, offsetof(RouteBase, one), 0, "single grouper or None"},
    {"fcache", T_OBJECT, offsetof(RouteBase, fcache), 0, "fields cache or None"},
    {"fidx", T_PYSSIZET, offsetof(RouteBase, fidx), 0, "fields index"},
    {"staging", T_OBJECT, offsetof(RouteBase, staging), 0, "task -> values list"},
    {"emitted", T_LONGLONG, offsetof(RouteBase, emitted), 0, "tuples emitted"},
    {"sink", T_BOOL, offsetof(RouteBase, sink), 0, "no subscribers"},
    {"acking", T_BOOL, offsetof(RouteBase, acking), 0, "emits carry anchor ids"},
    {"rstaging", T_OBJECT, offsetof(RouteBase, rstaging), 0, "task -> anchor dicts"},
    {NULL}
};

static PyTypeObject RouteBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "squall._speedups.RouteBase",
    .tp_basicsize = sizeof(RouteBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "C storage for the fields of executor.Route used on the fast path.",
    .tp_traverse = (traverseproc)route_traverse,
    .tp_clear = (inquiry)route_clear,
    .tp_dealloc = (destructor)route_dealloc,
    .tp_members = route_members,
    .tp_new = PyType_GenericNew,
};

static int
append_staged(PyObject *staging, PyObject *task, PyObject *item)
{
    PyObject *lst = PyDict_GetItemWithError(staging, task); /* borrowed */
    if (lst == NULL) {
        if (PyErr_Occurred())
            return -1;
        lst = PyList_New(0);
        if (lst == NULL)
            return -1;
        if (PyDict_SetItem(staging, task, lst) < 0) {
            Py_DECREF(lst);
            return -1;
        }
        Py_DECREF(lst); /* the dict holds it */
    }
    return PyList_Append(lst, item);
}

/* Stage v for one task; returns the task (new ref) or NULL on error. */
static PyObject *
route_fast(RouteBase *r, PyObject *v)
{
    PyObject *task = NULL;
    if (r->fcache != Py_None && r->fcache != NULL) {
        PyObject *key = PyTuple_GET_ITEM(v, r->fidx);
        task = PyDict_GetItemWithError(r->fcache, key); /* borrowed */
        if (task == NULL && PyErr_Occurred()) {
            /* unhashable key: let the grouper deal with it */
            PyErr_Clear();
        }
        Py_XINCREF(task);
    }
    if (task == NULL) {
        task = PyObject_CallMethodOneArg(r->one, str_choose, v);
        if (task == NULL)
            return NULL;
    }
    if (append_staged(r->staging, task, v) < 0) {
        Py_DECREF(task);
        return NULL;
    }
    r->emitted++;
    return task;
}

/* ------------------------------------------------------------------ Emitter */

typedef struct {
    PyObject_HEAD
    PyObject *routes;    /* dict: stream name or None -> Route (RouteBase subclass) */
    PyObject *fallback;  /* the Python emit, same signature */
    vectorcallfunc vectorcall;
    PyObject *current;   /* the tuple being processed (auto-anchoring), or None */
    unsigned long long rng;
    char auto_anchor;
} Emitter;


static PyObject *
emitter_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Emitter *self = (Emitter *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *stream = Py_None;
    PyObject *route_obj;
    RouteBase *r;
    PyObject *v, *task;
    AckedTupleObject *cur = NULL;
    PyObject *root = NULL; /* the one root of the current tuple, when anchoring to it */

    if (nargs != 1)
        goto slow;
    if (kwnames != NULL) {
        /* Only `stream=` keeps us on the fast path. */
        if (PyTuple_GET_SIZE(kwnames) != 1)
            goto slow;
        if (PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0), str_stream) != 0) {
            if (PyErr_Occurred())
                return NULL;
            goto slow;
        }
        stream = args[1];
    }
    route_obj = PyDict_GetItemWithError(self->routes, stream); /* borrowed */
    if (route_obj == NULL) {
        if (PyErr_Occurred())
            PyErr_Clear();
        goto slow;
    }
    r = (RouteBase *)route_obj;
    if (!PyList_CheckExact(args[0]) && !PyTuple_CheckExact(args[0]))
        goto slow;
    if (Py_SIZE(args[0]) != r->width)
        goto slow; /* the Python path raises the precise error */
    if (r->sink) {
        r->emitted++;
        Py_RETURN_NONE;
    }
    if (r->one == NULL || r->one == Py_None)
        goto slow;
    if (r->acking) {
        /* Auto-anchor to the current tuple when it has exactly one root; with nothing
         * to anchor to (no auto-anchoring, no current tuple, a tick, or an unanchored
         * input) the emit is unanchored: staged with no anchor ids. */
        cur = (AckedTupleObject *)self->current;
        if (self->auto_anchor && cur != NULL && Py_TYPE(cur) == &AckedTupleType &&
            cur->roots != Py_None) {
            Py_ssize_t pos = 0;
            PyObject *val;
            if (cur->done || !PyDict_CheckExact(cur->roots) || PyDict_GET_SIZE(cur->roots) != 1)
                goto slow; /* anchoring to an acked tuple (an error), or several roots */
            PyDict_Next(cur->roots, &pos, &root, &val);
        }
    }
    v = new_values((PyTypeObject *)r->cls, args[0]);
    if (v == NULL)
        return NULL;
    task = route_fast(r, v); /* stages v and counts the emit */
    Py_DECREF(v);
    if (task == NULL)
        return NULL;
    if (r->acking) {
        /* rstaging gets the anchor ids, {root: edge}, or None for an unanchored emit */
        int rc = -1;
        if (root == NULL)
            rc = append_staged(r->rstaging, task, Py_None);
        else {
            unsigned long long edge = next_edge(&self->rng);
            PyObject *anchor = PyDict_New();
            PyObject *edge_obj = PyLong_FromUnsignedLongLong(edge);
            cur->ack_val ^= edge;
            if (anchor != NULL && edge_obj != NULL && PyDict_SetItem(anchor, root, edge_obj) == 0)
                rc = append_staged(r->rstaging, task, anchor);
            Py_XDECREF(anchor);
            Py_XDECREF(edge_obj);
        }
        if (rc < 0) {
            Py_DECREF(task);
            return NULL;
        }
    }
    Py_DECREF(task);
    Py_RETURN_NONE;

slow:
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static int
emitter_init(Emitter *self, PyObject *args, PyObject *kwds)
{
    PyObject *routes, *fallback;
    unsigned long long seed = 0x2545F4914F6CDD1DULL;
    int auto_anchor = 1;
    if (!PyArg_ParseTuple(args, "O!O|Kp:Emitter", &PyDict_Type, &routes, &fallback, &seed,
                          &auto_anchor))
        return -1;
    self->rng = seed;
    self->auto_anchor = (char)auto_anchor;
    Py_INCREF(Py_None);
    Py_XSETREF(self->current, Py_None);
    Py_INCREF(routes);
    Py_XSETREF(self->routes, routes);
    Py_INCREF(fallback);
    Py_XSETREF(self->fallback, fallback);
    self->vectorcall = emitter_vectorcall;
    return 0;
}

static int
emitter_traverse(Emitter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->routes);
    Py_VISIT(self->fallback);
    Py_VISIT(self->current);
    return 0;
}

static int
emitter_clear(Emitter *self)
{
    Py_CLEAR(self->routes);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->current);
    return 0;
}

static void
emitter_dealloc(Emitter *self)
{
    PyObject_GC_UnTrack(self);
    emitter_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef emitter_members[] = {
    {"fallback", T_OBJECT, offsetof(Emitter, fallback), READONLY, "the Python emit"},
    {"current", T_OBJECT, offsetof(Emitter, current), 0, "the tuple being processed"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Emitter, vectorcall), READONLY},
    {NULL}
};

static PyTypeObject EmitterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "squall._speedups.Emitter",
    .tp_basicsize = sizeof(Emitter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Emitter(routes, fallback): a fast `emit` with a Python fallback.",
    .tp_traverse = (traverseproc)emitter_traverse,
    .tp_clear = (inquiry)emitter_clear,
    .tp_dealloc = (destructor)emitter_dealloc,
    .tp_members = emitter_members,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Emitter, vectorcall),
    .tp_init = (initproc)emitter_init,
    .tp_new = PyType_GenericNew,
};


/* After a failed call: an Exception is handed to on_error(item, exc) and 0 is
 * returned (the loop goes on); anything else (KeyboardInterrupt, SystemExit, an
 * error in on_error itself) stays set and -1 is returned. */
static int
hand_to_on_error(PyObject *on_error, PyObject *item)
{
    PyObject *etype, *exc, *tb, *res;
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyErr_Fetch(&etype, &exc, &tb);
    PyErr_NormalizeException(&etype, &exc, &tb);
    if (tb != NULL && exc != NULL)
        PyException_SetTraceback(exc, tb);
    Py_XDECREF(etype);
    Py_XDECREF(tb);
    if (exc == NULL)
        return -1;
    res = PyObject_CallFunctionObjArgs(on_error, item, exc, NULL);
    Py_DECREF(exc);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* ------------------------------------------------------------ run_unanchored */

/* run_unanchored(process, vals, on_error) -> None
 * Calls process(v) for each v; an Exception (not BaseException) from process is
 * passed to on_error(v, exc) and the loop goes on. */
static PyObject *
run_unanchored(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *process, *vals, *on_error;
    Py_ssize_t i, n;
    if (nargs != 3 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "run_unanchored(process, list, on_error)");
        return NULL;
    }
    process = args[0];
    vals = args[1];
    on_error = args[2];
    n = PyList_GET_SIZE(vals);
    for (i = 0; i < n && i < PyList_GET_SIZE(vals); i++) {
        PyObject *v = PyList_GET_ITEM(vals, i);
        PyObject *res;
        Py_INCREF(v);
        res = PyObject_CallOneArg(process, v);
        if (res == NULL) {
            if (hand_to_on_error(on_error, v) < 0) {
                Py_DECREF(v);
                return NULL;
            }
        }
        else
            Py_DECREF(res);
        Py_DECREF(v);
    }
    Py_RETURN_NONE;
}


/* run_anchored(emitter, process, vals, roots, on_error, pending_acks, auto_ack) -> acks
 * The acking-on bolt loop: wraps each value in an AckedTuple, makes it the
 * emitter's current tuple (for auto-anchoring), calls process, and, with auto_ack,
 * acks it by XOR-ing its edge ids into pending_acks (combined per root, sent by the
 * engine after the step). Exceptions go to on_error(t, exc). Returns the number of
 * tuples auto-acked. Twin of BoltTask.run_batch + BoltTask.ack. */
static PyObject *
run_anchored(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Emitter *em;
    PyObject *process, *vals, *roots_list, *on_error, *pending;
    int auto_ack;
    Py_ssize_t i, n, acks = 0;
    if (nargs != 7 || !PyList_Check(args[2]) || !PyList_Check(args[3]) || !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "run_anchored(emitter, process, vals, roots, on_error, pending_acks, auto_ack)");
        return NULL;
    }
    em = args[0] == Py_None ? NULL : (Emitter *)args[0];
    if (em != NULL && Py_TYPE(em) != &EmitterType) {
        PyErr_SetString(PyExc_TypeError, "run_anchored: emitter must be an Emitter or None");
        return NULL;
    }
    process = args[1];
    vals = args[2];
    roots_list = args[3];
    on_error = args[4];
    pending = args[5];
    auto_ack = PyObject_IsTrue(args[6]);
    if (auto_ack < 0)
        return NULL;
    n = PyList_GET_SIZE(vals);
    if (PyList_GET_SIZE(roots_list) != n) {
        PyErr_SetString(PyExc_ValueError, "run_anchored: vals and roots differ in length");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        AckedTupleObject *t;
        PyObject *res;
        t = (AckedTupleObject *)acked_new_fast(PyList_GET_ITEM(vals, i), PyList_GET_ITEM(roots_list, i));
        if (t == NULL)
            goto error;
        if (em != NULL) {
            Py_INCREF(t);
            Py_XSETREF(em->current, (PyObject *)t);
        }
        res = PyObject_CallOneArg(process, (PyObject *)t);
        if (res == NULL) {
            int rc = hand_to_on_error(on_error, (PyObject *)t);
            Py_DECREF(t);
            if (rc < 0)
                goto error;
            continue;
        }
        Py_DECREF(res);
        if (auto_ack && !t->done) {
            t->done = 1;
            acks++;
            if (t->roots != Py_None && PyDict_Check(t->roots)) {
                Py_ssize_t pos = 0;
                PyObject *root, *edge;
                while (PyDict_Next(t->roots, &pos, &root, &edge)) {
                    unsigned long long e = PyLong_AsUnsignedLongLongMask(edge);
                    if (e == (unsigned long long)-1 && PyErr_Occurred()) {
                        Py_DECREF(t);
                        goto error;
                    }
                    if (xor_into(pending, root, e ^ t->ack_val) < 0) {
                        Py_DECREF(t);
                        goto error;
                    }
                }
            }
        }
        Py_DECREF(t);
    }
    if (em != NULL) {
        Py_INCREF(Py_None);
        Py_XSETREF(em->current, Py_None);
    }
    return PyLong_FromSsize_t(acks);
error:
    if (em != NULL) {
        Py_INCREF(Py_None);
        Py_XSETREF(em->current, Py_None);
    }
    return NULL;
}


/* ---------------------------------------------------------------- acker_apply */

/* acker_apply(buckets, msgs, out, now) -> size delta
 * Twin of AckerLedger.apply (runtime/acker.py), which is the specification.
 * buckets: the RotatingMap's list of dicts (newest first), root -> entry, where an
 * entry is a list [val, spout_task, failed, start]. msgs: (op, root, val, spout_task)
 * tuples with ops 0 init, 1 ack, 2 fail, 3 reset. Outcomes are appended to
 * out[spout_task] (a defaultdict(list)) as (op, root). Returns how many entries were
 * added minus removed, so the caller can keep the map's size. */
static PyObject *
acker_apply(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *buckets, *msgs, *out, *now, *newest;
    Py_ssize_t nb, i, n, delta = 0;
    if (nargs != 4 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "acker_apply(buckets, msgs, out, now)");
        return NULL;
    }
    buckets = args[0];
    msgs = args[1];
    out = args[2];
    now = args[3];
    nb = PyList_GET_SIZE(buckets);
    if (nb < 1) {
        PyErr_SetString(PyExc_ValueError, "acker_apply: no buckets");
        return NULL;
    }
    newest = PyList_GET_ITEM(buckets, 0);
    n = PyList_GET_SIZE(msgs);
    for (i = 0; i < n; i++) {
        PyObject *msg = PyList_GET_ITEM(msgs, i);
        PyObject *root, *e = NULL, *home = NULL, *st_obj, *outcome, *lst;
        long op, st;
        unsigned long long val, cur;
        Py_ssize_t b;
        PyObject **m; /* the message's 4 items: a tuple here, a list when decoded */
        if (PyTuple_Check(msg) && PyTuple_GET_SIZE(msg) == 4)
            m = ((PyTupleObject *)msg)->ob_item;
        else if (PyList_Check(msg) && PyList_GET_SIZE(msg) == 4)
            m = ((PyListObject *)msg)->ob_item;
        else {
            PyErr_SetString(PyExc_TypeError, "acker_apply: messages have 4 items");
            return NULL;
        }
        op = PyLong_AsLong(m[0]);
        if (op == -1 && PyErr_Occurred())
            return NULL;
        root = m[1];
        for (b = 0; b < nb; b++) {
            PyObject *bucket = PyList_GET_ITEM(buckets, b);
            e = PyDict_GetItemWithError(bucket, root);
            if (e != NULL) {
                home = bucket;
                break;
            }
            if (PyErr_Occurred())
                return NULL;
        }
        if (e == NULL) {
            e = Py_BuildValue("[iiOO]", 0, -1, Py_False, now);
            if (e == NULL)
                return NULL;
            if (PyDict_SetItem(newest, root, e) < 0) {
                Py_DECREF(e);
                return NULL;
            }
            Py_DECREF(e); /* the bucket holds it */
            home = newest;
            delta++;
        }
        if (!PyList_Check(e) || PyList_GET_SIZE(e) < 3) {
            PyErr_SetString(PyExc_TypeError, "acker_apply: entries are lists");
            return NULL;
        }
        if (op == 0 || op == 1) {
            PyObject *nv;
            val = PyLong_AsUnsignedLongLongMask(m[2]);
            if (val == (unsigned long long)-1 && PyErr_Occurred())
                return NULL;
            cur = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(e, 0));
            if (cur == (unsigned long long)-1 && PyErr_Occurred())
                return NULL;
            nv = PyLong_FromUnsignedLongLong(cur ^ val);
            if (nv == NULL || PyList_SetItem(e, 0, nv) < 0)
                return NULL;
            if (op == 0) {
                PyObject *t = m[3];
                Py_INCREF(t);
                if (PyList_SetItem(e, 1, t) < 0)
                    return NULL;
            }
        }
        else if (op == 2) {
            Py_INCREF(Py_True);
            if (PyList_SetItem(e, 2, Py_True) < 0)
                return NULL;
        }
        else if (home != newest) {
            /* reset: move the entry to the newest bucket */
            Py_INCREF(e);
            if (PyDict_DelItem(home, root) < 0 || PyDict_SetItem(newest, root, e) < 0) {
                Py_DECREF(e);
                return NULL;
            }
            Py_DECREF(e);
            home = newest;
        }
        st_obj = PyList_GET_ITEM(e, 1);
        st = PyLong_AsLong(st_obj);
        if (st == -1 && PyErr_Occurred())
            return NULL;
        if (st < 0)
            continue; /* the init has not arrived yet */
        {
            int is_zero = PyObject_Not(PyList_GET_ITEM(e, 0));
            int failed = PyObject_IsTrue(PyList_GET_ITEM(e, 2));
            long code;
            if (is_zero < 0 || failed < 0)
                return NULL;
            if (is_zero)
                code = 1;
            else if (failed)
                code = 2;
            else if (op == 3)
                code = 3;
            else
                continue;
            Py_INCREF(st_obj);
            if (code != 3) {
                if (PyDict_DelItem(home, root) < 0) {
                    Py_DECREF(st_obj);
                    return NULL;
                }
                delta--;
            }
            lst = PyObject_GetItem(out, st_obj);
            Py_DECREF(st_obj);
            if (lst == NULL)
                return NULL;
            outcome = Py_BuildValue("(lO)", code, root);
            if (outcome == NULL || PyList_Append(lst, outcome) < 0) {
                Py_XDECREF(outcome);
                Py_DECREF(lst);
                return NULL;
            }
            Py_DECREF(outcome);
            Py_DECREF(lst);
        }
    }
    return PyLong_FromSsize_t(delta);
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"make_values", (PyCFunction)(void (*)(void))make_values, METH_FASTCALL,
     "make_values(cls, seq): an instance of tuple subclass cls holding seq's items."},
    {"acker_apply", (PyCFunction)(void (*)(void))acker_apply, METH_FASTCALL,
     "acker_apply(buckets, msgs, out, now): AckerLedger.apply's loop; returns size delta."},
    {"make_values_many", (PyCFunction)(void (*)(void))make_values_many, METH_FASTCALL,
     "make_values_many(cls, seqs): [make_values(cls, s) for s in seqs]."},
    {"run_unanchored", (PyCFunction)(void (*)(void))run_unanchored, METH_FASTCALL,
     "run_unanchored(process, vals, on_error): the acking-off bolt loop."},
    {"run_anchored", (PyCFunction)(void (*)(void))run_anchored, METH_FASTCALL,
     "run_anchored(emitter, process, vals, roots, on_error, pending_acks, auto_ack)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_speedups", "Optional C accelerator for Squall's hot path.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    str_stream = PyUnicode_InternFromString("stream");
    str_choose = PyUnicode_InternFromString("choose");
    if (str_stream == NULL || str_choose == NULL)
        return NULL;
    if (PyType_Ready(&SelfDescriptorType) < 0 || PyType_Ready(&RouteBaseType) < 0 ||
        PyType_Ready(&EmitterType) < 0 || PyType_Ready(&AckedTupleType) < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SelfDescriptorType);
    PyModule_AddObject(m, "SelfDescriptor", (PyObject *)&SelfDescriptorType);
    Py_INCREF(&RouteBaseType);
    PyModule_AddObject(m, "RouteBase", (PyObject *)&RouteBaseType);
    Py_INCREF(&EmitterType);
    PyModule_AddObject(m, "Emitter", (PyObject *)&EmitterType);
    Py_INCREF(&AckedTupleType);
    PyModule_AddObject(m, "AckedTuple", (PyObject *)&AckedTupleType);
    return m;
}
