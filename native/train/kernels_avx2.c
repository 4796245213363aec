/* AVX2/FMA building blocks of the training kernels (see nm_train.h). Compiled for any x86
 * target with per-function target attributes; nm_ops_select uses them only on a CPU that
 * reports AVX2 and FMA.
 *
 * Register tiling: `dense` keeps a tile of 3 pixel vectors x 4 outputs (12 accumulators) in
 * registers; per input row it loads 3 vectors and broadcasts 4 weights, 7 loads for 12 FMAs.
 * `outer` keeps 4 x 3 weight-gradient accumulators over all pixels of a block: per pixel
 * vector it loads 3 + 4 vectors for 12 FMAs, and touches memory (the lanes) once per block. */
#include "nm_train.h"

#if defined(NM_HAVE_AVX2)

#include <immintrin.h>
#include <math.h>

#define AVX2_FN static __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* ---- dense: Y = act(bias + W^T X) ------------------------------------------------------------ */

AVX2_INLINE void dense_tile(const int NP, const int NJ, const float *X, ptrdiff_t ldx, int n_in,
                            const float *W, ptrdiff_t ldw, const float *bias, int relu,
                            const float *mask, ptrdiff_t ldm, float *Y, ptrdiff_t ldy) {
    __m256 acc[3][4];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        const __m256 b = bias ? _mm256_set1_ps(bias[j]) : _mm256_setzero_ps();
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) acc[p][j] = b;
    }
    for (int k = 0; k < n_in; k++) {
        __m256 x[3];
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) x[p] = _mm256_loadu_ps(X + k * ldx + 8 * p);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            const __m256 w = _mm256_broadcast_ss(W + k * ldw + j);
#pragma GCC unroll 3
            for (int p = 0; p < NP; p++) acc[p][j] = _mm256_fmadd_ps(x[p], w, acc[p][j]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) {
            __m256 v = acc[p][j];
            if (relu) v = _mm256_max_ps(v, zero);
            if (mask) {
                const __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(mask + j * ldm + 8 * p), zero, _CMP_GT_OQ);
                v = _mm256_and_ps(v, keep);
            }
            _mm256_storeu_ps(Y + j * ldy + 8 * p, v);
        }
    }
}

#define DENSE_CASE(np, nj)                                                                    \
    case (np) * 8 + (nj):                                                                     \
        dense_tile(np, nj, X + 8 * v, ldx, n_in, W + j, ldw, bias ? bias + j : NULL, relu,    \
                   mask ? mask + j * ldm + 8 * v : NULL, ldm, Y + j * ldy + 8 * v, ldy);        \
        break;

AVX2_FN void dense_avx2(const float *X, ptrdiff_t ldx, int n_in, const float *W, ptrdiff_t ldw,
                        int n_out, const float *bias, int relu, const float *mask, ptrdiff_t ldm,
                        float *Y, ptrdiff_t ldy, int nv) {
    for (int v = 0; v < nv; v += 3) {
        const int np = nv - v < 3 ? nv - v : 3;
        for (int j = 0; j < n_out; j += 4) {
            const int nj = n_out - j < 4 ? n_out - j : 4;
            switch (np * 8 + nj) {
                DENSE_CASE(3, 4)
                DENSE_CASE(3, 3)
                DENSE_CASE(3, 2)
                DENSE_CASE(3, 1)
                DENSE_CASE(2, 4)
                DENSE_CASE(2, 3)
                DENSE_CASE(2, 2)
                DENSE_CASE(2, 1)
                DENSE_CASE(1, 4)
                DENSE_CASE(1, 3)
                DENSE_CASE(1, 2)
                DENSE_CASE(1, 1)
                default:
                    break;
            }
        }
    }
}

/* ---- outer: lanes += Y X^T over the pixels ------------------------------------------------- */

AVX2_INLINE void outer_tile(const int NY, const int NX, const float *Y, ptrdiff_t ldy,
                            const float *X, ptrdiff_t ldx, int nv, float *L, ptrdiff_t ldl) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int i = 0; i < NY; i++)
