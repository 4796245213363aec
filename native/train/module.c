/* Python binding of the training kernels: neural_memory.lossy.encoding._train_native.
 *
 * Arrays come in through the buffer protocol (no NumPy headers needed to build): C-contiguous
 * float32 ('f') or int64 ('l'/'q', 8 bytes) buffers, checked for size. Each call computes one
 * part (a range of pixel blocks or ARM tasks) with the GIL released, so a Python thread pool
 * runs parts in parallel; the caller adds the parts' results in part order. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "nm_train.h"

typedef struct {
    Py_buffer views[24];
    int n;
} bufset;

static void release_all(bufset *b) {
    for (int i = 0; i < b->n; i++) PyBuffer_Release(&b->views[i]);
    b->n = 0;
}

/* kind 'f': float32, 'i': int64. Returns the data pointer or NULL with an exception set. */
static void *get(bufset *b, PyObject *obj, char kind, Py_ssize_t min_items, int writable,
                 const char *name) {
    Py_buffer *v = &b->views[b->n];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) return NULL;
    b->n++;
    const char *fmt = v->format ? v->format : "B";
    if (*fmt == '<' || *fmt == '=' || *fmt == '@') fmt++;
    int ok = kind == 'f' ? (fmt[0] == 'f' && fmt[1] == 0 && v->itemsize == 4)
                         : ((fmt[0] == 'l' || fmt[0] == 'q') && fmt[1] == 0 && v->itemsize == 8);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous %s array", name,
                     kind == 'f' ? "float32" : "int64");
        return NULL;
    }
    if (v->len / v->itemsize < min_items) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items, expected at least %zd", name,
                     v->len / v->itemsize, min_items);
        return NULL;
    }
    return v->buf;
}

