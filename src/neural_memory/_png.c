/* PNG row unfiltering for neural_memory/png.py (16-bit colour PNG, which Pillow truncates to
 * 8 bits). The four predictive filters (Sub, Up, Average, Paeth) are undone byte by byte, each
 * byte depending on the one to its left, so numpy cannot vectorise them: in Python this loop
 * took about 2 s for one 768 x 512 RGB image, here it takes a few milliseconds. Reading the
 * chunks, inflating and interlacing stay in Python (zlib, numpy). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int paeth(int a, int b, int c) {
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* Undo the filters of `height` rows of `row_bytes` bytes, each row preceded by its filter type
 * byte (PNG's layout after inflating), `bpp` bytes per pixel. Returns 0, or the failing row + 1
 * when a row names an unknown filter type. */
static Py_ssize_t unfilter_rows(const uint8_t *in, uint8_t *out, Py_ssize_t height, Py_ssize_t row_bytes,
                                Py_ssize_t bpp) {
    for (Py_ssize_t y = 0; y < height; y++) {
        const uint8_t *src = in + y * (row_bytes + 1);
        uint8_t filter = src[0];
        src++;
        uint8_t *row = out + y * row_bytes;
        const uint8_t *up = y ? row - row_bytes : NULL;
        Py_ssize_t i;
        switch (filter) {
        case 0:
            memcpy(row, src, (size_t)row_bytes);
            break;
        case 1:
            for (i = 0; i < row_bytes; i++) row[i] = (uint8_t)(src[i] + (i >= bpp ? row[i - bpp] : 0));
            break;
        case 2:
            for (i = 0; i < row_bytes; i++) row[i] = (uint8_t)(src[i] + (up ? up[i] : 0));
            break;
        case 3:
            for (i = 0; i < row_bytes; i++) {
                int a = i >= bpp ? row[i - bpp] : 0, b = up ? up[i] : 0;
                row[i] = (uint8_t)(src[i] + ((a + b) >> 1));
            }
            break;
        case 4:
            for (i = 0; i < row_bytes; i++) {
                int a = i >= bpp ? row[i - bpp] : 0, b = up ? up[i] : 0;
                int c = (up && i >= bpp) ? up[i - bpp] : 0;
                row[i] = (uint8_t)(src[i] + paeth(a, b, c));
            }
            break;
        default:
            return y + 1;
        }
    }
    return 0;
}

static PyObject *py_unfilter(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    Py_ssize_t height, row_bytes, bpp;
    if (!PyArg_ParseTuple(args, "y*nnn", &data, &height, &row_bytes, &bpp)) return NULL;
    PyObject *out = NULL;
    if (height < 0 || row_bytes < 0 || bpp < 1 || bpp > 8) {
        PyErr_SetString(PyExc_ValueError, "unfilter: bad dimensions");
        goto done;
    }
    if (row_bytes >= PY_SSIZE_T_MAX || (height && row_bytes + 1 > PY_SSIZE_T_MAX / height)) {
        PyErr_SetString(PyExc_ValueError, "unfilter: image too large");
        goto done;
    }
    if (data.len != height * (row_bytes + 1)) {
        PyErr_Format(PyExc_ValueError, "PNG image data has %zd bytes, expected %zd", data.len,
                     height * (row_bytes + 1));
        goto done;
    }
    out = PyByteArray_FromStringAndSize(NULL, height * row_bytes);
    if (!out) goto done;
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS
    bad = unfilter_rows((const uint8_t *)data.buf, (uint8_t *)PyByteArray_AS_STRING(out), height, row_bytes, bpp);
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_Format(PyExc_ValueError, "PNG row %zd has an unknown filter type", bad - 1);
        Py_CLEAR(out);
    }
done:
    PyBuffer_Release(&data);
    return out;
}

static PyMethodDef methods[] = {
    {"unfilter", py_unfilter, METH_VARARGS,
     "unfilter(data, height, row_bytes, bpp) -> bytearray\n"
     "Undo PNG's row filters: data is height rows of (1 filter byte + row_bytes bytes)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_png", "PNG row unfiltering (neural_memory/png.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__png(void) { return PyModule_Create(&module); }