#pragma GCC unroll 3
        for (int q = 0; q < NX; q++) acc[i][q] = _mm256_setzero_ps();
    for (int v = 0; v < nv; v++) {
        __m256 x[3];
#pragma GCC unroll 3
        for (int q = 0; q < NX; q++) x[q] = _mm256_loadu_ps(X + q * ldx + 8 * v);
#pragma GCC unroll 4
        for (int i = 0; i < NY; i++) {
            const __m256 y = _mm256_loadu_ps(Y + i * ldy + 8 * v);
#pragma GCC unroll 3
            for (int q = 0; q < NX; q++) acc[i][q] = _mm256_fmadd_ps(y, x[q], acc[i][q]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NY; i++)
#pragma GCC unroll 3
        for (int q = 0; q < NX; q++) {
            float *l = L + (i * ldl + q) * 8;
            _mm256_storeu_ps(l, _mm256_add_ps(_mm256_loadu_ps(l), acc[i][q]));
        }
}

#define OUTER_CASE(ny, nx)                                                                   \
    case (ny) * 8 + (nx):                                                                    \
        outer_tile(ny, nx, Y + i * ldy, ldy, X + q * ldx, ldx, nv, L + (i * ldl + q) * 8, ldl); \
        break;

AVX2_FN void outer_avx2(const float *Y, ptrdiff_t ldy, int n_y, const float *X, ptrdiff_t ldx,
                        int n_x, int nv, float *L, ptrdiff_t ldl) {
    for (int i = 0; i < n_y; i += 4) {
        const int ny = n_y - i < 4 ? n_y - i : 4;
        for (int q = 0; q < n_x; q += 3) {
            const int nx = n_x - q < 3 ? n_x - q : 3;
            switch (ny * 8 + nx) {
                OUTER_CASE(4, 3)
                OUTER_CASE(4, 2)
                OUTER_CASE(4, 1)
                OUTER_CASE(3, 3)
                OUTER_CASE(3, 2)
                OUTER_CASE(3, 1)
                OUTER_CASE(2, 3)
                OUTER_CASE(2, 2)
                OUTER_CASE(2, 1)
                OUTER_CASE(1, 3)
                OUTER_CASE(1, 2)
                OUTER_CASE(1, 1)
                default:
                    break;
            }
        }
    }
}

/* ---- backout: backward of the small output layer through the ReLU ------------------------- */

AVX2_INLINE void backout_n(const int NC, float *H, ptrdiff_t ldh, int n_h, const float *G,
                           ptrdiff_t ldg, const float *W, int nv, float *Lw, float *Lb) {
    const __m256 zero = _mm256_setzero_ps();
    for (int k = 0; k < n_h; k++) {
        __m256 w[4], a[4], bsum = zero;
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) w[c] = _mm256_broadcast_ss(W + c * n_h + k), a[c] = zero;
        float *h = H + k * ldh;
        for (int v = 0; v < nv; v++) {
            const __m256 hv = _mm256_loadu_ps(h + 8 * v);
            __m256 d = zero;
#pragma GCC unroll 4
            for (int c = 0; c < NC; c++) {
                const __m256 g = _mm256_loadu_ps(G + c * ldg + 8 * v);
                a[c] = _mm256_fmadd_ps(g, hv, a[c]);
                d = _mm256_fmadd_ps(w[c], g, d);
            }
            d = _mm256_and_ps(d, _mm256_cmp_ps(hv, zero, _CMP_GT_OQ));
            bsum = _mm256_add_ps(bsum, d);
            _mm256_storeu_ps(h + 8 * v, d);
        }
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            float *l = Lw + (c * n_h + k) * 8;
            _mm256_storeu_ps(l, _mm256_add_ps(_mm256_loadu_ps(l), a[c]));
        }
        _mm256_storeu_ps(Lb + k * 8, _mm256_add_ps(_mm256_loadu_ps(Lb + k * 8), bsum));
    }
}

AVX2_FN void backout_avx2(float *H, ptrdiff_t ldh, int n_h, const float *G, ptrdiff_t ldg,
                          int n_c, const float *W, int nv, float *Lw, float *Lb) {
    switch (n_c) {
        case 1: backout_n(1, H, ldh, n_h, G, ldg, W, nv, Lw, Lb); break;
        case 2: backout_n(2, H, ldh, n_h, G, ldg, W, nv, Lw, Lb); break;
        case 3: backout_n(3, H, ldh, n_h, G, ldg, W, nv, Lw, Lb); break;
        default: backout_n(4, H, ldh, n_h, G, ldg, W, nv, Lw, Lb); break;
    }
}

