/* Drivers of the two training kernels (block / task loops, gathers, scatters) and the
 * generic C version of their building blocks; kernels_avx2.c has the AVX2/FMA ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nm_train.h"

/* ---- generic building blocks ------------------------------------------------------------- */

static void dense_c(const float *X, ptrdiff_t ldx, int n_in, const float *W, ptrdiff_t ldw,
                    int n_out, const float *bias, int relu, const float *mask, ptrdiff_t ldm,
                    float *Y, ptrdiff_t ldy, int nv) {
    float acc[NM_SYN_BLOCK];
    const int n = nv * 8;
    for (int j = 0; j < n_out; j++) {
        const float b = bias ? bias[j] : 0.0f;
        for (int i = 0; i < n; i++) acc[i] = b;
        for (int k = 0; k < n_in; k++) {
            const float w = W[k * ldw + j];
            const float *x = X + k * ldx;
            for (int i = 0; i < n; i++) acc[i] += w * x[i];
        }
        float *y = Y + j * ldy;
        for (int i = 0; i < n; i++) {
            float v = acc[i];
            if (relu && !(v > 0.0f)) v = 0.0f;
            if (mask && !(mask[j * ldm + i] > 0.0f)) v = 0.0f;
            y[i] = v;
        }
    }
}

static void outer_c(const float *Y, ptrdiff_t ldy, int n_y, const float *X, ptrdiff_t ldx,
                    int n_x, int nv, float *L, ptrdiff_t ldl) {
    for (int i = 0; i < n_y; i++) {
        const float *y = Y + i * ldy;
        for (int q = 0; q < n_x; q++) {
            const float *x = X + q * ldx;
            float acc[8] = {0};
            for (int v = 0; v < nv; v++)
                for (int lane = 0; lane < 8; lane++) acc[lane] += y[8 * v + lane] * x[8 * v + lane];
            float *l = L + (i * ldl + q) * 8;
            for (int lane = 0; lane < 8; lane++) l[lane] += acc[lane];
        }
    }
}

static void backout_c(float *H, ptrdiff_t ldh, int n_h, const float *G, ptrdiff_t ldg, int n_c,
                      const float *W, int nv, float *Lw, float *Lb) {
    float d[NM_SYN_BLOCK];
    const int n = nv * 8;
    for (int k = 0; k < n_h; k++) {
        float *h = H + k * ldh;
        for (int i = 0; i < n; i++) d[i] = 0.0f;
        for (int c = 0; c < n_c; c++) {
            const float *g = G + c * ldg, w = W[c * n_h + k];
            float acc[8] = {0};
            for (int v = 0; v < nv; v++)
                for (int lane = 0; lane < 8; lane++) {
                    const int i = 8 * v + lane;
                    acc[lane] += g[i] * h[i];
                    d[i] += w * g[i];
                }
            for (int lane = 0; lane < 8; lane++) Lw[(c * n_h + k) * 8 + lane] += acc[lane];
        }
        float acc[8] = {0};
        for (int v = 0; v < nv; v++)
            for (int lane = 0; lane < 8; lane++) {
                const int i = 8 * v + lane;
                const float dv = h[i] > 0.0f ? d[i] : 0.0f;
                acc[lane] += dv;
                h[i] = dv;
            }
        for (int lane = 0; lane < 8; lane++) Lb[k * 8 + lane] += acc[lane];
    }
}

static double sq_error_c(float *O, ptrdiff_t ldo, const float *T, ptrdiff_t ldt, int n_c, int nv,
                         int m, float two_s, float *Lb) {
    double total = 0.0;
    for (int c = 0; c < n_c; c++) {
        float *o = O + c * ldo;
        const float *t = T + c * ldt;
        for (int i = 0; i < nv * 8; i++) {
            const float e = i < m ? o[i] - t[i] : 0.0f;
            total += (double)e * e;
            o[i] = two_s * e;
            Lb[c * 8 + (i & 7)] += o[i];
        }
    }
    return total;
}

