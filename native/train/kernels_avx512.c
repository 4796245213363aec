/* AVX-512 versions of the two building blocks that carry almost all the FLOPs, `dense` and
 * `outer` (see nm_train.h), on vectors of 16 pixels; the other blocks are AVX2's. Chosen at
 * run time where the CPU reports AVX-512F (compiled with a target attribute, so the build
 * flags stay portable). Same register tiles as the AVX2 ones (3 pixel vectors x 4 outputs,
 * 4 x 3 weight-gradient accumulators), twice the pixels per instruction. An odd 8-pixel
 * vector at the end of a block goes to the AVX2 version; `outer` folds its 16 lanes into the
 * 8 of the lane buffers (low half + high half), a fixed order. */
#include "nm_train.h"

#if defined(NM_HAVE_AVX2)

#include <immintrin.h>

#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

AVX512_INLINE void dense_tile16(const int NP, const int NJ, const float *X, ptrdiff_t ldx, int n_in,
                                const float *W, ptrdiff_t ldw, const float *bias, int relu,
                                const float *mask, ptrdiff_t ldm, float *Y, ptrdiff_t ldy) {
    __m512 acc[3][4];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        const __m512 b = bias ? _mm512_set1_ps(bias[j]) : _mm512_setzero_ps();
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) acc[p][j] = b;
    }
    for (int k = 0; k < n_in; k++) {
        __m512 x[3];
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) x[p] = _mm512_loadu_ps(X + k * ldx + 16 * p);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            const __m512 w = _mm512_set1_ps(W[k * ldw + j]);
#pragma GCC unroll 3
            for (int p = 0; p < NP; p++) acc[p][j] = _mm512_fmadd_ps(x[p], w, acc[p][j]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) {
            __m512 v = acc[p][j];
            if (relu) v = _mm512_max_ps(v, zero);
            if (mask) {
                const __mmask16 keep = _mm512_cmp_ps_mask(_mm512_loadu_ps(mask + j * ldm + 16 * p), zero, _CMP_GT_OQ);
                v = _mm512_maskz_mov_ps(keep, v);
            }
            _mm512_storeu_ps(Y + j * ldy + 16 * p, v);
        }
    }
}

#define DENSE16_CASE(np, nj)                                                                   \
    case (np) * 8 + (nj):                                                                      \
        dense_tile16(np, nj, X + 16 * v, ldx, n_in, W + j, ldw, bias ? bias + j : NULL, relu,  \
                     mask ? mask + j * ldm + 16 * v : NULL, ldm, Y + j * ldy + 16 * v, ldy);     \
        break;

__attribute__((target("avx512f,avx2,fma"))) void nm_dense_avx512(const float *X, ptrdiff_t ldx, int n_in, const float *W,
                            ptrdiff_t ldw, int n_out, const float *bias, int relu,
                            const float *mask, ptrdiff_t ldm, float *Y, ptrdiff_t ldy, int nv) {
    const int nz = nv / 2; /* 16-pixel vectors */
    for (int v = 0; v < nz; v += 3) {
        const int np = nz - v < 3 ? nz - v : 3;
        for (int j = 0; j < n_out; j += 4) {
            const int nj = n_out - j < 4 ? n_out - j : 4;
            switch (np * 8 + nj) {
                DENSE16_CASE(3, 4)
                DENSE16_CASE(3, 3)
                DENSE16_CASE(3, 2)
                DENSE16_CASE(3, 1)
                DENSE16_CASE(2, 4)
                DENSE16_CASE(2, 3)
                DENSE16_CASE(2, 2)
                DENSE16_CASE(2, 1)
                DENSE16_CASE(1, 4)
                DENSE16_CASE(1, 3)
                DENSE16_CASE(1, 2)
                DENSE16_CASE(1, 1)
                default:
                    break;
            }
        }
    }
    if (nv & 1) {
        const int o = 16 * nz;
        nm_ops_avx2.dense(X + o, ldx, n_in, W, ldw, n_out, bias, relu, mask ? mask + o : NULL, ldm,
                          Y + o, ldy, 1);
    }
}

AVX512_INLINE void outer_tile16(const int NY, const int NX, const float *Y, ptrdiff_t ldy,
                                const float *X, ptrdiff_t ldx, int nz, float *L, ptrdiff_t ldl) {
    __m512 acc[4][3];
#pragma GCC unroll 4
    for (int i = 0; i < NY; i++)
#pragma GCC unroll 3
        for (int q = 0; q < NX; q++) acc[i][q] = _mm512_setzero_ps();
    for (int v = 0; v < nz; v++) {
        __m512 x[3];
#pragma GCC unroll 3
        for (int q = 0; q < NX; q++) x[q] = _mm512_loadu_ps(X + q * ldx + 16 * v);
#pragma GCC unroll 4
        for (int i = 0; i < NY; i++) {
            const __m512 y = _mm512_loadu_ps(Y + i * ldy + 16 * v);
#pragma GCC unroll 3
            for (int q = 0; q < NX; q++) acc[i][q] = _mm512_fmadd_ps(y, x[q], acc[i][q]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NY; i++)
#pragma GCC unroll 3
        for (int q = 0; q < NX; q++) {
            float *l = L + (i * ldl + q) * 8;
            const __m256 lo = _mm512_castps512_ps256(acc[i][q]);
            const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i][q]), 1));
            _mm256_storeu_ps(l, _mm256_add_ps(_mm256_loadu_ps(l), _mm256_add_ps(lo, hi)));
        }
}

#define OUTER16_CASE(ny, nx)                                                                    \
    case (ny) * 8 + (nx):                                                                       \
        outer_tile16(ny, nx, Y + i * ldy, ldy, X + q * ldx, ldx, nz, L + (i * ldl + q) * 8, ldl); \
        break;

__attribute__((target("avx512f,avx2,fma"))) void nm_outer_avx512(const float *Y, ptrdiff_t ldy, int n_y, const float *X, ptrdiff_t ldx,
                            int n_x, int nv, float *L, ptrdiff_t ldl) {
    const int nz = nv / 2;
    if (nz)
        for (int i = 0; i < n_y; i += 4) {
            const int ny = n_y - i < 4 ? n_y - i : 4;
            for (int q = 0; q < n_x; q += 3) {
                const int nx = n_x - q < 3 ? n_x - q : 3;
                switch (ny * 8 + nx) {
                    OUTER16_CASE(4, 3)
                    OUTER16_CASE(4, 2)
                    OUTER16_CASE(4, 1)
                    OUTER16_CASE(3, 3)
                    OUTER16_CASE(3, 2)
                    OUTER16_CASE(3, 1)
                    OUTER16_CASE(2, 3)
                    OUTER16_CASE(2, 2)
                    OUTER16_CASE(2, 1)
                    OUTER16_CASE(1, 3)
                    OUTER16_CASE(1, 2)
                    OUTER16_CASE(1, 1)
                    default:
                        break;
                }
            }
        }
    if (nv & 1) {
        const int o = 16 * nz;
        nm_ops_avx2.outer(Y + o, ldy, n_y, X + o, ldx, n_x, 1, L, ldl);
    }
}

#else
typedef int nm_no_avx512; /* ISO C forbids an empty translation unit */
#endif