/* ---- squared error ----------------------------------------------------------------------- */

AVX2_INLINE __m256 valid_lanes(int v, int m) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m - 8 * v), iota));
}

AVX2_INLINE double hsum(__m256 v) { /* fixed order: lanes 0..7 as the generic reduce_lanes */
    float t[8];
    _mm256_storeu_ps(t, v);
    float s = 0.0f;
    for (int i = 0; i < 8; i++) s += t[i];
    return s;
}

AVX2_FN double sq_error_avx2(float *O, ptrdiff_t ldo, const float *T, ptrdiff_t ldt, int n_c,
                             int nv, int m, float two_s, float *Lb) {
    const __m256 k2 = _mm256_set1_ps(two_s);
    double total = 0.0;
    for (int c = 0; c < n_c; c++) {
        __m256 s = _mm256_setzero_ps(), gsum = _mm256_setzero_ps();
        for (int v = 0; v < nv; v++) {
            __m256 e = _mm256_sub_ps(_mm256_loadu_ps(O + c * ldo + 8 * v), _mm256_loadu_ps(T + c * ldt + 8 * v));
            e = _mm256_and_ps(e, valid_lanes(v, m));
            s = _mm256_fmadd_ps(e, e, s);
            const __m256 g = _mm256_mul_ps(k2, e);
            gsum = _mm256_add_ps(gsum, g);
            _mm256_storeu_ps(O + c * ldo + 8 * v, g);
        }
        total += hsum(s);
        _mm256_storeu_ps(Lb + c * 8, _mm256_add_ps(_mm256_loadu_ps(Lb + c * 8), gsum));
    }
    return total;
}

/* ---- Laplace bits: exp and log as in Cephes (float, ~1 ulp over the ranges used) ----------- */

AVX2_INLINE __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

