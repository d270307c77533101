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
 *                   `emit(values)` / `emit(values, stream=...)` with acking off and
 *                   one single-target subscriber; everything else calls `fallback`.
 *   run_unanchored  the bolt loop `for v in vals: process(v)` with per-tuple error
 *                   handling delegated to a Python callback.
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
} RouteBase;

static int
route_traverse(RouteBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    Py_VISIT(self->one);
    Py_VISIT(self->fcache);
    Py_VISIT(self->staging);
    return 0;
}

static int
route_clear(RouteBase *self)
{
    Py_CLEAR(self->cls);
    Py_CLEAR(self->one);
    Py_CLEAR(self->fcache);
    Py_CLEAR(self->staging);
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

/* Stage v for one task; returns the task (new ref) or NULL on error. */
static PyObject *
route_fast(RouteBase *r, PyObject *v)
{
    PyObject *task = NULL;
    PyObject *lst;
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
    lst = PyDict_GetItemWithError(r->staging, task); /* borrowed */
    if (lst == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(task);
            return NULL;
        }
        lst = PyList_New(0);
        if (lst == NULL || PyDict_SetItem(r->staging, task, lst) < 0) {
            Py_XDECREF(lst);
            Py_DECREF(task);
            return NULL;
        }
        Py_DECREF(lst); /* the dict holds it */
    }
    if (PyList_Append(lst, v) < 0) {
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
    v = new_values((PyTypeObject *)r->cls, args[0]);
    if (v == NULL)
        return NULL;
    task = route_fast(r, v);
    Py_DECREF(v);
    if (task == NULL)
        return NULL;
    Py_DECREF(task);
    Py_RETURN_NONE;

slow:
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static int
emitter_init(Emitter *self, PyObject *args, PyObject *kwds)
{
    PyObject *routes, *fallback;
    if (!PyArg_ParseTuple(args, "O!O:Emitter", &PyDict_Type, &routes, &fallback))
        return -1;
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
    return 0;
}

static int
emitter_clear(Emitter *self)
{
    Py_CLEAR(self->routes);
    Py_CLEAR(self->fallback);
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
            PyObject *etype, *exc, *tb;
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                Py_DECREF(v);
                return NULL; /* KeyboardInterrupt, SystemExit... propagate */
            }
            PyErr_Fetch(&etype, &exc, &tb);
            PyErr_NormalizeException(&etype, &exc, &tb);
            if (tb != NULL && exc != NULL)
                PyException_SetTraceback(exc, tb);
            Py_XDECREF(etype);
            Py_XDECREF(tb);
            if (exc == NULL) {
                Py_DECREF(v);
                return NULL;
            }
            res = PyObject_CallFunctionObjArgs(on_error, v, exc, NULL);
            Py_DECREF(exc);
            if (res == NULL) {
                Py_DECREF(v);
                return NULL;
            }
        }
        Py_DECREF(res);
        Py_DECREF(v);
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"make_values", (PyCFunction)(void (*)(void))make_values, METH_FASTCALL,
     "make_values(cls, seq): an instance of tuple subclass cls holding seq's items."},
    {"run_unanchored", (PyCFunction)(void (*)(void))run_unanchored, METH_FASTCALL,
     "run_unanchored(process, vals, on_error): the acking-off bolt loop."},
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
        PyType_Ready(&EmitterType) < 0)
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
    return m;
}