static double laplace_c(const float *V, const float *MU, const float *LB, int nv, int m,
                        float logb_lo, float logb_hi, float sw, float *GV, float *GMU, float *GLB) {
    double total = 0.0;
    for (int i = 0; i < nv * 8; i++) {
        GV[i] = GMU[i] = GLB[i] = 0.0f;
        if (i >= m) continue;
        const double logb = LB[i];
        const double lb = fmin(fmax(logb, logb_lo), logb_hi);
        const double inv_b = exp(-lb), d = (double)V[i] - MU[i], u = fabs(d);
        const double sgn = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
        const double upper = 0.5 * exp(-(u + 0.5) * inv_b), a = (u - 0.5) * inv_b;
        const double e = 0.5 * exp(-fabs(a)), lower = a > 0 ? e : 1.0 - e;
        const double p = lower - upper;
        if (p < 1.0 / 65536.0) {
            total += 16.0;
            continue;
        }
        const double dp_du = -inv_b * e + inv_b * upper;
        const double dp_dib = -(u - 0.5) * e + (u + 0.5) * upper;
        const double k = -1.0 / (p * log(2.0));
        const double g_u = k * dp_du;
        const double g_logb = (logb_lo <= logb && logb <= logb_hi) ? k * dp_dib * -inv_b : 0.0;
        total += -log2(p);
        GV[i] = (float)(sw * g_u * sgn);
        GMU[i] = (float)(sw * -g_u * sgn);
        GLB[i] = (float)(sw * g_logb);
    }
    return total;
}

static void rowsum_c(const float *R, int nv, float *S) {
    float acc[8] = {0};
    for (int v = 0; v < nv; v++)
        for (int lane = 0; lane < 8; lane++) acc[lane] += R[8 * v + lane];
    for (int lane = 0; lane < 8; lane++) S[lane] += acc[lane];
}

static void gather_c(const float *F, int64_t at, int64_t s, int lo, int hi, int n, float *D) {
    for (int i = 0; i < lo; i++) D[i] = 0.0f;
    for (int i = lo; i < hi; i++) D[i] = F[at + s * i];
    for (int i = hi; i < n; i++) D[i] = 0.0f;
}

static void scatter_c(float *F, int64_t at, int64_t s, int lo, int hi, const float *G) {
    for (int i = lo; i < hi; i++) F[at + s * i] += G[i];
}

void nm_proxy_c(const float *Y, const float *N, int64_t n, float t, float *P, float *D) {
    const float inv_t = 1.0f / t, k = 0.5f / tanhf(0.5f / t), kt = k * inv_t;
    for (int64_t i = 0; i < n; i++) {
        const float m = floorf(Y[i]) + 0.5f, a = (Y[i] - m) * inv_t, th = tanhf(a);
        const float z = m + k * th + N[i];
        const float m2 = floorf(z) + 0.5f, a2 = (z - m2) * inv_t, th2 = tanhf(a2);
        const float c1 = coshf(a), c2 = coshf(a2); /* 1 - tanh^2 = 1 / cosh^2, no cancellation */
        P[i] = m2 + k * th2;
        D[i] = kt / (c1 * c1) * (kt / (c2 * c2));
    }
}

void nm_adam_c(float *P, float *M, float *V, const float *G1, const float *D1, const float *G2,
               const float *D2, int64_t n, float step, float b1, float a1, float b2, float a2,
               float c2, float eps) {
    for (int64_t i = 0; i < n; i++) {
        float g = D1 ? G1[i] * D1[i] : G1[i];
        if (G2) g += G2[i] * D2[i];
        M[i] = b1 * M[i] + a1 * g;
        V[i] = b2 * V[i] + a2 * g * g;
        P[i] -= step * M[i] / (sqrtf(V[i] / c2) + eps);
    }
}

/* Acklam's inverse normal CDF: a rational function of (u - 1/2) in the centre, of
 * sqrt(-2 log u) in the tails; each denominator ends in its constant 1 (nm_train.h). */
const float NM_GAUSS_A[6] = {-3.969683028665376e+01f, 2.209460984245205e+02f,
                             -2.759285104469687e+02f, 1.383577518672690e+02f,
                             -3.066479806614716e+01f, 2.506628277459239e+00f};
const float NM_GAUSS_B[6] = {-5.447609879822406e+01f, 1.615858368580409e+02f,
                             -1.556989798598866e+02f, 6.680131188771972e+01f,
                             -1.328068155288572e+01f, 1.0f};
const float NM_GAUSS_C[6] = {-7.784894002430293e-03f, -3.223964580411365e-01f,
                             -2.400758277161838e+00f, -2.549671010422779e+00f,
                             4.374664141464968e+00f,  2.938163982698783e+00f};
