/* CPython binding of the native core (native/include/nmem.h): plain C API, no numpy headers.
 * Buffers in (anything with the buffer protocol), a bytearray out that the Python side wraps
 * as a numpy array without a copy (neural_memory/native.py). The GIL is released while
 * decoding. Errors raise _native.Error(status, message); native.py maps them to the package's
 * exception types. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "nmem.h"

#ifndef NMEM_SOURCE_HASH
#define NMEM_SOURCE_HASH "unknown"
#endif

static PyObject *NativeError;

static PyObject *raise_status(const nmem_error *err) {
    PyObject *args = Py_BuildValue("(is)", (int)err->status, err->message ? err->message : "");
    if (args) {
        PyErr_SetObject(NativeError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static int get_buffer(PyObject *obj, Py_buffer *view) {
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}

/* lossy_decode(payload, height, width, channels, out_width=0, out_height=0, max_pixels=0)
 * -> bytearray of out_height * out_width * channels bytes */
static PyObject *py_lossy_decode(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *kwlist[] = {"payload", "height", "width", "channels", "out_width", "out_height", "max_pixels", NULL};
    PyObject *payload_obj;
    unsigned long long height, width, channels, out_w = 0, out_h = 0, max_pixels = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKK|KKK", kwlist, &payload_obj, &height, &width, &channels,
                                     &out_w, &out_h, &max_pixels))
        return NULL;
    if (height > UINT32_MAX || width > UINT32_MAX || channels > 4 || out_w > UINT32_MAX || out_h > UINT32_MAX) {
        nmem_error e = {NMEM_ERR_ARGUMENT, "size out of range"};
        return raise_status(&e);
    }
    nmem_decode_options opt;
    nmem_decode_options_init(&opt);
    opt.max_pixels = max_pixels;
    opt.out_width = (uint32_t)out_w;
    opt.out_height = (uint32_t)out_h;
    uint64_t ow = out_w || out_h ? out_w : width, oh = out_w || out_h ? out_h : height;
    uint64_t limit = max_pixels ? max_pixels : NMEM_DEFAULT_MAX_PIXELS;
    if (ow * oh > NMEM_FORMAT_MAX_PIXELS || ow * oh > limit || width * height > NMEM_FORMAT_MAX_PIXELS) {
        /* let the library report which limit it is, without allocating the output first */
        ow = oh = 0;
    }
    Py_buffer view;
    if (get_buffer(payload_obj, &view) < 0) return NULL;
    size_t n = (size_t)(ow * oh * channels);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyByteArray_AS_STRING(out);
    uint8_t dummy = 0;
    nmem_error err = {NMEM_OK, "ok"};
    nmem_status st;
    Py_BEGIN_ALLOW_THREADS
    st = nmem_lossy_decode((const uint8_t *)view.buf, (size_t)view.len, (uint32_t)width, (uint32_t)height,
                           (uint32_t)channels, &opt, n ? dst : &dummy, n, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (st != NMEM_OK) {
        Py_DECREF(out);
        return raise_status(&err);
    }
    return out;
}

/* Progress of a lossless call: runs the Python callable (if any) with the GIL and checks for
 * signals (Ctrl-C), so a long call can be interrupted; a raised exception stops the call. */
typedef struct progress_ctx {
    PyObject *callable;
    int raised;
} progress_ctx;

static int progress_cb(void *user, uint32_t done, uint32_t total) {
    progress_ctx *ctx = user;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = 0;
    if (ctx->callable && ctx->callable != Py_None) {
        PyObject *r = PyObject_CallFunction(ctx->callable, "II", (unsigned)done, (unsigned)total);
        if (!r)
            stop = 1;
        else
            Py_DECREF(r);
    }
    if (!stop && PyErr_CheckSignals() < 0) stop = 1;
    if (stop) ctx->raised = 1;
    PyGILState_Release(g);
    return stop;
}

static int check_dims(unsigned long long height, unsigned long long width, unsigned long long channels,
                      unsigned long long depth, unsigned long long near) {
    if (height > UINT32_MAX || width > UINT32_MAX || channels > 4 || depth > 16 || near > UINT32_MAX) {
        nmem_error e = {NMEM_ERR_ARGUMENT, "size out of range"};
        raise_status(&e);
        return -1;
    }
    return 0;
}

