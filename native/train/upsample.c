/* The training upsampler (train_kernels.Upsampler in C): the recursive 2x upsampling
 * of one latent grid to level-1 rows and full-resolution columns, the 2x row pass to any set
 * of full-resolution rows, and the adjoints (transposes) of both.
 *
 * Every output element is one fixed sum (a fixed list of taps in a fixed order), computed by
 * whichever part owns it: the result does not depend on how channels or rows are split
 * between threads. The adjoints are written as gathers (each output element sums the inputs
 * that read it) rather than scatters, for the same reason and so that each element is
 * written once.
 *
 * Taps: each 2x stage (level s + 1 -> s is stage s) has its own filter, four even-phase taps
 * given by the caller (a row of fixed_point.UP_TABLES over 256; the odd phase reads them
 * reversed). Output j reads source k = j >> 1 at offsets -2..1 (even j) or -1..2 (odd j),
 * indices clamped to the source (replicated border). Columns are upsampled before rows within
 * a level, as in train_kernels.py. */
#include <stdlib.h>
#include <string.h>

#include "nm_train.h"

/* One stage's filter: even phase e, odd phase o (e reversed). */
typedef struct {
    float e[4], o[4];
} up_taps;

static up_taps stage_filter(const float *even) {
    up_taps k;
    for (int q = 0; q < 4; q++) k.e[q] = even[q], k.o[q] = even[3 - q];
    return k;
}

/* Source indices (clamped) and taps of output sample j of a source of n samples. */
static inline void src_taps(int64_t j, int64_t n, const up_taps *f, int64_t idx[4],
                            const float **t) {
    const int64_t k = j >> 1, i0 = (j & 1) ? k - 1 : k - 2;
    *t = (j & 1) ? f->o : f->e;
    for (int q = 0; q < 4; q++) {
        const int64_t i = i0 + q;
        idx[q] = i < 0 ? 0 : i > n - 1 ? n - 1 : i;
    }
}

/* ---- one-row building blocks, generic C ---------------------------------------------------- */

/* dst[k] (= or +=) sum_l t[l] * src[l][k], l in order, for k < w. */
static void combine_c(const float *const *src, const float *t, int L, float *dst, int64_t w,
                      int add) {
    for (int64_t k0 = 0; k0 < w; k0 += 64) {
        const int64_t n = w - k0 < 64 ? w - k0 : 64;
        float acc[64];
        for (int64_t k = 0; k < n; k++) acc[k] = 0.0f;
        for (int l = 0; l < L; l++) {
            const float tl = t[l], *s = src[l] + k0;
            for (int64_t k = 0; k < n; k++) acc[k] += tl * s[k];
        }
        float *d = dst + k0;
        if (add)
            for (int64_t k = 0; k < n; k++) d[k] += acc[k];
        else
            for (int64_t k = 0; k < n; k++) d[k] = acc[k];
    }
}

/* Even and odd outputs of source samples k in [lo, hi) (all taps inside the row). */
static void cols_interior_c(const float *s, int64_t lo, int64_t hi, float *dst,
                            const up_taps *f) {
    const float *TE = f->e, *TO = f->o;
    for (int64_t k = lo; k < hi; k++) {
        dst[2 * k] = TE[0] * s[k - 2] + TE[1] * s[k - 1] + TE[2] * s[k] + TE[3] * s[k + 1];
        dst[2 * k + 1] = TO[0] * s[k - 1] + TO[1] * s[k] + TO[2] * s[k + 1] + TO[3] * s[k + 2];
    }
}

/* dst[i] for interior sources i in [lo, hi): the 8 outputs that read i, from the
 * deinterleaved gradient (ev[m] = g[2m], od[m] = g[2m + 1]). */
static void cols_adj_interior_c(const float *ev, const float *od, int64_t lo, int64_t hi,
                                float *dst, const up_taps *f) {
    const float *TE = f->e, *TO = f->o;
    for (int64_t i = lo; i < hi; i++)
        dst[i] = TE[0] * ev[i + 2] + TE[1] * ev[i + 1] + TE[2] * ev[i] + TE[3] * ev[i - 1] +
                 TO[0] * od[i + 1] + TO[1] * od[i] + TO[2] * od[i - 1] + TO[3] * od[i - 2];
}