const float NM_GAUSS_D[5] = {7.784695709041462e-03f, 3.224671290700398e-01f,
                             2.445134137142996e+00f, 3.754408661907416e+00f, 1.0f};

static float horner(const float *c, int n, float x) {
    float acc = c[0];
    for (int k = 1; k < n; k++) acc = acc * x + c[k];
    return acc;
}

static uint32_t fmix32(uint32_t h) { /* MurmurHash3's finaliser: every input bit avalanches */
    h ^= h >> 16;
    h *= NM_FMIX_1;
    h ^= h >> 13;
    h *= NM_FMIX_2;
    h ^= h >> 16;
    return h;
}

void nm_gauss_c(float *N, int64_t i0, int64_t n, float sigma, uint64_t key) {
    const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t h = fmix32(fmix32((uint32_t)(i0 + i) * NM_GOLDEN + k0) ^ k1);
        const float u = ((float)(h >> 8) + 0.5f) * (1.0f / 16777216.0f);
        const float near = u < 0.5f ? u : 1.0f - u;
        float z;
        if (near > NM_GAUSS_TAIL) {
            const float q = u - 0.5f;
            z = horner(NM_GAUSS_A, 6, q * q) * q / horner(NM_GAUSS_B, 6, q * q);
        } else {
            const float q = sqrtf(-2.0f * logf(near));
            z = horner(NM_GAUSS_C, 6, q) / horner(NM_GAUSS_D, 5, q);
            if (u > 0.5f) z = -z;
        }
        N[i] = sigma * z;
    }
}

const nm_ops nm_ops_generic = {dense_c,  outer_c,  backout_c, sq_error_c, laplace_c,  rowsum_c,
                               gather_c, scatter_c, nm_proxy_c, nm_adam_c, nm_gauss_c};

int nm_isa(void) {
#if defined(NM_HAVE_AVX2)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return NM_ISA_GENERIC;
    return __builtin_cpu_supports("avx512f") ? NM_ISA_AVX512 : NM_ISA_AVX2;
#else
    return NM_ISA_GENERIC;
#endif
}

#if defined(NM_HAVE_AVX2)
static nm_ops ops_avx512;
#endif
static int isa_found;

void nm_train_init(void) {
    isa_found = nm_isa();
#if defined(NM_HAVE_AVX2)
    ops_avx512 = nm_ops_avx2;
    ops_avx512.dense = nm_dense_avx512;
    ops_avx512.outer = nm_outer_avx512;
#endif
}

const nm_ops *nm_ops_select(int cap) {
    int isa = isa_found ? isa_found : NM_ISA_GENERIC;
    if (cap && cap < isa) isa = cap;
#if defined(NM_HAVE_AVX2)
    if (isa == NM_ISA_AVX512) return &ops_avx512;
    if (isa == NM_ISA_AVX2) return &nm_ops_avx2;
#endif
    return &nm_ops_generic;
}

/* ---- scratch memory: one allocation carved into 32-byte aligned pieces ------------------- */

typedef struct {
    char *base, *next;
} arena;

static size_t round32(size_t bytes) { return (bytes + 31) & ~(size_t)31; }

static float *take(arena *ar, size_t count, size_t item) {
    float *p = (float *)ar->next;
    ar->next += round32(count * item);
    return p;
}

static int arena_open(arena *ar, size_t bytes) {
    ar->base = malloc(bytes + 32);
    if (!ar->base) return -1;
    ar->next = (char *)(((uintptr_t)ar->base + 31) & ~(uintptr_t)31);
    return 0;
}

/* Lanes -> sums, lane 0 first: the fixed order that makes a part's result reproducible. */
static void reduce_lanes(const float *L, size_t count, float *out) {
    for (size_t i = 0; i < count; i++) {
        float s = 0.0f;
        for (int lane = 0; lane < 8; lane++) s += L[i * 8 + lane];
        out[i] = s;
    }
}

/* ---- synthesis ----------------------------------------------------------------------------- */