/* lossless_encode(pixels, height, width, channels, bit_depth, near, progress=None) -> bytes;
 * pixels: height * width * channels samples (uint8 or host-order uint16) */
static PyObject *py_lossless_encode(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *kwlist[] = {"pixels", "height", "width", "channels", "bit_depth", "near", "progress", NULL};
    PyObject *pix_obj, *progress = Py_None;
    unsigned long long height, width, channels, depth, near;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKKKK|O", kwlist, &pix_obj, &height, &width, &channels, &depth,
                                     &near, &progress))
        return NULL;
    if (check_dims(height, width, channels, depth, near) < 0) return NULL;
    Py_buffer view;
    if (get_buffer(pix_obj, &view) < 0) return NULL;
    if ((unsigned long long)view.len != height * width * channels * (depth / 8)) {
        PyBuffer_Release(&view);
        nmem_error e = {NMEM_ERR_ARGUMENT, "pixel buffer size does not match the image"};
        return raise_status(&e);
    }
    progress_ctx ctx = {progress, 0};
    nmem_lossless_options opt = {0, progress_cb, &ctx, NULL};
    uint8_t *payload = NULL;
    size_t n = 0;
    nmem_error err = {NMEM_OK, "ok"};
    nmem_status st;
    Py_BEGIN_ALLOW_THREADS
    st = nmem_lossless_encode(view.buf, (uint32_t)width, (uint32_t)height, (uint32_t)channels, (uint32_t)depth,
                              (uint32_t)near, &opt, &payload, &n, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (st != NMEM_OK) {
        if (ctx.raised && PyErr_Occurred()) return NULL;
        return raise_status(&err);
    }
    PyObject *res = PyBytes_FromStringAndSize((const char *)payload, (Py_ssize_t)n);
    nmem_free(payload);
    return res;
}

/* lossless_decode(payload, height, width, channels, bit_depth, near, max_pixels=0,
 *                 progress=None) -> bytearray of height * width * channels samples */
static PyObject *py_lossless_decode(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *kwlist[] = {"payload", "height", "width", "channels", "bit_depth", "near", "max_pixels", "progress", NULL};
    PyObject *payload_obj, *progress = Py_None;
    unsigned long long height, width, channels, depth, near, max_pixels = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKKKK|KO", kwlist, &payload_obj, &height, &width, &channels,
                                     &depth, &near, &max_pixels, &progress))
        return NULL;
    if (check_dims(height, width, channels, depth, near) < 0) return NULL;
    uint64_t limit = max_pixels ? max_pixels : NMEM_DEFAULT_MAX_PIXELS;
    size_t n = 0;
    if (height * width <= NMEM_FORMAT_MAX_PIXELS && height * width <= limit && (depth == 8 || depth == 16))
        n = (size_t)(height * width * channels * (depth / 8));
    /* else: the library reports which check fails, before anything is allocated */
    Py_buffer view;
    if (get_buffer(payload_obj, &view) < 0) return NULL;
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint8_t dummy[2] = {0, 0};
    uint8_t *dst = n ? (uint8_t *)PyByteArray_AS_STRING(out) : dummy;
    progress_ctx ctx = {progress, 0};
    nmem_lossless_options opt = {max_pixels, progress_cb, &ctx, NULL};
    nmem_error err = {NMEM_OK, "ok"};
    nmem_status st;
    Py_BEGIN_ALLOW_THREADS
    st = nmem_lossless_decode((const uint8_t *)view.buf, (size_t)view.len, (uint32_t)width, (uint32_t)height,
                              (uint32_t)channels, (uint32_t)depth, (uint32_t)near, &opt, dst, n, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (st != NMEM_OK) {
        Py_DECREF(out);
        if (ctx.raised && PyErr_Occurred()) return NULL;
        return raise_status(&err);
    }
    return out;
}

/* parse(data) -> (version, mode, width, height, channels, bit_depth, param,
 *                 ((tag, offset, size), ...)) */
