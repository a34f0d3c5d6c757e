/* Fused element-wise loops of one phasing iteration (numpy backend), one pass over memory each.
 *
 * Built by `pip install` when a C compiler is present (optional extension: without one the package
 * installs and `_fused` runs the same steps as blocked numpy ufuncs). Plain C, no numpy headers: arrays
 * come in through the buffer protocol and each call works on the voxel range [lo, hi) with the GIL
 * released, so that `_fused` can run one range per core on its thread pool.
 *
 *   modulus(psi, amp, fixed, floor, lo, hi)      psi <- psi * amp / (|psi| + floor), kept where fixed
 *   scale(obj, support, c_in, c_out, lo, hi)     obj <- c(s) * obj                (ER)
 *   share(obj, prev, support, c_in, c_out, lo, hi)  prev <- c(s) * obj          (HIO/RAAR start)
 *   combine(obj, prev, support, p_in, p_out, n_in, n_out, lo, hi)
 *                                                 obj <- p(s) * obj + prev; prev <- n(s) * obj
 *
 * psi/obj/prev: complex64 (interleaved float pairs); amp: float32; fixed, support: 1 byte per voxel
 * (numpy bool or uint8, nonzero = true). c(s) is c_in where the support is set, c_out elsewhere.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

static int check_range(Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n, const char *what) {
    if (lo < 0 || hi < lo || hi > n) {
        PyErr_Format(PyExc_ValueError, "%s: range [%zd, %zd) outside the %zd voxels of the array", what, lo,
                     hi, n);
        return 0;
    }
    return 1;
}

static int check_len(Py_buffer *b, Py_ssize_t n, Py_ssize_t itemsize, const char *name) {
    if (b->len != n * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd", name, b->len, n * itemsize);
        return 0;
    }
    return 1;
}

/* The loops, on restrict pointers and value parameters so that the compiler vectorises them. */
static void modulus_loop(float *restrict p, const float *restrict a, const unsigned char *restrict f,
                         const float floor_, Py_ssize_t lo, Py_ssize_t hi) {
    for (Py_ssize_t i = lo; i < hi; i++) {
        float re = p[2 * i], im = p[2 * i + 1];
        float r = a[i] / (sqrtf(re * re + im * im) + floor_);
        float keep = (float)(f[i] != 0); /* branch-free select: exact, amp is 0 and r finite there */
        r = keep + (1.0f - keep) * r;
        p[2 * i] = re * r;
        p[2 * i + 1] = im * r;
    }
}

static void scale_loop(float *restrict o, const unsigned char *restrict s, const float c_in, const float c_out,
                       Py_ssize_t lo, Py_ssize_t hi) {
    for (Py_ssize_t i = lo; i < hi; i++) {
        float c = s[i] ? c_in : c_out;
        o[2 * i] *= c;
        o[2 * i + 1] *= c;
    }
}

static void share_loop(const float *restrict o, float *restrict q, const unsigned char *restrict s,
                       const float c_in, const float c_out, Py_ssize_t lo, Py_ssize_t hi) {
    for (Py_ssize_t i = lo; i < hi; i++) {
        float c = s[i] ? c_in : c_out;
        q[2 * i] = o[2 * i] * c;
        q[2 * i + 1] = o[2 * i + 1] * c;
    }
}

static void combine_loop(float *restrict o, float *restrict q, const unsigned char *restrict s,
                         const float p_in, const float p_out, const float n_in, const float n_out,
                         Py_ssize_t lo, Py_ssize_t hi) {
    for (Py_ssize_t i = lo; i < hi; i++) {
        int in = s[i] != 0;
        float cp = in ? p_in : p_out, cn = in ? n_in : n_out;
        float re = o[2 * i] * cp + q[2 * i], im = o[2 * i + 1] * cp + q[2 * i + 1];
        o[2 * i] = re;
        o[2 * i + 1] = im;
        q[2 * i] = re * cn;
        q[2 * i + 1] = im * cn;
    }
}