/* dst[q][k] += t[q] * g[k] for q < nd (distinct rows), k < len: one pass over g. */
static void spread_c(const float *g, float *const *dst, const float *t, int nd, int64_t len) {
    for (int q = 0; q < nd; q++) {
        float *d = dst[q];
        const float tq = t[q];
        for (int64_t k = 0; k < len; k++) d[k] += tq * g[k];
    }
}

typedef struct {
    void (*spread)(const float *g, float *const *dst, const float *t, int nd, int64_t len);
    void (*combine)(const float *const *src, const float *t, int L, float *dst, int64_t w,
                    int add);
    void (*cols_interior)(const float *s, int64_t lo, int64_t hi, float *dst, const up_taps *f);
    void (*cols_adj_interior)(const float *ev, const float *od, int64_t lo, int64_t hi,
                              float *dst, const up_taps *f);
} up_ops;

static const up_ops ops_c = {spread_c, combine_c, cols_interior_c, cols_adj_interior_c};

/* ---- AVX2/FMA versions ------------------------------------------------------------------------ */
#if defined(NM_HAVE_AVX2)
#include <immintrin.h>

#define AVX2_FN static __attribute__((target("avx2,fma")))

AVX2_FN void combine_avx2(const float *const *src, const float *t, int L, float *dst, int64_t w,
                          int add) {
    int64_t k = 0;
    for (; k + 32 <= w; k += 32) { /* 4 accumulators, one pass over the L sources */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int l = 0; l < L; l++) {
            const __m256 tl = _mm256_set1_ps(t[l]);
            const float *s = src[l] + k;
            a0 = _mm256_fmadd_ps(tl, _mm256_loadu_ps(s), a0);
            a1 = _mm256_fmadd_ps(tl, _mm256_loadu_ps(s + 8), a1);
            a2 = _mm256_fmadd_ps(tl, _mm256_loadu_ps(s + 16), a2);
            a3 = _mm256_fmadd_ps(tl, _mm256_loadu_ps(s + 24), a3);
        }
        float *d = dst + k;
        if (add) {
            a0 = _mm256_add_ps(_mm256_loadu_ps(d), a0);
            a1 = _mm256_add_ps(_mm256_loadu_ps(d + 8), a1);
            a2 = _mm256_add_ps(_mm256_loadu_ps(d + 16), a2);
            a3 = _mm256_add_ps(_mm256_loadu_ps(d + 24), a3);
        }
        _mm256_storeu_ps(d, a0);
        _mm256_storeu_ps(d + 8, a1);
        _mm256_storeu_ps(d + 16, a2);
        _mm256_storeu_ps(d + 24, a3);
    }
    for (; k + 8 <= w; k += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (int l = 0; l < L; l++)
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(t[l]), _mm256_loadu_ps(src[l] + k), a0);
        if (add) a0 = _mm256_add_ps(_mm256_loadu_ps(dst + k), a0);
        _mm256_storeu_ps(dst + k, a0);
    }
    for (; k < w; k++) { /* the same sum, one lane */
        float acc = 0.0f;
        for (int l = 0; l < L; l++) acc = __builtin_fmaf(t[l], src[l][k], acc);
        dst[k] = add ? dst[k] + acc : acc;
    }
}