static PyObject *py_parse(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (get_buffer(arg, &view) < 0) return NULL;
    nmem_info *info = PyMem_Malloc(sizeof *info);
    if (!info) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    nmem_error err = {NMEM_OK, "ok"};
    nmem_status st = nmem_parse((const uint8_t *)view.buf, (size_t)view.len, info, &err);
    PyBuffer_Release(&view);
    if (st != NMEM_OK) {
        PyMem_Free(info);
        return raise_status(&err);
    }
    PyObject *sections = PyTuple_New(info->n_sections);
    if (!sections) {
        PyMem_Free(info);
        return NULL;
    }
    for (uint32_t i = 0; i < info->n_sections; i++) {
        const nmem_section *s = &info->sections[i];
        PyObject *item = Py_BuildValue("(snn)", s->tag, (Py_ssize_t)s->offset, (Py_ssize_t)s->size);
        if (!item) {
            Py_DECREF(sections);
            PyMem_Free(info);
            return NULL;
        }
        PyTuple_SET_ITEM(sections, i, item);
    }
    PyObject *res = Py_BuildValue("(IIIIIIKN)", info->version, info->mode, info->width, info->height, info->channels,
                                  info->bit_depth, (unsigned long long)info->param, sections);
    PyMem_Free(info);
    return res;
}

static PyMethodDef methods[] = {
    {"lossy_decode", (PyCFunction)(void (*)(void))py_lossy_decode, METH_VARARGS | METH_KEYWORDS,
     "lossy_decode(payload, height, width, channels, out_width=0, out_height=0, max_pixels=0)\n"
     "Decode a lossy engine payload; returns a bytearray of (H, W, C) uint8 pixels."},
    {"lossless_encode", (PyCFunction)(void (*)(void))py_lossless_encode, METH_VARARGS | METH_KEYWORDS,
     "lossless_encode(pixels, height, width, channels, bit_depth, near, progress=None) -> bytes\n"
     "Encode (H, W, C) samples (uint8 or host-order uint16) with the lossless engine."},
    {"lossless_decode", (PyCFunction)(void (*)(void))py_lossless_decode, METH_VARARGS | METH_KEYWORDS,
     "lossless_decode(payload, height, width, channels, bit_depth, near, max_pixels=0, progress=None)\n"
     "Decode a lossless engine payload; returns a bytearray of the samples."},
    {"parse", py_parse, METH_O,
     "parse(data) -> (version, mode, width, height, channels, bit_depth, param, sections)\n"
     "Parse and check a .nmem container; sections are (tag, offset, size)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "The neural-memory C core (native/include/nmem.h).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    NativeError = PyErr_NewException("neural_memory._native.Error", NULL, NULL);
    if (!NativeError || PyModule_AddObject(m, "Error", NativeError) < 0) {
        Py_XDECREF(NativeError);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(NativeError);
    if (PyModule_AddStringConstant(m, "VERSION", nmem_version()) < 0 ||
        PyModule_AddStringConstant(m, "SOURCE_HASH", NMEM_SOURCE_HASH) < 0 ||
        PyModule_AddObject(m, "DEFAULT_MAX_PIXELS", PyLong_FromUnsignedLongLong(NMEM_DEFAULT_MAX_PIXELS)) < 0 ||
        PyModule_AddIntConstant(m, "OK", NMEM_OK) < 0 || PyModule_AddIntConstant(m, "ERR_ARGUMENT", NMEM_ERR_ARGUMENT) < 0 ||
        PyModule_AddIntConstant(m, "ERR_FORMAT", NMEM_ERR_FORMAT) < 0 ||
        PyModule_AddIntConstant(m, "ERR_LIMIT", NMEM_ERR_LIMIT) < 0 ||
        PyModule_AddIntConstant(m, "ERR_MEMORY", NMEM_ERR_MEMORY) < 0 ||
        PyModule_AddIntConstant(m, "ERR_UNSUPPORTED", NMEM_ERR_UNSUPPORTED) < 0 ||
        PyModule_AddIntConstant(m, "ERR_CANCELLED", NMEM_ERR_CANCELLED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