static PyObject *k_modulus(PyObject *self, PyObject *args) {
    Py_buffer psi, amp, fixed;
    float floor_;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "w*y*y*fnn", &psi, &amp, &fixed, &floor_, &lo, &hi)) return NULL;
    Py_ssize_t n = psi.len / 8;
    PyObject *ret = NULL;
    if (check_len(&amp, n, 4, "amp") && check_len(&fixed, n, 1, "fixed") && check_range(lo, hi, n, "modulus")) {
        Py_BEGIN_ALLOW_THREADS
        modulus_loop((float *)psi.buf, (const float *)amp.buf, (const unsigned char *)fixed.buf, floor_, lo, hi);
        Py_END_ALLOW_THREADS
        ret = Py_None;
        Py_INCREF(ret);
    }
    PyBuffer_Release(&psi);
    PyBuffer_Release(&amp);
    PyBuffer_Release(&fixed);
    return ret;
}

static PyObject *k_scale(PyObject *self, PyObject *args) {
    Py_buffer obj, sup;
    float c_in, c_out;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "w*y*ffnn", &obj, &sup, &c_in, &c_out, &lo, &hi)) return NULL;
    Py_ssize_t n = obj.len / 8;
    PyObject *ret = NULL;
    if (check_len(&sup, n, 1, "support") && check_range(lo, hi, n, "scale")) {
        Py_BEGIN_ALLOW_THREADS
        scale_loop((float *)obj.buf, (const unsigned char *)sup.buf, c_in, c_out, lo, hi);
        Py_END_ALLOW_THREADS
        ret = Py_None;
        Py_INCREF(ret);
    }
    PyBuffer_Release(&obj);
    PyBuffer_Release(&sup);
    return ret;
}

static PyObject *k_share(PyObject *self, PyObject *args) {
    Py_buffer obj, prev, sup;
    float c_in, c_out;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "y*w*y*ffnn", &obj, &prev, &sup, &c_in, &c_out, &lo, &hi)) return NULL;
    Py_ssize_t n = obj.len / 8;
    PyObject *ret = NULL;
    if (check_len(&prev, n, 8, "prev") && check_len(&sup, n, 1, "support") && check_range(lo, hi, n, "share")) {
        Py_BEGIN_ALLOW_THREADS
        share_loop((const float *)obj.buf, (float *)prev.buf, (const unsigned char *)sup.buf, c_in, c_out, lo, hi);
        Py_END_ALLOW_THREADS
        ret = Py_None;
        Py_INCREF(ret);
    }
    PyBuffer_Release(&obj);
    PyBuffer_Release(&prev);
    PyBuffer_Release(&sup);
    return ret;
}

static PyObject *k_combine(PyObject *self, PyObject *args) {
    Py_buffer obj, prev, sup;
    float p_in, p_out, n_in, n_out;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "w*w*y*ffffnn", &obj, &prev, &sup, &p_in, &p_out, &n_in, &n_out, &lo, &hi))
        return NULL;
    Py_ssize_t n = obj.len / 8;
    PyObject *ret = NULL;
    if (check_len(&prev, n, 8, "prev") && check_len(&sup, n, 1, "support") &&
        check_range(lo, hi, n, "combine")) {
        Py_BEGIN_ALLOW_THREADS
        combine_loop((float *)obj.buf, (float *)prev.buf, (const unsigned char *)sup.buf, p_in, p_out, n_in, n_out,
                     lo, hi);
        Py_END_ALLOW_THREADS
        ret = Py_None;
        Py_INCREF(ret);
    }
    PyBuffer_Release(&obj);
    PyBuffer_Release(&prev);
    PyBuffer_Release(&sup);
    return ret;
}

static PyMethodDef methods[] = {
    {"modulus", k_modulus, METH_VARARGS, "psi <- psi * amp / (|psi| + floor) on [lo, hi), kept where fixed"},
    {"scale", k_scale, METH_VARARGS, "obj <- c(s) * obj on [lo, hi)"},
    {"share", k_share, METH_VARARGS, "prev <- c(s) * obj on [lo, hi)"},
    {"combine", k_combine, METH_VARARGS, "obj <- p(s) * obj + prev; prev <- n(s) * obj on [lo, hi)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "Fused element-wise loops of the phasing engine (see _fused.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