AVX2_INLINE __m256 log256(__m256 x) { /* x > 0, normal */
    const __m256i bits = _mm256_castps_si256(x);
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    __m256 mant = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    const __m256 small = _mm256_cmp_ps(mant, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(_mm256_set1_ps(1.0f), small));
    __m256 z = _mm256_add_ps(_mm256_sub_ps(mant, _mm256_set1_ps(1.0f)), _mm256_and_ps(mant, small));
    const __m256 zz = _mm256_mul_ps(z, z);
    __m256 y = _mm256_set1_ps(7.0376836292E-2f);
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(-1.1514610310E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(1.1676998740E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(-1.2420140846E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(1.4249322787E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(-1.6668057665E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(2.0000714765E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(-2.4999993993E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_set1_ps(3.3333331174E-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, z), zz);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), zz, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(z, y));
}

AVX2_FN double laplace_avx2(const float *V, const float *MU, const float *LB, int nv, int m,
                            float logb_lo, float logb_hi, float sw, float *GV, float *GMU,
                            float *GLB) {
    const __m256 zero = _mm256_setzero_ps(), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps(logb_lo), hi = _mm256_set1_ps(logb_hi);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 vsw = _mm256_set1_ps(sw), floor_p = _mm256_set1_ps(1.0f / 65536.0f);
    __m256 nbits = zero;
    for (int v = 0; v < nv; v++) {
        const __m256 valid = valid_lanes(v, m);
        const __m256 logb = _mm256_loadu_ps(LB + 8 * v);
        const __m256 inv_b = exp256(_mm256_sub_ps(zero, _mm256_min_ps(_mm256_max_ps(logb, lo), hi)));
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(V + 8 * v), _mm256_loadu_ps(MU + 8 * v));
        const __m256 u = _mm256_and_ps(d, absmask);
        const __m256 sgn = _mm256_sub_ps(_mm256_and_ps(one, _mm256_cmp_ps(d, zero, _CMP_GT_OQ)),
                                         _mm256_and_ps(one, _mm256_cmp_ps(d, zero, _CMP_LT_OQ)));
        const __m256 u_hi = _mm256_add_ps(u, half), u_lo = _mm256_sub_ps(u, half);
        const __m256 upper = _mm256_mul_ps(half, exp256(_mm256_sub_ps(zero, _mm256_mul_ps(u_hi, inv_b))));
        const __m256 a = _mm256_mul_ps(u_lo, inv_b);
        const __m256 ea = _mm256_mul_ps(half, exp256(_mm256_sub_ps(zero, _mm256_and_ps(a, absmask))));
        const __m256 lower = _mm256_blendv_ps(_mm256_sub_ps(one, ea), ea, _mm256_cmp_ps(a, zero, _CMP_GT_OQ));
        const __m256 p = _mm256_sub_ps(lower, upper);
        const __m256 ok = _mm256_and_ps(valid, _mm256_cmp_ps(p, floor_p, _CMP_GE_OQ));
        const __m256 dp_du = _mm256_mul_ps(inv_b, _mm256_sub_ps(upper, ea));
        const __m256 dp_dib = _mm256_fmsub_ps(u_hi, upper, _mm256_mul_ps(u_lo, ea));
        const __m256 p_safe = _mm256_blendv_ps(one, p, ok);
        const __m256 k = _mm256_div_ps(_mm256_set1_ps(-1.44269504088896341f), p_safe);
        const __m256 g_u = _mm256_mul_ps(k, dp_du);
        const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(logb, lo, _CMP_GE_OQ), _mm256_cmp_ps(logb, hi, _CMP_LE_OQ));
        const __m256 g_logb = _mm256_and_ps(in_range, _mm256_mul_ps(_mm256_mul_ps(k, dp_dib), _mm256_sub_ps(zero, inv_b)));
        const __m256 nb = _mm256_mul_ps(log256(p_safe), _mm256_set1_ps(-1.44269504088896341f));
        nbits = _mm256_add_ps(nbits, _mm256_blendv_ps(_mm256_and_ps(valid, _mm256_set1_ps(16.0f)), nb, ok));
        const __m256 gv = _mm256_and_ps(ok, _mm256_mul_ps(vsw, _mm256_mul_ps(g_u, sgn)));
        _mm256_storeu_ps(GV + 8 * v, gv);
        _mm256_storeu_ps(GMU + 8 * v, _mm256_sub_ps(zero, gv));
        _mm256_storeu_ps(GLB + 8 * v, _mm256_and_ps(ok, _mm256_mul_ps(vsw, g_logb)));
    }
    return hsum(nbits);
}

AVX2_FN void rowsum_avx2(const float *R, int nv, float *S) {
    __m256 s = _mm256_loadu_ps(S);
    for (int v = 0; v < nv; v++) s = _mm256_add_ps(s, _mm256_loadu_ps(R + 8 * v));
    _mm256_storeu_ps(S, s);
}

/* ---- strided rows: contiguous (s = 1) and every other element (s = 2) in vectors --------- */

AVX2_FN void gather_avx2(const float *F, int64_t at, int64_t s, int lo, int hi, int n, float *D) {
    for (int i = 0; i < lo; i++) D[i] = 0.0f;
    int i = lo;
    if (s == 1) {
        for (; i + 8 <= hi; i += 8) _mm256_storeu_ps(D + i, _mm256_loadu_ps(F + at + i));
    } else if (s == 2) { /* reads F[at + 2i .. at + 2i + 15]: inside while i + 8 < hi */
        for (; i + 8 < hi; i += 8) {
            const float *f = F + at + 2 * i;
            const __m256 ev = _mm256_shuffle_ps(_mm256_loadu_ps(f), _mm256_loadu_ps(f + 8), 0x88);
            _mm256_storeu_ps(D + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xd8)));
        }
    }
    for (; i < hi; i++) D[i] = F[at + s * i];
    for (i = hi > lo ? hi : lo; i < n; i++) D[i] = 0.0f;
}