AVX2_FN void cols_interior_avx2(const float *s, int64_t lo, int64_t hi, float *dst,
                                const up_taps *f) {
    const __m256 e0 = _mm256_set1_ps(f->e[0]), e1 = _mm256_set1_ps(f->e[1]),
                 e2 = _mm256_set1_ps(f->e[2]), e3 = _mm256_set1_ps(f->e[3]);
    int64_t k = lo;
    for (; k + 8 <= hi; k += 8) {
        const __m256 m2 = _mm256_loadu_ps(s + k - 2), m1 = _mm256_loadu_ps(s + k - 1),
                     p0 = _mm256_loadu_ps(s + k), p1 = _mm256_loadu_ps(s + k + 1),
                     p2 = _mm256_loadu_ps(s + k + 2);
        /* the odd taps are the even ones reversed: odd = e3 m1 + e2 p0 + e1 p1 + e0 p2 */
        __m256 ev = _mm256_mul_ps(e0, m2), od = _mm256_mul_ps(e3, m1);
        ev = _mm256_fmadd_ps(e1, m1, ev), od = _mm256_fmadd_ps(e2, p0, od);
        ev = _mm256_fmadd_ps(e2, p0, ev), od = _mm256_fmadd_ps(e1, p1, od);
        ev = _mm256_fmadd_ps(e3, p1, ev), od = _mm256_fmadd_ps(e0, p2, od);
        const __m256 lo4 = _mm256_unpacklo_ps(ev, od), hi4 = _mm256_unpackhi_ps(ev, od);
        _mm256_storeu_ps(dst + 2 * k, _mm256_permute2f128_ps(lo4, hi4, 0x20));
        _mm256_storeu_ps(dst + 2 * k + 8, _mm256_permute2f128_ps(lo4, hi4, 0x31));
    }
    cols_interior_c(s, k, hi, dst, f);
}

AVX2_FN void cols_adj_interior_avx2(const float *ev, const float *od, int64_t lo, int64_t hi,
                                    float *dst, const up_taps *f) {
    const __m256 e0 = _mm256_set1_ps(f->e[0]), e1 = _mm256_set1_ps(f->e[1]),
                 e2 = _mm256_set1_ps(f->e[2]), e3 = _mm256_set1_ps(f->e[3]);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 a = _mm256_mul_ps(e0, _mm256_loadu_ps(ev + i + 2));
        __m256 b = _mm256_mul_ps(e3, _mm256_loadu_ps(od + i + 1)); /* o[0] = e[3] ... */
        a = _mm256_fmadd_ps(e1, _mm256_loadu_ps(ev + i + 1), a);
        b = _mm256_fmadd_ps(e2, _mm256_loadu_ps(od + i), b);
        a = _mm256_fmadd_ps(e2, _mm256_loadu_ps(ev + i), a);
        b = _mm256_fmadd_ps(e1, _mm256_loadu_ps(od + i - 1), b);
        a = _mm256_fmadd_ps(e3, _mm256_loadu_ps(ev + i - 1), a);
        b = _mm256_fmadd_ps(e0, _mm256_loadu_ps(od + i - 2), b);
        _mm256_storeu_ps(dst + i, _mm256_add_ps(a, b));
    }
    cols_adj_interior_c(ev, od, i, hi, dst, f);
}

AVX2_FN void spread_avx2(const float *g, float *const *dst, const float *t, int nd,
                         int64_t len) {
    if (nd != 4) { /* a clamped border row: rare */
        spread_c(g, dst, t, nd, len);
        return;
    }
    const __m256 t0 = _mm256_set1_ps(t[0]), t1 = _mm256_set1_ps(t[1]), t2 = _mm256_set1_ps(t[2]),
                 t3 = _mm256_set1_ps(t[3]);
    float *d0 = dst[0], *d1 = dst[1], *d2 = dst[2], *d3 = dst[3];
    int64_t k = 0;
    for (; k + 8 <= len; k += 8) {
        const __m256 v = _mm256_loadu_ps(g + k);
        _mm256_storeu_ps(d0 + k, _mm256_fmadd_ps(t0, v, _mm256_loadu_ps(d0 + k)));
        _mm256_storeu_ps(d1 + k, _mm256_fmadd_ps(t1, v, _mm256_loadu_ps(d1 + k)));
        _mm256_storeu_ps(d2 + k, _mm256_fmadd_ps(t2, v, _mm256_loadu_ps(d2 + k)));
        _mm256_storeu_ps(d3 + k, _mm256_fmadd_ps(t3, v, _mm256_loadu_ps(d3 + k)));
    }
    for (; k < len; k++) {
        d0[k] = __builtin_fmaf(t[0], g[k], d0[k]);
        d1[k] = __builtin_fmaf(t[1], g[k], d1[k]);
        d2[k] = __builtin_fmaf(t[2], g[k], d2[k]);
        d3[k] = __builtin_fmaf(t[3], g[k], d3[k]);
    }
}