#define GET(var, type, obj, kind, count, writable)                         \
    var = (type)get(&bs, obj, kind, (Py_ssize_t)(count), writable, #var); \
    if (!var) goto fail;

static PyObject *synth_part(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_feat, *o_target, *o_w1, *o_b1, *o_w2, *o_b2, *o_grad, *o_out;
    int g_n, c_n, h_n, cap;
    long long n, blk0, blk1;
    float scale;
    if (!PyArg_ParseTuple(args, "OOOOOOOOiiiLLLfi", &o_feat, &o_target, &o_w1, &o_b1, &o_w2,
                          &o_b2, &o_grad, &o_out, &g_n, &c_n, &h_n, &n, &blk0, &blk1, &scale,
                          &cap))
        return NULL;
    if (g_n < 1 || g_n > 256 || c_n < 1 || c_n > 4 || h_n < 1 || h_n > 1024 || n < 0 || blk0 < 0 ||
        blk1 < blk0 || blk1 * (long long)NM_SYN_BLOCK - n >= NM_SYN_BLOCK) {
        PyErr_SetString(PyExc_ValueError, "synth_part: bad sizes");
        return NULL;
    }
    bufset bs = {.n = 0};
    nm_synth_args a = {.n = n, .g_n = g_n, .c_n = c_n, .h_n = h_n, .scale = scale};
    float *out;
    GET(a.feat, const float *, o_feat, 'f', (long long)g_n * n, 0)
    GET(a.target, const float *, o_target, 'f', (long long)c_n * n, 0)
    GET(a.w1, const float *, o_w1, 'f', h_n * g_n, 0)
    GET(a.b1, const float *, o_b1, 'f', h_n, 0)
    GET(a.w2, const float *, o_w2, 'f', c_n * h_n, 0)
    GET(a.b2, const float *, o_b2, 'f', c_n, 0)
    GET(out, float *, o_out, 'f', h_n * g_n + h_n + c_n * h_n + c_n, 1)
    a.grad_feat = NULL;
    if (o_grad != Py_None) {
        GET(a.grad_feat, float *, o_grad, 'f', (long long)g_n * n, 1)
    }
    double sse = 0.0;
    int rc;
    const nm_ops *ops = nm_ops_select(cap);
    Py_BEGIN_ALLOW_THREADS
    rc = nm_synth_part(&a, blk0, blk1, out, &sse, ops);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    if (rc) return PyErr_NoMemory();
    return PyFloat_FromDouble(sse);
fail:
    release_all(&bs);
    return NULL;
}

static PyObject *arm_part(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o[18];
    int a_n, cap;
    long long t0, t1;
    float lo, hi, scale;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOOOOiLLfffi", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12], &o[13],
                          &o[14], &o[15], &o[16], &o[17], &a_n, &t0, &t1, &lo, &hi, &scale,
                          &cap))
        return NULL;
    /* flat, offs, shapes, parents, strides, phases, weights, tasks, ctx_off, par_off,
       w0, b0, w1, b1, w2, b2, g_flat (or None), out */
    bufset bs = {.n = 0};
    nm_arm_args a = {.a_n = a_n, .logb_lo = lo, .logb_hi = hi, .scale = scale};
    Py_buffer probe;
    if (PyObject_GetBuffer(o[0], &probe, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const Py_ssize_t n_flat = probe.len / 4;
    PyBuffer_Release(&probe);
    if (PyObject_GetBuffer(o[1], &probe, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const Py_ssize_t n_grids = probe.len / 8;
    PyBuffer_Release(&probe);
    if (PyObject_GetBuffer(o[8], &probe, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const int n_sp = (int)(probe.len / 16);
    PyBuffer_Release(&probe);
    if (PyObject_GetBuffer(o[9], &probe, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const int n_par = (int)(probe.len / 16);
    PyBuffer_Release(&probe);
    const int n_ctx = n_sp + n_par;
    if (a_n < 1 || a_n > 256 || n_ctx < 1 || n_ctx > 256 || t0 < 0 || t1 < t0 || n_flat >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "arm_part: bad sizes");
        return NULL;
    }
    a.n_sp = n_sp, a.n_par = n_par, a.n_flat = n_flat;
    float *out;
    GET(a.flat, const float *, o[0], 'f', n_flat, 0)
    GET(a.offs, const int64_t *, o[1], 'i', n_grids, 0)
    GET(a.shapes, const int64_t *, o[2], 'i', 2 * n_grids, 0)
    GET(a.parents, const int64_t *, o[3], 'i', n_grids, 0)
    GET(a.strides, const int64_t *, o[4], 'i', n_grids, 0)
    GET(a.phases, const int64_t *, o[5], 'i', 2 * n_grids, 0)
    GET(a.weights, const float *, o[6], 'f', n_grids, 0)
    GET(a.tasks, const int64_t *, o[7], 'i', 2 * t1, 0)
    GET(a.ctx_off, const int64_t *, o[8], 'i', 2 * n_sp, 0)
    GET(a.par_off, const int64_t *, o[9], 'i', 2 * n_par, 0)
    GET(a.w0, const float *, o[10], 'f', a_n * n_ctx, 0)
    GET(a.b0, const float *, o[11], 'f', a_n, 0)
    GET(a.w1, const float *, o[12], 'f', a_n * a_n, 0)
    GET(a.b1, const float *, o[13], 'f', a_n, 0)
    GET(a.w2, const float *, o[14], 'f', 2 * a_n, 0)
    GET(a.b2, const float *, o[15], 'f', 2, 0)
    a.g_flat = NULL;
    if (o[16] != Py_None) {
        GET(a.g_flat, float *, o[16], 'f', n_flat, 1)
    }
    GET(out, float *, o[17], 'f', n_ctx * a_n + a_n + a_n * a_n + a_n + 2 * a_n + 2, 1)
    /* indices read from the task and grid tables must stay inside flat */
    for (Py_ssize_t g = 0; g < n_grids; g++) {
        const int64_t h = a.shapes[2 * g], w = a.shapes[2 * g + 1], p = a.parents[g];
        if (h < 1 || w < 1 || a.offs[g] < 0 || a.offs[g] + h * w > n_flat || a.strides[g] < 1 ||
            a.phases[2 * g + 1] < 0 || a.phases[2 * g + 1] >= w || p >= n_grids) {
            PyErr_SetString(PyExc_ValueError, "arm_part: bad grid table");
            goto fail;
        }
    }
    for (long long t = t0; t < t1; t++) {
        const int64_t g = a.tasks[2 * t], y = a.tasks[2 * t + 1];
        if (g < 0 || g >= n_grids || y < 0 || y >= a.shapes[2 * g]) {
            PyErr_SetString(PyExc_ValueError, "arm_part: bad task");
            goto fail;
        }
    }
    double bits = 0.0;
    int rc;
    const nm_ops *ops = nm_ops_select(cap);
    Py_BEGIN_ALLOW_THREADS
    rc = nm_arm_part(&a, t0, t1, out, &bits, ops);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    if (rc) return PyErr_NoMemory();
    return PyFloat_FromDouble(bits);
fail:
    release_all(&bs);
    return NULL;
}

/* out = rows[0] + rows[1] + ... of a (parts, n) float32 array, added in row order, one pass. */
static PyObject *sum_rows(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_rows, *o_out;
    int parts;
    if (!PyArg_ParseTuple(args, "OOi", &o_rows, &o_out, &parts)) return NULL;
    bufset bs = {.n = 0};
    Py_buffer probe;
    if (parts < 1 || PyObject_GetBuffer(o_out, &probe, PyBUF_C_CONTIGUOUS) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "sum_rows: parts < 1");
        return NULL;
    }
    const Py_ssize_t n = probe.len / 4;
    PyBuffer_Release(&probe);
    const float *rows;
    float *out;
    GET(rows, const float *, o_rows, 'f', parts * n, 0)
    GET(out, float *, o_out, 'f', n, 1)
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i0 = 0; i0 < n; i0 += 4096) { /* in cache-sized pieces */
        const Py_ssize_t i1 = n - i0 < 4096 ? n : i0 + 4096;
        memcpy(out + i0, rows + i0, (size_t)(i1 - i0) * sizeof(float));
        for (int p = 1; p < parts; p++) {
            const float *r = rows + (size_t)p * n;
            for (Py_ssize_t i = i0; i < i1; i++) out[i] += r[i];
        }
    }
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
fail:
    release_all(&bs);
    return NULL;
}

static Py_ssize_t n_items(PyObject *obj, Py_ssize_t item) {
    Py_buffer probe;
    if (PyObject_GetBuffer(obj, &probe, PyBUF_C_CONTIGUOUS) < 0) return -1;
    const Py_ssize_t n = probe.len / item;
    PyBuffer_Release(&probe);
    return n;
}

/* proxy(y, noise, p, d, t, cap): the rounding proxy and its derivative of n float32 values */
static PyObject *proxy(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_y, *o_noise, *o_p, *o_d;
    float t;
    int cap;
    if (!PyArg_ParseTuple(args, "OOOOfi", &o_y, &o_noise, &o_p, &o_d, &t, &cap)) return NULL;
    const Py_ssize_t n = n_items(o_y, 4);
    if (n < 0) return NULL;
    if (!(t > 0.0f)) {
        PyErr_SetString(PyExc_ValueError, "proxy: t must be > 0");
        return NULL;
    }
    bufset bs = {.n = 0};
    const float *y, *noise;
    float *p, *d;
    GET(y, const float *, o_y, 'f', n, 0)
    GET(noise, const float *, o_noise, 'f', n, 0)
    GET(p, float *, o_p, 'f', n, 1)
    GET(d, float *, o_d, 'f', n, 1)
    const nm_ops *ops = nm_ops_select(cap);
    Py_BEGIN_ALLOW_THREADS
    ops->proxy(y, noise, (int64_t)n, t, p, d);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
fail:
    release_all(&bs);
    return NULL;
}

/* gauss(out, i0, sigma, key, cap): out[i] = sigma * z(key, i0 + i), standard normal samples
 * (nm_ops.gauss) */
static PyObject *gauss(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_out;
    long long i0;
    float sigma;
    unsigned long long key;
    int cap;
    if (!PyArg_ParseTuple(args, "OLfKi", &o_out, &i0, &sigma, &key, &cap)) return NULL;
    const Py_ssize_t n = n_items(o_out, 4);
    if (n < 0) return NULL;
    bufset bs = {.n = 0};
    float *out;
    GET(out, float *, o_out, 'f', n, 1)
    const nm_ops *ops = nm_ops_select(cap);
    Py_BEGIN_ALLOW_THREADS
    ops->gauss(out, (int64_t)i0, (int64_t)n, sigma, (uint64_t)key);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
fail:
    release_all(&bs);
    return NULL;
}

/* adam(p, m, v, g1, d1|None, g2|None, d2|None, step, b1, a1, b2, a2, c2, eps, cap): one Adam update
 * of n float32 values in place (nm_ops.adam) */
static PyObject *adam(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_p, *o_m, *o_v, *o_g1, *o_d1, *o_g2, *o_d2;
    float step, b1, a1, b2, a2, c2, eps;
    int cap;
    if (!PyArg_ParseTuple(args, "OOOOOOOfffffffi", &o_p, &o_m, &o_v, &o_g1, &o_d1, &o_g2, &o_d2,
                          &step, &b1, &a1, &b2, &a2, &c2, &eps, &cap))
        return NULL;
    const Py_ssize_t n = n_items(o_p, 4);
    if (n < 0) return NULL;
    if ((o_g2 == Py_None) != (o_d2 == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "adam: g2 and d2 go together");
        return NULL;
    }
    bufset bs = {.n = 0};
    float *p, *m, *v;
    const float *g1, *d1 = NULL, *g2 = NULL, *d2 = NULL;
    GET(p, float *, o_p, 'f', n, 1)
    GET(m, float *, o_m, 'f', n, 1)
    GET(v, float *, o_v, 'f', n, 1)
    GET(g1, const float *, o_g1, 'f', n, 0)
    if (o_d1 != Py_None) { GET(d1, const float *, o_d1, 'f', n, 0) }
    if (o_g2 != Py_None) {
        GET(g2, const float *, o_g2, 'f', n, 0)
        GET(d2, const float *, o_d2, 'f', n, 0)
    }
    const nm_ops *ops = nm_ops_select(cap);
    Py_BEGIN_ALLOW_THREADS
    ops->adam(p, m, v, g1, d1, g2, d2, (int64_t)n, step, b1, a1, b2, a2, c2, eps);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
fail:
    release_all(&bs);
    return NULL;
}

/* up_coarse / up_coarse_adjoint: one grid of level >= 1 (see nm_train.h). */
static PyObject *up_coarse_call(PyObject *args, int adjoint) {
    PyObject *o_in, *o_out, *o_taps;
    int level, cap;
    long long height, width;
    if (!PyArg_ParseTuple(args, "OiLLOOi", &o_in, &level, &height, &width, &o_taps, &o_out,
                          &cap))
        return NULL;
    if (level < 1 || level > 30 || height < 1 || width < 1 || height > (1LL << 30) ||
        width > (1LL << 30)) {
        PyErr_SetString(PyExc_ValueError, "up_coarse: bad sizes");
        return NULL;
    }
    const long long hl = (height + (1LL << level) - 1) >> level;
    const long long wl = (width + (1LL << level) - 1) >> level;
    const long long coarse = ((height + 1) >> 1) * width;
    bufset bs = {.n = 0};
    const float *in, *taps;
    float *out;
    GET(taps, const float *, o_taps, 'f', 4 * level, 0)
    GET(in, const float *, o_in, 'f', adjoint ? coarse : hl * wl, 0)
    GET(out, float *, o_out, 'f', adjoint ? hl * wl : coarse, 1)
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = adjoint ? nm_up_coarse_adjoint(in, level, height, width, taps, out, cap)
                 : nm_up_coarse(in, level, height, width, taps, out, cap);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release_all(&bs);
    return NULL;
}

static PyObject *up_coarse(PyObject *self, PyObject *args) {
    (void)self;
    return up_coarse_call(args, 0);
}

static PyObject *up_coarse_adjoint(PyObject *self, PyObject *args) {
    (void)self;
    return up_coarse_call(args, 1);
}

/* up_rows / up_rows_adjoint: channels [c0, c1) of a (C, h, w) stack at output rows `rows`. */
static PyObject *up_rows_call(PyObject *args, int adjoint) {
    PyObject *o_in, *o_rows, *o_out, *o_taps;
    long long h, w, c0, c1;
    int cap;
    if (!PyArg_ParseTuple(args, "OLLOOLLOi", &o_in, &h, &w, &o_rows, &o_out, &c0, &c1, &o_taps,
                          &cap))
        return NULL;
    const Py_ssize_t r_n = n_items(o_rows, 8);
    if (r_n < 0) return NULL;
    if (h < 1 || w < 1 || c0 < 0 || c1 < c0 || h > (1LL << 30) || w > (1LL << 30)) {
        PyErr_SetString(PyExc_ValueError, "up_rows: bad sizes");
        return NULL;
    }
    bufset bs = {.n = 0};
    const float *in, *taps;
    const int64_t *rows;
    float *out;
    GET(taps, const float *, o_taps, 'f', 4, 0)
    GET(rows, const int64_t *, o_rows, 'i', r_n, 0)
    GET(in, const float *, o_in, 'f', c1 * (adjoint ? r_n : h) * w, 0)
    GET(out, float *, o_out, 'f', c1 * (adjoint ? h : r_n) * w, 1)
    for (Py_ssize_t i = 0; i < r_n; i++)
        if (rows[i] < 0 || rows[i] >= 2 * h) {
            PyErr_SetString(PyExc_ValueError, "up_rows: row out of range");
            goto fail;
        }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = adjoint ? nm_up_rows_adjoint(in, h, w, rows, r_n, c0, c1, taps, out, cap)
                 : nm_up_rows(in, h, w, rows, r_n, c0, c1, taps, out, cap);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release_all(&bs);
    return NULL;
}

static PyObject *up_rows(PyObject *self, PyObject *args) {
    (void)self;
    return up_rows_call(args, 0);
}

static PyObject *up_rows_adjoint(PyObject *self, PyObject *args) {
    (void)self;
    return up_rows_call(args, 1);
}

/* synth_part with the features built from the upsampler (see nm_synth_args). */
static PyObject *synth_up_part(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_coarse, *o_lvl0, *o_rows, *o_target, *o_w1, *o_b1, *o_w2, *o_b2, *o_gcoarse,
        *o_edge, *o_slot, *o_glvl0, *o_out, *o_taps;
    long long n_old, n_new, h1, height, width, blk0, blk1, band_lo;
    int c_n, h_n, want, cap;
    float scale;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOLLLLLiiLLLfpOi", &o_coarse, &o_lvl0, &o_rows,
                          &o_target, &o_w1, &o_b1, &o_w2, &o_b2, &o_gcoarse, &o_edge, &o_slot,
                          &o_glvl0, &o_out, &n_old, &n_new, &h1, &height, &width, &c_n, &h_n,
                          &blk0, &blk1, &band_lo, &scale, &want, &o_taps, &cap))
        return NULL;
    const Py_ssize_t r_n = n_items(o_rows, 8);
    if (r_n < 0) return NULL;
    long long band_n = 0, n_edge = 0;
    if (want && n_old) {
        if ((band_n = n_items(o_slot, 8)) < 0) return NULL;
        if (o_edge != Py_None && (n_edge = n_items(o_edge, 4)) < 0) return NULL;
        n_edge /= n_old * width;
    }
    const long long g_n = n_old + n_new, n = (long long)r_n * width;
    if (n_old < 0 || n_new < 0 || g_n < 1 || g_n > 256 || c_n < 1 || c_n > 4 || h_n < 1 ||
        h_n > 1024 || height < 1 || width < 1 || height > (1LL << 30) || width > (1LL << 30) ||
        h1 != (height + 1) / 2 || blk0 < 0 || blk1 < blk0 ||
        blk1 * (long long)NM_SYN_BLOCK - n >= NM_SYN_BLOCK || band_lo < 0 || band_n < 0 ||
        band_lo + band_n > h1) {
        PyErr_SetString(PyExc_ValueError, "synth_up_part: bad sizes");
        return NULL;
    }
    bufset bs = {.n = 0};
    nm_synth_args a = {.n = n, .g_n = (int)g_n, .c_n = c_n, .h_n = h_n, .scale = scale,
                       .n_old = n_old, .n_new = n_new, .h1 = h1, .height = height,
                       .width = width, .band_lo = band_lo, .band_n = band_n, .n_edge = n_edge,
                       .want_grad = want};
    float *out;
    GET(a.up_taps, const float *, o_taps, 'f', 4, 0)
    GET(a.rows, const int64_t *, o_rows, 'i', r_n, 0)
    for (Py_ssize_t i = 0; i < r_n; i++)
        if (a.rows[i] < 0 || a.rows[i] >= height) {
            PyErr_SetString(PyExc_ValueError, "synth_up_part: row out of range");
            goto fail;
        }
    a.coarse = NULL, a.lvl0 = NULL, a.g_coarse = NULL, a.edge = NULL, a.slot = NULL;
    a.g_lvl0 = NULL;
    if (n_old) {
        GET(a.coarse, const float *, o_coarse, 'f', n_old * h1 * width, 0)
    }
    if (n_new) {
        GET(a.lvl0, const float *, o_lvl0, 'f', n_new * height * width, 0)
    }
    GET(a.target, const float *, o_target, 'f', (long long)c_n * n, 0)
    GET(a.w1, const float *, o_w1, 'f', h_n * g_n, 0)
    GET(a.b1, const float *, o_b1, 'f', h_n, 0)
    GET(a.w2, const float *, o_w2, 'f', c_n * h_n, 0)
    GET(a.b2, const float *, o_b2, 'f', c_n, 0)
    GET(out, float *, o_out, 'f', h_n * g_n + h_n + c_n * h_n + c_n, 1)
    if (want && n_old) {
        GET(a.g_coarse, float *, o_gcoarse, 'f', n_old * h1 * width, 1)
        GET(a.slot, const int64_t *, o_slot, 'i', band_n, 0)
        if (n_edge) {
            GET(a.edge, float *, o_edge, 'f', n_old * n_edge * width, 1)
        }
        for (long long k = 0; k < band_n; k++)
            if (a.slot[k] < -1 || a.slot[k] >= n_edge) {
                PyErr_SetString(PyExc_ValueError, "synth_up_part: bad slot");
                goto fail;
            }
    }
    if (want && n_new) {
        GET(a.g_lvl0, float *, o_glvl0, 'f', n_new * height * width, 1)
    }
    a.up = nm_up_select(cap);
    double sse = 0.0;
    int rc;
    const nm_ops *ops = nm_ops_select(cap);
    Py_BEGIN_ALLOW_THREADS
    rc = nm_synth_part(&a, blk0, blk1, out, &sse, ops);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "synth_up_part: a source row is outside the band");
        return NULL;
    }
    if (rc) return PyErr_NoMemory();
    return PyFloat_FromDouble(sse);
fail:
    release_all(&bs);
    return NULL;
}