AVX2_FN void scatter_avx2(float *F, int64_t at, int64_t s, int lo, int hi, const float *G) {
    int i = lo;
    if (s == 1) {
        for (; i + 8 <= hi; i += 8) {
            float *f = F + at + i;
            _mm256_storeu_ps(f, _mm256_add_ps(_mm256_loadu_ps(f), _mm256_loadu_ps(G + i)));
        }
    } else if (s == 2) { /* adds 0.0 to the odd elements between: they keep their value */
        const __m256 zero = _mm256_setzero_ps();
        for (; i + 8 < hi; i += 8) {
            float *f = F + at + 2 * i;
            const __m256 g = _mm256_loadu_ps(G + i);
            const __m256 lo4 = _mm256_unpacklo_ps(g, zero), hi4 = _mm256_unpackhi_ps(g, zero);
            _mm256_storeu_ps(f, _mm256_add_ps(_mm256_loadu_ps(f), _mm256_permute2f128_ps(lo4, hi4, 0x20)));
            _mm256_storeu_ps(f + 8, _mm256_add_ps(_mm256_loadu_ps(f + 8), _mm256_permute2f128_ps(lo4, hi4, 0x31)));
        }
    }
    for (; i < hi; i++) F[at + s * i] += G[i];
}

/* ---- the rounding proxy: with e = exp(2a), tanh(a) = 1 - 2 / (e + 1) and 1 - tanh(a)^2 =
 * 4e / (e + 1)^2 (no cancellation where tanh is near +-1); |a| <= 0.5 / t ------------------- */

AVX2_INLINE __m256 tanh_sech2(__m256 a, __m256 *sech2) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp256(_mm256_add_ps(a, a));
    const __m256 r = _mm256_div_ps(one, _mm256_add_ps(e, one));
    *sech2 = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(4.0f), e), _mm256_mul_ps(r, r));
    return _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), r, one);
}

AVX2_FN void proxy_avx2(const float *Y, const float *N, int64_t n, float t, float *P, float *D) {
    const float k_s = 0.5f / tanhf(0.5f / t);
    const __m256 inv_t = _mm256_set1_ps(1.0f / t), k = _mm256_set1_ps(k_s);
    const __m256 kt = _mm256_set1_ps(k_s / t), half = _mm256_set1_ps(0.5f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 s1, s2;
        const __m256 y = _mm256_loadu_ps(Y + i);
        const __m256 m = _mm256_add_ps(_mm256_floor_ps(y), half);
        const __m256 th = tanh_sech2(_mm256_mul_ps(_mm256_sub_ps(y, m), inv_t), &s1);
        const __m256 z = _mm256_add_ps(_mm256_fmadd_ps(k, th, m), _mm256_loadu_ps(N + i));
        const __m256 m2 = _mm256_add_ps(_mm256_floor_ps(z), half);
        const __m256 th2 = tanh_sech2(_mm256_mul_ps(_mm256_sub_ps(z, m2), inv_t), &s2);
        _mm256_storeu_ps(P + i, _mm256_fmadd_ps(k, th2, m2));
        _mm256_storeu_ps(D + i, _mm256_mul_ps(_mm256_mul_ps(s1, kt), _mm256_mul_ps(s2, kt)));
    }
    if (i < n) nm_proxy_c(Y + i, N + i, n - i, t, P + i, D + i); /* the last few values */
}

/* ---- Adam: one pass over the values (torch's update is a dozen passes) ---------------------- */

AVX2_FN void adam_avx2(float *P, float *M, float *V, const float *G1, const float *D1,
                       const float *G2, const float *D2, int64_t n, float step, float b1,
                       float a1, float b2, float a2, float c2, float eps) {
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2);
    const __m256 va1 = _mm256_set1_ps(a1), va2 = _mm256_set1_ps(a2);
    const __m256 vc2 = _mm256_set1_ps(c2), veps = _mm256_set1_ps(eps);
    const __m256 vstep = _mm256_set1_ps(step);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(G1 + i);
        if (D1) g = _mm256_mul_ps(g, _mm256_loadu_ps(D1 + i));
        if (G2) g = _mm256_add_ps(g, _mm256_mul_ps(_mm256_loadu_ps(G2 + i), _mm256_loadu_ps(D2 + i)));
        const __m256 m = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(M + i)), _mm256_mul_ps(va1, g));
        const __m256 v = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(V + i)),
                                       _mm256_mul_ps(_mm256_mul_ps(va2, g), g));
        const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(v, vc2)), veps);
        _mm256_storeu_ps(M + i, m);
        _mm256_storeu_ps(V + i, v);
        _mm256_storeu_ps(P + i, _mm256_sub_ps(_mm256_loadu_ps(P + i),
                                              _mm256_div_ps(_mm256_mul_ps(vstep, m), den)));
    }
    if (i < n)
        nm_adam_c(P + i, M + i, V + i, G1 + i, D1 ? D1 + i : NULL, G2 ? G2 + i : NULL,
                  G2 ? D2 + i : NULL, n - i, step, b1, a1, b2, a2, c2, eps);
}