int nm_synth_part(const nm_synth_args *a, int64_t blk0, int64_t blk1, float *out, double *sse,
                  const nm_ops *ops) {
    const int B = NM_SYN_BLOCK, g_n = a->g_n, c_n = a->c_n, h_n = a->h_n;
    const int fused = a->up != NULL; /* features from the upsampler (see nm_synth_args) */
    const int grad = fused ? a->want_grad : a->grad_feat != NULL;
    const size_t f = sizeof(float);
    const size_t n_lanes = (size_t)h_n * g_n + h_n + (size_t)c_n * h_n + c_n;
    size_t bytes = round32((size_t)h_n * B * f) + round32((size_t)c_n * B * f) * 2 +
                   round32((size_t)g_n * B * f) * 2 + round32((size_t)g_n * h_n * f) +
                   round32((size_t)h_n * c_n * f) + round32(n_lanes * 8 * f) + 256;
    arena ar;
    if (arena_open(&ar, bytes)) return -1;
    float *hid = take(&ar, (size_t)h_n * B, f), *go = take(&ar, (size_t)c_n * B, f);
    float *ft = take(&ar, (size_t)g_n * B, f), *tt = take(&ar, (size_t)c_n * B, f);
    float *gt = take(&ar, (size_t)g_n * B, f);
    float *w1t = take(&ar, (size_t)g_n * h_n, f), *w2t = take(&ar, (size_t)h_n * c_n, f);
    float *lanes = take(&ar, n_lanes * 8, f);
    float *L_gw1 = lanes, *L_gb1 = L_gw1 + (size_t)h_n * g_n * 8;
    float *L_gw2 = L_gb1 + (size_t)h_n * 8, *L_gb2 = L_gw2 + (size_t)c_n * h_n * 8;
    memset(lanes, 0, n_lanes * 8 * f);
    for (int k = 0; k < h_n; k++)
        for (int g = 0; g < g_n; g++) w1t[g * h_n + k] = a->w1[k * g_n + g];
    for (int c = 0; c < c_n; c++)
        for (int k = 0; k < h_n; k++) w2t[k * c_n + c] = a->w2[c * h_n + k];
    const float two_s = 2.0f * a->scale;
    float **rp = NULL; /* fused: where each coarse row of the band accumulates */
    int64_t *cs = NULL;
    if (fused && grad && a->band_n > 0) {
        rp = malloc(sizeof(float *) * (size_t)a->band_n);
        cs = malloc(sizeof(int64_t) * (size_t)a->band_n);
        if (!rp || !cs) {
            free(rp), free(cs), free(ar.base);
            return -1;
        }
        for (int64_t k = 0; k < a->band_n; k++) {
            const int64_t sl = a->slot[k];
            rp[k] = sl < 0 ? a->g_coarse + (a->band_lo + k) * a->width : a->edge + sl * a->width;
            cs[k] = sl < 0 ? a->h1 * a->width : a->n_edge * a->width;
        }
    }
    double total = 0.0;
    for (int64_t blk = blk0; blk < blk1; blk++) {
        const int64_t n0 = blk * B;
        const int m = (int)(a->n - n0 < B ? a->n - n0 : B), nv = (m + 7) / 8;
        /* Full blocks are read and written in place; the last, partial one goes through
         * zero-padded copies. (Copying every block into aligned scratch, against 4 KB
         * aliasing of the rows and numpy's 16-byte alignment, was measured 4 % slower.) */
        const ptrdiff_t ld = (ptrdiff_t)a->n;
        if (fused) { /* the block's features, by segments of one output row */
            const float *tp = a->target + n0;
            ptrdiff_t ldt = ld;
            if (m < B) {
                memset(ft, 0, (size_t)g_n * B * f);
                memset(tt, 0, (size_t)c_n * B * f);
                for (int c = 0; c < c_n; c++) memcpy(tt + c * B, tp + c * ldt, (size_t)m * f);
                tp = tt, ldt = B;
            }
            for (int64_t p = n0; p < n0 + m;) {
                const int64_t jj = p / a->width, x0 = p % a->width, row = a->rows[jj];
                const int64_t len = a->width - x0 < n0 + m - p ? a->width - x0 : n0 + m - p;
                float *dst = ft + (p - n0);
                nm_up_segment(a->up, a->up_taps, a->coarse, a->n_old, a->h1, a->width, row, x0, len, dst, B);
                for (int64_t k = 0; k < a->n_new; k++)
                    memcpy(dst + (a->n_old + k) * B,
                           a->lvl0 + (k * a->height + row) * a->width + x0, (size_t)len * f);
                p += len;
            }
            ops->dense(ft, B, g_n, w1t, h_n, h_n, a->b1, 1, NULL, 0, hid, B, nv);
            ops->dense(hid, B, h_n, w2t, c_n, c_n, a->b2, 0, NULL, 0, go, B, nv);
            total += ops->sq_error(go, B, tp, ldt, c_n, nv, m, two_s, L_gb2);
            if (!grad) continue;
            ops->backout(hid, B, h_n, go, B, c_n, a->w2, nv, L_gw2, L_gb1);
            ops->outer(hid, B, h_n, ft, B, g_n, nv, L_gw1, g_n);
            ops->dense(hid, B, h_n, a->w1, g_n, g_n, NULL, 0, NULL, 0, gt, B, nv);
            for (int64_t p = n0; p < n0 + m;) { /* the adjoint of the features */
                const int64_t jj = p / a->width, x0 = p % a->width, row = a->rows[jj];
                const int64_t len = a->width - x0 < n0 + m - p ? a->width - x0 : n0 + m - p;
                const float *src = gt + (p - n0);
                if (a->n_old && nm_up_segment_adjoint(a->up, a->up_taps, src, B, a->n_old, a->h1,
                                                      row, x0, len, rp, cs, a->band_lo,
                                                      a->band_n)) {
                    free(rp), free(cs), free(ar.base);
                    return -2;
                }
                for (int64_t k = 0; k < a->n_new; k++) {
                    float *g0 = a->g_lvl0 + (k * a->height + row) * a->width + x0;
                    const float *s0 = src + (a->n_old + k) * B;
                    for (int64_t i = 0; i < len; i++) g0[i] += s0[i];
                }
                p += len;
            }
            continue;
        }
        const float *fp = a->feat + n0, *tp = a->target + n0;
        float *gp = grad ? a->grad_feat + n0 : NULL;
        ptrdiff_t ldf = ld, ldt = ld, ldg = ld;
        if (m < B) {
            memset(ft, 0, (size_t)g_n * B * f);
            memset(tt, 0, (size_t)c_n * B * f);
            for (int g = 0; g < g_n; g++) memcpy(ft + g * B, fp + g * ldf, (size_t)m * f);
            for (int c = 0; c < c_n; c++) memcpy(tt + c * B, tp + c * ldt, (size_t)m * f);
            fp = ft, tp = tt, gp = grad ? gt : NULL;
            ldf = ldt = ldg = B;
        }
        ops->dense(fp, ldf, g_n, w1t, h_n, h_n, a->b1, 1, NULL, 0, hid, B, nv);
        ops->dense(hid, B, h_n, w2t, c_n, c_n, a->b2, 0, NULL, 0, go, B, nv);
        total += ops->sq_error(go, B, tp, ldt, c_n, nv, m, two_s, L_gb2);
        if (!grad) continue;
        ops->backout(hid, B, h_n, go, B, c_n, a->w2, nv, L_gw2, L_gb1); /* hid := its gradient */
        ops->outer(hid, B, h_n, fp, ldf, g_n, nv, L_gw1, g_n);
        ops->dense(hid, B, h_n, a->w1, g_n, g_n, NULL, 0, NULL, 0, gp, ldg, nv);
        if (m < B)
            for (int g = 0; g < g_n; g++) memcpy(a->grad_feat + n0 + g * ld, gt + g * B, (size_t)m * f);
    }
    reduce_lanes(lanes, n_lanes, out);
    *sse = total;
    free(rp), free(cs), free(ar.base);
    return 0;
}