static const up_ops ops_avx2 = {spread_avx2, combine_avx2, cols_interior_avx2, cols_adj_interior_avx2};
#endif

static const up_ops *select_ops(int cap) {
#if defined(NM_HAVE_AVX2)
    int isa = nm_isa();
    if (cap && cap < isa) isa = cap;
    if (isa >= NM_ISA_AVX2) return &ops_avx2;
#else
    (void)cap;
#endif
    return &ops_c;
}

/* ---- rows and columns of a plane ------------------------------------------------------------ */

/* The border samples of a row, the ones with clamped taps (or all of them in a short row), as
 * a list: dst[d[e]] += t[e] * src[s[e]] in entry order, after dst[z[0..nz)] = 0. Built once
 * per row length: computing the taps per row took as long as the interior. */
typedef struct {
    int n, nz;
    int32_t d[128], s[128], z[16];
    float t[128];
} border;

static void border_add(border *b, int64_t d, int64_t s, float t) {
    b->d[b->n] = (int32_t)d, b->s[b->n] = (int32_t)s, b->t[b->n] = t, b->n++;
}

/* 2x along a row (w -> n_out): the outputs j < 4 and j >= 2 (w - 2), all if w < 5. */
static void border_fwd(int64_t w, int64_t n_out, const up_taps *f, border *b) {
    const int64_t hi = w - 2 > 2 ? w - 2 : 2;
    b->n = b->nz = 0;
    for (int64_t j = 0; j < n_out; j++) {
        if (j >= 4 && j < 2 * hi) continue;
        int64_t i[4];
        const float *t;
        src_taps(j, w, f, i, &t);
        b->z[b->nz++] = (int32_t)j;
        for (int q = 0; q < 4; q++) border_add(b, j, i[q], t[q]);
    }
}

/* Its adjoint: sources 0, 1, w-2, w-1 gather the outputs j < 8 and j >= 2w - 8 that read
 * them (if w >= 6, see cols_adj_row), else every source every output. */
static void border_adj(int64_t w, int64_t n_out, const up_taps *f, border *b) {
    b->n = b->nz = 0;
    if (w < 6) {
        for (int64_t i = 0; i < w; i++) b->z[b->nz++] = (int32_t)i;
        for (int64_t j = 0; j < n_out; j++) {
            int64_t i[4];
            const float *t;
            src_taps(j, w, f, i, &t);
            for (int q = 0; q < 4; q++) border_add(b, i[q], j, t[q]);
        }
        return;
    }
    const int64_t edge[4] = {0, 1, w - 2, w - 1};
    for (int e = 0; e < 4; e++) {
        b->z[b->nz++] = (int32_t)edge[e];
        for (int part = 0; part < 2; part++) {
            const int64_t j0 = part ? (2 * w - 8 > 8 ? 2 * w - 8 : 8) : 0;
            const int64_t j1 = part ? n_out : (n_out < 8 ? n_out : 8);
            for (int64_t j = j0; j < j1; j++) {
                int64_t i[4];
                const float *t;
                src_taps(j, w, f, i, &t);
                for (int q = 0; q < 4; q++)
                    if (i[q] == edge[e]) border_add(b, edge[e], j, t[q]);
            }
        }
    }
}

static void border_apply(const border *b, const float *src, float *dst) {
    for (int e = 0; e < b->nz; e++) dst[b->z[e]] = 0.0f;
    for (int e = 0; e < b->n; e++) dst[b->d[e]] += b->t[e] * src[b->s[e]];
}