/* ---- Gaussian noise (nm_gauss_c's hash and inverse CDF, 8 values at a time; both branches of
 * the inverse CDF are computed and blended) ------------------------------------------------ */

AVX2_INLINE __m256i fmix256(__m256i h) {
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)NM_FMIX_1));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)NM_FMIX_2));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

AVX2_INLINE __m256 poly256(const float *c, int n, __m256 x) { /* Horner over c[0..n-1] */
    __m256 acc = _mm256_set1_ps(c[0]);
    for (int k = 1; k < n; k++) acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(c[k]));
    return acc;
}

AVX2_INLINE __m256 gauss8(__m256i idx, __m256i k0, __m256i k1, __m256 vs) {
    const __m256i golden = _mm256_set1_epi32((int)NM_GOLDEN);
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 tail = _mm256_set1_ps(NM_GAUSS_TAIL);
    const __m256i h =
        fmix256(_mm256_xor_si256(fmix256(_mm256_add_epi32(_mm256_mullo_epi32(idx, golden), k0)), k1));
    const __m256 u = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(h, 8)), half),
                                   _mm256_set1_ps(1.0f / 16777216.0f));
    const __m256 q = _mm256_sub_ps(u, half), r = _mm256_mul_ps(q, q);
    const __m256 centre = _mm256_div_ps(_mm256_mul_ps(poly256(NM_GAUSS_A, 6, r), q), poly256(NM_GAUSS_B, 6, r));
    const __m256 lower = _mm256_cmp_ps(u, half, _CMP_LT_OQ);
    const __m256 near = _mm256_blendv_ps(_mm256_sub_ps(one, u), u, lower); /* min(u, 1-u) */
    const __m256 t = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log256(near)));
    __m256 tz = _mm256_div_ps(poly256(NM_GAUSS_C, 6, t), poly256(NM_GAUSS_D, 5, t));
    tz = _mm256_blendv_ps(_mm256_sub_ps(_mm256_setzero_ps(), tz), tz, lower);
    const __m256 in_tail = _mm256_cmp_ps(near, tail, _CMP_LE_OQ);
    return _mm256_mul_ps(vs, _mm256_blendv_ps(centre, tz, in_tail));
}

/* every value from the vector formula (the last n % 8 too, through a padded vector), so a
 * sample depends on its key and index only, not on how the indices are split into calls */
AVX2_FN void gauss_avx2(float *N, int64_t i0, int64_t n, float sigma, uint64_t key) {
    const __m256i k0 = _mm256_set1_epi32((int)(uint32_t)key);
    const __m256i k1 = _mm256_set1_epi32((int)(uint32_t)(key >> 32));
    const __m256i step8 = _mm256_set1_epi32(8);
    const __m256 vs = _mm256_set1_ps(sigma);
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)i0),
                                   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8, idx = _mm256_add_epi32(idx, step8))
        _mm256_storeu_ps(N + i, gauss8(idx, k0, k1, vs));
    if (i < n) {
        float last[8];
        _mm256_storeu_ps(last, gauss8(idx, k0, k1, vs));
        for (int64_t j = i; j < n; j++) N[j] = last[j - i];
    }
}

const nm_ops nm_ops_avx2 = {dense_avx2,  outer_avx2,  backout_avx2, sq_error_avx2, laplace_avx2,
                            rowsum_avx2, gather_avx2, scatter_avx2, proxy_avx2,    adam_avx2,
                            gauss_avx2};

#else
typedef int nm_no_avx2; /* ISO C forbids an empty translation unit */
#endif