/* ---- ARM rate ------------------------------------------------------------------------------ */

/* The i in [0, mc) with 0 <= x0 + s * i < w, as [*lo, *hi). */
static void valid_range(int64_t x0, int64_t s, int64_t w, int mc, int *lo, int *hi) {
    int64_t a = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
    int64_t b = x0 > w - 1 ? 0 : (w - 1 - x0) / s + 1;
    if (b > mc) b = mc;
    if (a > b) a = b;
    *lo = (int)a, *hi = (int)b;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

int nm_arm_part(const nm_arm_args *a, int64_t t0, int64_t t1, float *out, double *bits,
                const nm_ops *ops) {
    const int CH = NM_ARM_CHUNK, n_ctx = a->n_sp + a->n_par, A = a->a_n;
    const size_t f = sizeof(float);
    const size_t n_lanes = (size_t)n_ctx * A + A + (size_t)A * A + A + (size_t)A * 2 + 2;
    size_t bytes = round32((size_t)n_ctx * CH * f) * 3 + round32((size_t)A * CH * f) * 2 +
                   round32((size_t)2 * CH * f) * 2 + round32((size_t)CH * f) * 2 +
                   round32((size_t)n_ctx * A * f) + round32((size_t)A * A * f) +
                   round32((size_t)A * 2 * f) + round32(n_lanes * 8 * f) +
                   round32((size_t)n_ctx * sizeof(int)) * 2 + 512;
    arena ar;
    if (arena_open(&ar, bytes)) return -1;
    float *ctx = take(&ar, (size_t)n_ctx * CH, f);
    int32_t *where = (int32_t *)take(&ar, (size_t)n_ctx * CH, sizeof(int32_t)); /* parents' x */
    int *sp_lo = (int *)take(&ar, (size_t)n_ctx, sizeof(int));
    int *sp_hi = (int *)take(&ar, (size_t)n_ctx, sizeof(int));
    float *gctx = take(&ar, (size_t)n_ctx * CH, f);
    float *h1 = take(&ar, (size_t)A * CH, f), *h2 = take(&ar, (size_t)A * CH, f);
    float *o = take(&ar, (size_t)2 * CH, f), *gm = take(&ar, (size_t)2 * CH, f);
    float *vals = take(&ar, CH, f), *gv = take(&ar, CH, f);
    float *w0t = take(&ar, (size_t)n_ctx * A, f), *w1t = take(&ar, (size_t)A * A, f);
    float *w2t = take(&ar, (size_t)A * 2, f);
    float *lanes = take(&ar, n_lanes * 8, f);
    float *L_gw0 = lanes, *L_gb0 = L_gw0 + (size_t)n_ctx * A * 8;
    float *L_gw1 = L_gb0 + (size_t)A * 8, *L_gb1 = L_gw1 + (size_t)A * A * 8;
    float *L_gw2 = L_gb1 + (size_t)A * 8, *L_gb2 = L_gw2 + (size_t)2 * A * 8;
    memset(lanes, 0, n_lanes * 8 * f);
    for (int j = 0; j < A; j++) {
        for (int k = 0; k < n_ctx; k++) w0t[k * A + j] = a->w0[j * n_ctx + k];
        for (int k = 0; k < A; k++) w1t[k * A + j] = a->w1[j * A + k];
        for (int c = 0; c < 2; c++) w2t[j * 2 + c] = a->w2[c * A + j];
    }
    const float *flat = a->flat;
    float *gf = a->g_flat;
    const int want = a->scale != 0.0f && gf != NULL;
    if (gf) memset(gf, 0, (size_t)a->n_flat * f); /* here, in the part's thread */
    double total = 0.0;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t g = a->tasks[2 * t], y = a->tasks[2 * t + 1];
        const int64_t h = a->shapes[2 * g], w = a->shapes[2 * g + 1], s = a->strides[g];
        const int64_t px = a->phases[2 * g + 1], base = a->offs[g], p = a->parents[g];
        const int64_t m = (w - px + s - 1) / s, row = base + y * w;
        const float wt = a->weights[g], sw = a->scale * wt;
        double tb = 0.0;
        for (int64_t i0 = 0; i0 < m; i0 += CH) {
            const int mc = (int)(m - i0 < CH ? m - i0 : CH), nv = (mc + 7) / 8, ncol = nv * 8;
            for (int k = 0; k < a->n_sp; k++) { /* causal neighbours: a strided row */
                const int64_t yy = y + a->ctx_off[2 * k];
                const int64_t x0 = px + s * i0 + a->ctx_off[2 * k + 1];
                int lo = 0, hi = 0;
                if (yy >= 0 && yy < h) valid_range(x0, s, w, mc, &lo, &hi);
                /* flat[at + s * i] lies in the grid for lo <= i < hi */
                ops->gather(flat, base + yy * w + x0, s, lo, hi, ncol, ctx + k * CH);
                sp_lo[k] = lo, sp_hi[k] = hi;
            }
            for (int k = 0; k < a->n_par; k++) { /* the parent grid, clamped */
                float *c = ctx + (a->n_sp + k) * CH;
                int32_t *wh = where + k * CH;
                if (p < 0) {
                    for (int i = 0; i < ncol; i++) c[i] = 0.0f;
                    continue;
                }
                const int64_t hp = a->shapes[2 * p], wp = a->shapes[2 * p + 1];
                const int64_t yy = clamp64((y >> 1) + a->par_off[2 * k], 0, hp - 1);
                const float *prow = flat + a->offs[p] + yy * wp;
                const int64_t dx = a->par_off[2 * k + 1];
                for (int i = 0; i < mc; i++) {
                    const int64_t xx = clamp64(((px + s * (i0 + i)) >> 1) + dx, 0, wp - 1);
                    wh[i] = (int32_t)xx;
                    c[i] = prow[xx];
                }
                for (int i = mc; i < ncol; i++) c[i] = 0.0f;
            }
            ops->gather(flat, row + px + s * i0, s, 0, mc, ncol, vals);
            ops->dense(ctx, CH, n_ctx, w0t, A, A, a->b0, 1, NULL, 0, h1, CH, nv);
            ops->dense(h1, CH, A, w1t, A, A, a->b1, 1, NULL, 0, h2, CH, nv);
            ops->dense(h2, CH, A, w2t, 2, 2, a->b2, 0, NULL, 0, o, CH, nv);
            tb += ops->laplace(vals, o, o + CH, nv, mc, a->logb_lo, a->logb_hi, sw, gv, gm, gm + CH);
            if (!want) continue;
            ops->scatter(gf, row + px + s * i0, s, 0, mc, gv);
            ops->rowsum(gm, nv, L_gb2);
            ops->rowsum(gm + CH, nv, L_gb2 + 8);
            ops->backout(h2, CH, A, gm, CH, 2, a->w2, nv, L_gw2, L_gb1); /* h2 := d2 */
            ops->outer(h1, CH, A, h2, CH, A, nv, L_gw1, A);
            ops->dense(h2, CH, A, a->w1, A, A, NULL, 0, h1, CH, h1, CH, nv); /* h1 := d1 */
            for (int k = 0; k < A; k++) ops->rowsum(h1 + k * CH, nv, L_gb0 + k * 8);
            ops->outer(ctx, CH, n_ctx, h1, CH, A, nv, L_gw0, A);
            ops->dense(h1, CH, A, a->w0, n_ctx, n_ctx, NULL, 0, NULL, 0, gctx, CH, nv);
            for (int k = 0; k < a->n_sp; k++) {
                const int64_t yy = y + a->ctx_off[2 * k];
                const int64_t x0 = px + s * i0 + a->ctx_off[2 * k + 1];
                ops->scatter(gf, base + yy * w + x0, s, sp_lo[k], sp_hi[k], gctx + k * CH);
            }
            if (p >= 0) {
                const int64_t hp = a->shapes[2 * p], wp = a->shapes[2 * p + 1];
                for (int k = 0; k < a->n_par; k++) {
                    const int64_t yy = clamp64((y >> 1) + a->par_off[2 * k], 0, hp - 1);
                    float *dst = gf + a->offs[p] + yy * wp;
                    const int32_t *wh = where + k * CH;
                    const float *gc = gctx + (a->n_sp + k) * CH;
                    for (int i = 0; i < mc; i++) dst[wh[i]] += gc[i];
                }
            }
        }
        total += wt * tb;
    }
    float *o_gw0 = out, *o_gb0 = o_gw0 + (size_t)n_ctx * A, *o_gw1 = o_gb0 + A;
    float *o_gb1 = o_gw1 + (size_t)A * A, *o_gw2 = o_gb1 + A, *o_gb2 = o_gw2 + (size_t)A * 2;
    reduce_lanes(L_gw0, (size_t)n_ctx * A, o_gw0);
    reduce_lanes(L_gb0, A, o_gb0);
    reduce_lanes(L_gw1, (size_t)A * A, o_gw1);
    reduce_lanes(L_gb1, A, o_gb1);
    for (int k = 0; k < A; k++)
        for (int c = 0; c < 2; c++) reduce_lanes(L_gw2 + ((size_t)c * A + k) * 8, 1, o_gw2 + k * 2 + c);
    reduce_lanes(L_gb2, 2, o_gb2);
    *bits = total;
    free(ar.base);
    return 0;
}