/* One row: 2x along it, w -> n_out samples (bt from border_fwd(w, n_out)). */
static void cols_row(const up_ops *op, const float *s, int64_t w, float *dst, const border *bt,
                     const up_taps *f) {
    op->cols_interior(s, 2, w - 2 > 2 ? w - 2 : 2, dst, f);
    border_apply(bt, s, dst);
}

/* One row of the adjoint of cols_row: g (n_out) -> dst (w), overwritten (bt from
 * border_adj(w, n_out)). ev, od: scratch of (n_out + 1) / 2 floats each. */
static void cols_adj_row(const up_ops *op, const float *g, int64_t n_out, float *dst, int64_t w,
                         float *ev, float *od, const border *bt, const up_taps *f) {
    if (w >= 6) { /* interior sources gather the 8 outputs that read them */
        const int64_t n_ev = (n_out + 1) / 2, n_od = n_out / 2;
        for (int64_t m = 0; m < n_od; m++) ev[m] = g[2 * m], od[m] = g[2 * m + 1];
        if (n_ev > n_od) ev[n_od] = g[2 * n_od];
        op->cols_adj_interior(ev, od, 2, w - 2, dst, f);
    }
    border_apply(bt, g, dst);
}

/* Row lists of the 2x row pass: for output rows rows[0..r_n) of a source of h rows, which
 * (output row, tap) pairs read each source row, in output order (CSR: start[h + 1]). */
typedef struct {
    int64_t *start, *row;
    float *tap;
} row_lists;

static int row_lists_build(const int64_t *rows, int64_t r_n, int64_t h, const up_taps *f,
                           row_lists *rl) {
    rl->start = calloc((size_t)h + 1, sizeof(int64_t));
    rl->row = malloc(sizeof(int64_t) * (size_t)(4 * r_n + 1));
    rl->tap = malloc(sizeof(float) * (size_t)(4 * r_n + 1));
    if (!rl->start || !rl->row || !rl->tap) return -1;
    for (int64_t jj = 0; jj < r_n; jj++) {
        int64_t i[4];
        const float *t;
        src_taps(rows[jj], h, f, i, &t);
        for (int q = 0; q < 4; q++) rl->start[i[q] + 1]++;
    }
    for (int64_t s = 0; s < h; s++) rl->start[s + 1] += rl->start[s];
    int64_t *fill = malloc(sizeof(int64_t) * (size_t)(h + 1));
    if (!fill) return -1;
    memcpy(fill, rl->start, sizeof(int64_t) * (size_t)h);
    for (int64_t jj = 0; jj < r_n; jj++) {
        int64_t i[4];
        const float *t;
        src_taps(rows[jj], h, f, i, &t);
        for (int q = 0; q < 4; q++) {
            const int64_t at = fill[i[q]]++;
            rl->row[at] = jj, rl->tap[at] = t[q];
        }
    }
    free(fill);
    return 0;
}

static void row_lists_free(row_lists *rl) {
    free(rl->start), free(rl->row), free(rl->tap);
}

/* out (r_n, w) = the 2x row pass of src (h, w) at output rows `rows`. */
static void rows_plane(const up_ops *op, const float *src, int64_t h, int64_t w,
                       const int64_t *rows, int64_t r_n, const up_taps *f, float *out) {
    for (int64_t jj = 0; jj < r_n; jj++) {
        int64_t i[4];
        const float *t;
        src_taps(rows[jj], h, f, i, &t);
        const float *s[4] = {src + i[0] * w, src + i[1] * w, src + i[2] * w, src + i[3] * w};
        op->combine(s, t, 4, out + jj * w, w, 0);
    }
}