static PyObject *simd(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    const int isa = nm_isa();
    return PyUnicode_FromString(isa == NM_ISA_AVX512 ? "avx512" : isa == NM_ISA_AVX2 ? "avx2" : "generic");
}

static PyMethodDef methods[] = {
    {"synth_part", synth_part, METH_VARARGS,
     "synth_part(feat, target, w1, b1, w2, b2, grad_feat|None, out, g_n, c_n, h_n, n, blk0, "
     "blk1, scale, cap) -> sse of pixel blocks [blk0, blk1); gradients into out"},
    {"arm_part", arm_part, METH_VARARGS,
     "arm_part(flat, offs, shapes, parents, strides, phases, weights, tasks, ctx_off, par_off, "
     "w0, b0, w1, b1, w2, b2, g_flat|None, out, a_n, t0, t1, logb_lo, logb_hi, scale, cap) "
     "-> bits of tasks [t0, t1)"},
    {"sum_rows", sum_rows, METH_VARARGS,
     "sum_rows(rows, out, parts): out = rows[0] + ... + rows[parts - 1], in that order"},
    {"up_coarse", up_coarse, METH_VARARGS,
     "up_coarse(grid, level, height, width, taps, out, cap): out (ceil(height / 2), width) = "
     "the grid of that level (times 2^-level) upsampled to level 1, then along its columns; "
     "taps: float32 (stages, 4), stage s's even-phase taps (level s + 1 -> s), at least "
     "`level` stages"},
    {"up_coarse_adjoint", up_coarse_adjoint, METH_VARARGS,
     "up_coarse_adjoint(g, level, height, width, taps, grad, cap): grad += the adjoint of "
     "up_coarse "
     "applied to g"},
    {"up_rows", up_rows, METH_VARARGS,
     "up_rows(src, h, w, rows, out, c0, c1, taps, cap): out[c] = 2x rows of src[c] (h, w) at "
     "the output rows `rows`, for channels c0 <= c < c1, with the 4 even-phase taps `taps`"},
    {"up_rows_adjoint", up_rows_adjoint, METH_VARARGS,
     "up_rows_adjoint(g, h, w, rows, out, c0, c1, taps, cap): out[c] (h, w) += the adjoint of "
     "up_rows applied to g[c], for channels c0 <= c < c1"},
    {"synth_up_part", synth_up_part, METH_VARARGS,
     "synth_up_part(coarse|None, lvl0|None, rows, target, w1, b1, w2, b2, g_coarse|None, "
     "edge|None, slot|None, g_lvl0|None, out, n_old, n_new, h1, height, width, c_n, h_n, blk0, "
     "blk1, band_lo, scale, want_grad, taps, cap) -> sse of pixel blocks [blk0, blk1) of the features "
     "the upsampler gives at `rows`; weight gradients into out, feature gradients added into "
     "g_coarse (rows with slot -1), edge (the others) and g_lvl0"},
    {"proxy", proxy, METH_VARARGS,
     "proxy(y, noise, p, d, t, cap): p = sr(sr(y) + noise), d = dp/dy with the soft rounding sr "
     "at temperature t > 0 (train.proxy_and_derivative), float32 arrays of one size"},
    {"gauss", gauss, METH_VARARGS,
     "gauss(out, i0, sigma, key, cap): out[i] = sigma * z(key, i0 + i), standard normal samples "
     "that depend only on the 64-bit key and the index (float32 array)"},
    {"adam", adam, METH_VARARGS,
     "adam(p, m, v, g1, d1|None, g2|None, d2|None, step, b1, a1, b2, a2, c2, eps, cap): in place, "
     "with g = g1 * d1 (+ g2 * d2): m = b1 m + a1 g, v = b2 v + a2 g^2 (a = 1 - b), "
     "p -= step m / (sqrt(v / c2) + eps); float32 arrays of one size"},
    {"simd", simd, METH_NOARGS, "the instruction set the kernels use on this CPU"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_train_native",
                                    "C training kernels of the lossy encoder", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__train_native(void) {
    nm_train_init();
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "SYN_BLOCK", NM_SYN_BLOCK) < 0 ||
              PyModule_AddIntConstant(m, "ARM_CHUNK", NM_ARM_CHUNK) < 0 ||
              PyModule_AddIntConstant(m, "ISA_GENERIC", NM_ISA_GENERIC) < 0 ||
              PyModule_AddIntConstant(m, "ISA_AVX2", NM_ISA_AVX2) < 0 ||
              PyModule_AddIntConstant(m, "API", NM_TRAIN_API) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