/* out (h, w) (+)= the adjoint of rows_plane applied to g (r_n, w). */
static int rows_adj_plane(const up_ops *op, const float *g, const row_lists *rl, int64_t h,
                          int64_t w, float *out, int add) {
    const float *s[64];
    float t[64];
    for (int64_t i = 0; i < h; i++) {
        const int64_t a = rl->start[i], n = rl->start[i + 1] - a;
        if (n == 0) {
            if (!add) memset(out + i * w, 0, sizeof(float) * (size_t)w);
            continue;
        }
        /* clamped border rows may be read by many outputs: sum them 64 at a time */
        for (int64_t c = 0; c < n; c += 64) {
            const int L = (int)(n - c < 64 ? n - c : 64);
            for (int l = 0; l < L; l++) s[l] = g + rl->row[a + c + l] * w, t[l] = rl->tap[a + c + l];
            op->combine(s, t, L, out + i * w, w, add || c > 0);
        }
    }
    return 0;
}

/* ---- the calls of module.c ------------------------------------------------------------------ */

static int64_t level_dim(int64_t n, int level) { return (n + ((int64_t)1 << level) - 1) >> level; }

int nm_up_coarse(const float *grid, int level, int64_t height, int64_t width,
                 const float *taps, float *out, int cap) {
    const up_ops *op = select_ops(cap);
    const int64_t h1 = level_dim(height, 1);
    const int64_t cap_n = level_dim(height, 1) * level_dim(width, 1) + 64;
    float *a = malloc(sizeof(float) * (size_t)cap_n), *b = malloc(sizeof(float) * (size_t)cap_n);
    int64_t *all = malloc(sizeof(int64_t) * (size_t)(h1 + 1));
    if (!a || !b || !all) {
        free(a), free(b), free(all);
        return -1;
    }
    int64_t h = level_dim(height, level), w = level_dim(width, level);
    const float gain = 1.0f / (float)((int64_t)1 << level); /* a power of two: exact */
    for (int64_t i = 0; i < h * w; i++) a[i] = grid[i] * gain;
    border bt;
    for (int lv = level - 1; lv >= 1; lv--) { /* stage lv: level lv + 1 -> lv */
        const int64_t h2 = level_dim(height, lv), w2 = level_dim(width, lv);
        const up_taps f = stage_filter(taps + 4 * lv);
        border_fwd(w, w2, &f, &bt);
        for (int64_t r = 0; r < h; r++) cols_row(op, a + r * w, w, b + r * w2, &bt, &f);
        for (int64_t r = 0; r < h2; r++) all[r] = r;
        rows_plane(op, b, h, w2, all, h2, &f, a);
        h = h2, w = w2;
    }
    const up_taps f0 = stage_filter(taps);
    border_fwd(w, width, &f0, &bt);
    for (int64_t r = 0; r < h; r++) cols_row(op, a + r * w, w, out + r * width, &bt, &f0);
    free(a), free(b), free(all);
    return 0;
}

int nm_up_coarse_adjoint(const float *g, int level, int64_t height, int64_t width,
                         const float *taps, float *grad, int cap) {
    const up_ops *op = select_ops(cap);
    const int64_t h1 = level_dim(height, 1), w1 = level_dim(width, 1);
    const int64_t cap_n = h1 * w1 + 64;
    float *a = malloc(sizeof(float) * (size_t)cap_n), *b = malloc(sizeof(float) * (size_t)cap_n);
    float *ev = malloc(sizeof(float) * (size_t)(width / 2 + 8));
    float *od = malloc(sizeof(float) * (size_t)(width / 2 + 8));
    int64_t *all = malloc(sizeof(int64_t) * (size_t)(h1 + 1));
    int rc = -1;
    if (!a || !b || !ev || !od || !all) goto done;
    int64_t h = h1, w = w1;
    border bt;
    const up_taps f0 = stage_filter(taps);
    border_adj(w, width, &f0, &bt);
    for (int64_t r = 0; r < h; r++)
        cols_adj_row(op, g + r * width, width, a + r * w, w, ev, od, &bt, &f0);
    for (int lv = 1; lv < level; lv++) { /* the adjoint of stage lv */
        const int64_t h2 = level_dim(height, lv + 1), w2 = level_dim(width, lv + 1);
        const up_taps f = stage_filter(taps + 4 * lv);
        for (int64_t r = 0; r < h; r++) all[r] = r;
        row_lists rl;
        if (row_lists_build(all, h, h2, &f, &rl)) {
            row_lists_free(&rl);
            goto done;
        }
        rows_adj_plane(op, a, &rl, h2, w, b, 0); /* (h, w) -> (h2, w) */
        row_lists_free(&rl);
        border_adj(w2, w, &f, &bt);
        for (int64_t r = 0; r < h2; r++)
            cols_adj_row(op, b + r * w, w, a + r * w2, w2, ev, od, &bt, &f);
        h = h2, w = w2;
    }
    const float gain = 1.0f / (float)((int64_t)1 << level);
    for (int64_t i = 0; i < h * w; i++) grad[i] += a[i] * gain;
    rc = 0;
done:
    free(a), free(b), free(ev), free(od), free(all);
    return rc;
}

int nm_up_rows(const float *src, int64_t h, int64_t w, const int64_t *rows, int64_t r_n,
               int64_t c0, int64_t c1, const float *taps, float *out, int cap) {
    const up_ops *op = select_ops(cap);
    const up_taps f = stage_filter(taps);
    for (int64_t c = c0; c < c1; c++)
        rows_plane(op, src + c * h * w, h, w, rows, r_n, &f, out + c * r_n * w);
    return 0;
}

int nm_up_rows_adjoint(const float *g, int64_t h, int64_t w, const int64_t *rows, int64_t r_n,
                       int64_t c0, int64_t c1, const float *taps, float *out, int cap) {
    const up_ops *op = select_ops(cap);
    const up_taps f = stage_filter(taps);
    row_lists rl;
    if (row_lists_build(rows, r_n, h, &f, &rl)) {
        row_lists_free(&rl);
        return -1;
    }
    for (int64_t c = c0; c < c1; c++) rows_adj_plane(op, g + c * r_n * w, &rl, h, w, out + c * h * w, 1);
    row_lists_free(&rl);
    return 0;
}

/* ---- row segments, for the synthesis kernel (kernels.c) that builds its features itself ----- */

const void *nm_up_select(int cap) { return select_ops(cap); }

void nm_up_segment(const void *ops, const float *taps, const float *coarse, int64_t n_c,
                   int64_t h, int64_t w, int64_t row, int64_t x0, int64_t len, float *dst,
                   ptrdiff_t ldd) {
    const up_ops *op = ops;
    const up_taps f = stage_filter(taps);
    int64_t i[4];
    const float *t;
    src_taps(row, h, &f, i, &t);
    for (int64_t c = 0; c < n_c; c++) {
        const float *p = coarse + c * h * w + x0;
        const float *s[4] = {p + i[0] * w, p + i[1] * w, p + i[2] * w, p + i[3] * w};
        op->combine(s, t, 4, dst + c * ldd, len, 0);
    }
}

int nm_up_segment_adjoint(const void *ops, const float *taps, const float *g, ptrdiff_t ldg,
                          int64_t n_c, int64_t h, int64_t row, int64_t x0, int64_t len,
                          float *const *rp, const int64_t *cs, int64_t lo, int64_t band_n) {
    const up_ops *op = ops;
    const up_taps f = stage_filter(taps);
    int64_t i[4], d[4];
    const float *t;
    float td[4];
    int nd = 0;
    src_taps(row, h, &f, i, &t);
    for (int q = 0; q < 4; q++) { /* clamped taps on the same row: one tap, their sum */
        if (i[q] < lo || i[q] >= lo + band_n) return -1;
        if (nd && d[nd - 1] == i[q]) {
            td[nd - 1] += t[q];
        } else {
            d[nd] = i[q], td[nd] = t[q], nd++;
        }
    }
    for (int64_t c = 0; c < n_c; c++) {
        float *dst[4];
        for (int q = 0; q < nd; q++) dst[q] = rp[d[q] - lo] + c * cs[d[q] - lo] + x0;
        op->spread(g + c * ldg, dst, td, nd, len);
    }
    return 0;
}
