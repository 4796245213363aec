/* Internal parts of the lossless / near-lossless engine (lossless.c): the binary arithmetic
 * coder, the adaptive probability models of one decision and the online least-squares
 * predictor. A port of src/neural_memory/lossless/{coder,models,ols}.py, bit-exact with it.
 *
 * Everything is integer. Where the numba engine stores into an int32 or uint16 array, the
 * value is reduced modulo 2^32 / 2^16 (numba computes in int64 and truncates on the store);
 * here the same stores go through unsigned arithmetic (NMEM_WRAP32), which is defined C and
 * gives the same bits. Python's floor division `//` is nmem_floordiv where an operand can be
 * negative; C's `/` where both are known to be non-negative. */
#ifndef NMEM_LOSSLESS_INTERNAL_H
#define NMEM_LOSSLESS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nmem_internal.h"

#if defined(__GNUC__) || defined(__clang__)
#define NMEM_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#define NMEM_INLINE static inline __attribute__((always_inline))
#else
#define NMEM_PREFETCH(p) ((void)0)
#define NMEM_INLINE static inline
#endif

/* int64 -> int32 keeping the low 32 bits (numba's store into an int32 array). */
#define NMEM_WRAP32(v) ((int32_t)(uint32_t)(uint64_t)(v))

/* Python's a // b for b != 0. */
NMEM_INLINE int64_t nmem_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* ---- tables (tables.py) ---- */
#define LL_COUNTER_LIMIT_MAX 1023

/* The adaptive tables start all zero (so that memory from calloc / mmap needs no writing, and
 * pages an image never touches cost nothing): each entry holds its value's difference from
 * the initial value, modulo the entry's width, and the initial values are added back where
 * an entry is read. Integer arithmetic modulo 2^16 / 2^32, so exactly the numba engine's
 * values (see ll_models). */
#define LL_MIX_DOT 24 /* the first-layer dot product's length: LL_NM + 1 inputs padded with zeros */
typedef struct ll_tables {
    int16_t squash[4096];    /* squash(x) for x + 2048, 12-bit probability */
    int16_t stretch_cm[4096]; /* the smallest x with squash(x) >= p, indexed by a counter's
                                 stored form: (p ^ 0x8000) >> 4 */
    int32_t recip[LL_COUNTER_LIMIT_MAX + 1];
    int64_t rates[1024]; /* models.rate_table(PARAMS[0]) */
    int32_t mix0[LL_MIX_DOT]; /* a first-layer weight set's initial weights */
    uint16_t apm0[33];        /* an APM's initial knots */
} ll_tables;

/* ---- the binary arithmetic coder (coder.py) ---- */
typedef struct ll_coder {
    uint32_t x1, x2, x; /* low and high bound; the decoder's 4-byte window */
    size_t pos;         /* next byte of buf to write (encoder) or read (decoder) */
    uint8_t *out;       /* encoder: the growing output */
    size_t cap;         /* encoder: bytes allocated at out */
    const uint8_t *in;  /* decoder: the stream (past the version byte) */
    size_t size;        /* decoder: its length */
    int enc;
    int nomem; /* encoder: a growth of out failed */
} ll_coder;

/* Make room for `more` further bytes (encoder). */
int ll_coder_reserve(ll_coder *c, size_t more);

NMEM_INLINE int ll_code_bit(ll_coder *c, int bit, uint32_t p1) {
    uint32_t x1 = c->x1, x2 = c->x2;
    uint32_t xmid = x1 + (uint32_t)(((uint64_t)(x2 - x1) * p1) >> 16);
    if (!c->enc) bit = c->x <= xmid;
    if (bit)
        x2 = xmid;
    else
        x1 = xmid + 1;
    size_t pos = c->pos;
    if (c->enc) {
        while (((x1 ^ x2) & 0xFF000000u) == 0) {
            if (pos >= c->cap) { /* not reached with the per-row reserve; kept for safety */
                c->pos = pos;
                if (ll_coder_reserve(c, 64) != 0) {
                    c->nomem = 1;
                    pos = 0; /* keep writing somewhere harmless; the result is an error */
                }
            }
            c->out[pos++] = (uint8_t)(x2 >> 24);
            x1 <<= 8;
            x2 = (x2 << 8) | 255u;
        }
    } else {
        uint32_t x = c->x;
        while (((x1 ^ x2) & 0xFF000000u) == 0) {
            uint32_t b = pos < c->size ? c->in[pos] : 0u;
            pos++;
            x = (x << 8) | b;
            x1 <<= 8;
            x2 = (x2 << 8) | 255u;
        }
        c->x = x;
    }
    c->x1 = x1;
    c->x2 = x2;
    c->pos = pos;
    return bit;
}

/* ---- the models of one decision (models.py) ---- */
#define LL_NM 20        /* context models (counters) */
#define LL_NMIX 4       /* first-layer mixers */
#define LL_NAPM 3       /* APMs */
#define LL_MIX_SHIFT 16
#define LL_MIX_STRIDE 32 /* int32 slots per first-layer weight set */

/* The adaptive tables shared by every decision. cm, mix_w and apm start all zero: a counter
 * stores its probability XOR 0x8000 (1/2 initially) | hit count << 16 (one load for both);
 * a first-layer weight its value minus ll_tables.mix0[slot], an APM knot its value minus
 * ll_tables.apm0[knot], modulo 2^32 and 2^16. */
typedef struct ll_models {
    uint32_t *cm;    /* counters */
    int32_t *mix_w;  /* first-layer weight sets, LL_MIX_STRIDE slots each (weights, use count) */
    int64_t *mix_f;  /* second-layer weight sets, LL_NMIX + 1 each (stored as they are) */
    uint16_t *apm;   /* APMs: 33 knots per context */
    int64_t f_lr;    /* second-layer learning rate */
} ll_models;

/* Which table entries one sample's decisions use (the node is added to each). */
typedef struct ll_select {
    int64_t ctxoff[LL_NM];  /* counter index of each context model */
    int64_t msel[LL_NMIX];  /* weight set of each first-layer mixer (times NNODE) */
    int64_t fsel;           /* weight set of the second-layer mixer */
    int64_t asel[LL_NAPM];  /* context of each APM */
} ll_select;

/* The dot product of a stored weight set w (plus the initial weights w0) with xin. */
NMEM_INLINE int64_t ll_mix_out(int64_t dot) { /* the mixer's output: scaled, clamped to +-2047 */
    dot >>= LL_MIX_SHIFT;
    return dot > 2047 ? 2047 : dot < -2047 ? -2047 : dot;
}

NMEM_INLINE int64_t ll_mix32(const int32_t *w, const int32_t *w0, const int32_t *xin, int n) {
    int64_t dot = 0;
    for (int i = 0; i < n; i++) dot += (int64_t)(int32_t)((uint32_t)w[i] + (uint32_t)w0[i]) * xin[i];
    return ll_mix_out(dot);
}

NMEM_INLINE int64_t ll_mix64(const int64_t *w, const int64_t *xin, int n) {
    int64_t dot = 0;
    for (int i = 0; i < n; i++) dot += w[i] * xin[i];
    return ll_mix_out(dot);
}

/* Predict, code (or decode) and learn one bit (models.code_decision); returns the bit. */
NMEM_INLINE int ll_code_decision(ll_coder *coder, int bit, int64_t node, const ll_select *sel, ll_models *md,
                                 const ll_tables *tb) {
    int32_t xin[LL_MIX_DOT] = {0}; /* the inputs, then zeros up to LL_MIX_DOT */
    int64_t fx[LL_NMIX + 1], pr[LL_NMIX], akn[LL_NAPM], ak0[LL_NAPM];
    const int n1 = LL_NM + 1;
    for (int i = 0; i < LL_NM; i++) {
        int64_t j = sel->ctxoff[i] + node;
        const uint32_t pair = md->cm[j];
        int32_t n = (int32_t)(pair >> 16);
        int32_t v = tb->stretch_cm[(pair & 0xFFFFu) >> 4];
        if (n < 8) v = (v * (n + 1)) >> 3; /* a counter that has seen few events speaks softly */
        xin[i] = v;
    }
    xin[LL_NM] = 256;
    for (int j = 0; j < LL_NMIX; j++) {
        /* LL_MIX_DOT terms: the padding's inputs are 0, so the use count and the padding
         * slots of the weight set add nothing (and the loop has no remainder) */
        int64_t d = ll_mix32(md->mix_w + (sel->msel[j] + node) * LL_MIX_STRIDE, tb->mix0, xin, LL_MIX_DOT);
        fx[j] = d;
        pr[j] = tb->squash[d + 2048];
    }
    fx[LL_NMIX] = 256;
    int64_t wf = (sel->fsel + node) * (LL_NMIX + 1);
    int64_t dm = ll_mix64(md->mix_f + wf, fx, LL_NMIX + 1);
    int64_t pm = tb->squash[dm + 2048];
    int64_t psum = 0;
    int64_t s2 = dm + 2048, lo = s2 >> 7, wt = s2 & 127;
    for (int j = 0; j < LL_NAPM; j++) {
        int64_t a = (sel->asel[j] + node) * 33 + lo;
        const int64_t k0 = (uint16_t)(md->apm[a] + tb->apm0[lo]), k1 = (uint16_t)(md->apm[a + 1] + tb->apm0[lo + 1]);
        psum += (k0 * (128 - wt) + k1 * wt) >> 7;
        akn[j] = a + (wt >> 6);
        ak0[j] = tb->apm0[lo + (wt >> 6)];
    }
    int64_t pa6 = psum * 2; /* 6 x the mean of the 3 APMs */
    int64_t p = (pm * 32 + pa6) >> 3;
    if (p < 24)
        p = 24;
    else if (p > 65512)
        p = 65512;
    bit = ll_code_bit(coder, bit, (uint32_t)p);
    /* learn: each mixer by its own coding-cost gradient, counters, nearer APM knots */
    for (int j = 0; j < LL_NMIX; j++) {
        int32_t *w = md->mix_w + (sel->msel[j] + node) * LL_MIX_STRIDE;
        int32_t n = w[n1];
        if (n < 1023) w[n1] = n + 1;
        int64_t e = ((int64_t)(bit << 12) - pr[j]) * tb->rates[n];
        /* w[i] += (xin[i] * e) >> 18 in 32-bit lanes: |e| <= 4095 * 960 < 2^22 and
         * |xin[i]| <= 2048, so with e = e_hi * 2^18 + e_lo (0 <= e_lo < 2^18) the product
         * is xin e_hi 2^18 + xin e_lo, |xin e_lo| < 2^29, and the floor of its 2^-18 part is
         * xin e_hi + ((xin e_lo) >> 18): the same integer, without 64-bit products. */
        const int32_t e_hi = (int32_t)(e >> 18), e_lo = (int32_t)(e & ((1 << 18) - 1));
        uint32_t *uw = (uint32_t *)w;
        for (int i = 0; i < n1; i++) uw[i] += (uint32_t)(xin[i] * e_hi + ((xin[i] * e_lo) >> 18));
    }
    int64_t ef = ((int64_t)(bit << 12) - pm) * md->f_lr;
    for (int i = 0; i < LL_NMIX + 1; i++) md->mix_f[wf + i] += (fx[i] * ef) >> 14;
    int64_t target = (int64_t)bit << 16;
    for (int i = 0; i < LL_NM; i++) {
        int64_t j = sel->ctxoff[i] + node;
        const uint32_t pair = md->cm[j];
        const int64_t c0 = (pair & 0xFFFFu) ^ 0x8000u;
        uint32_t n = pair >> 16;
        const uint32_t p = (uint16_t)(c0 + (((target - c0) * tb->recip[n]) >> 16));
        if (n < LL_COUNTER_LIMIT_MAX) n++;
        md->cm[j] = (p ^ 0x8000u) | (n << 16);
    }
    for (int j = 0; j < LL_NAPM; j++) {
        int64_t v = (uint16_t)(md->apm[akn[j]] + ak0[j]);
        md->apm[akn[j]] = (uint16_t)(v + ((target - v) >> 6) - ak0[j]);
    }
    return bit;
}

/* ---- the online least-squares predictor (ols.py) ---- */
#define LL_N_SP 13
#define LL_N_RF 12
#define LL_NF_MAX (LL_N_SP + 2 * LL_N_RF) /* 37 */
#define LL_N_PHASE 4
#define LL_OLS_SHIFT 11
#define LL_RIDGE 8
#define LL_W_CLIP (1 << 19)
#define LL_SOLVE_EVERY 4

/* The models of all channels and pixel phases. */
typedef struct ll_ols {
    int32_t *a; /* decayed covariances, LL_NF_MAX x LL_NF_MAX per model */
    int64_t *b; /* decayed feature-target products, LL_NF_MAX per model */
    int32_t *w; /* weights (16 fraction bits), LL_NF_MAX per model */
    int64_t *n; /* updates seen per model */
} ll_ols;

NMEM_INLINE int64_t ll_ols_predict(const ll_ols *o, int64_t m, const int64_t *f, int n, int64_t w0) {
    const int32_t *w = o->w + m * LL_NF_MAX;
    int64_t s = 0;
    for (int i = 0; i < n; i++) s += (int64_t)w[i] * f[i];
    return w0 * 16 + (s >> 12);
}

/* ols.update: add the coded sample to model m and, if `solve`, run one Gauss-Seidel sweep.
 *
 * The covariance A is exactly symmetric (every update adds g_i g_j to both A[i][j] and
 * A[j][i], and the decay treats them alike), so only its upper triangle (j >= i) is kept up
 * to date here: the entries below the diagonal are never read. The sweep's h = A w is formed
 * from the upper triangle (each off-diagonal product added to both rows); integer sums in any
 * order are equal, so the weights are those of the numba engine, bit for bit.
 * Returns nonzero only if a pivot is zero (numba would raise ZeroDivisionError; it cannot
 * happen with samples in range, as the covariance's diagonal is a sum of squares). */
NMEM_INLINE int ll_ols_update(ll_ols *o, int64_t m, const int64_t *f, int n, int64_t t, int cs, int solve) {
    int32_t g[LL_NF_MAX];
    int64_t h[LL_NF_MAX];
    int32_t *am = o->a + m * LL_NF_MAX * LL_NF_MAX;
    int64_t *bv = o->b + m * LL_NF_MAX;
    int32_t *wv = o->w + m * LL_NF_MAX;
    int64_t ts = t >> cs;
    for (int j = 0; j < n; j++) g[j] = (int32_t)(f[j] >> cs);
    for (int i = 0; i < n; i++) {
        int32_t gi = g[i];
        bv[i] += gi * ts;
        uint32_t *row = (uint32_t *)(am + i * LL_NF_MAX);
        uint32_t ug = (uint32_t)gi;
        for (int j = i; j < n; j++) row[j] += ug * (uint32_t)g[j];
    }
    int64_t c = o->n[m] + 1;
    o->n[m] = c;
    if ((c & 7) == 0) {
        for (int i = 0; i < n; i++) {
            bv[i] -= bv[i] >> (LL_OLS_SHIFT - 3);
            int32_t *row = am + i * LL_NF_MAX;
            for (int j = i; j < n; j++) row[j] -= row[j] >> (LL_OLS_SHIFT - 3);
        }
    }
    if (!solve) return 0;
    for (int i = 0; i < n; i++) h[i] = 0;
    for (int i = 0; i < n; i++) {
        const int32_t *row = am + i * LL_NF_MAX;
        const int32_t wi = wv[i];
        int64_t acc = (int64_t)row[i] * wi;
        for (int j = i + 1; j < n; j++) {
            acc += (int64_t)row[j] * wv[j];
            h[j] += (int64_t)row[j] * wi;
        }
        h[i] += acc;
    }
    for (int i = 0; i < n; i++) {
        const int32_t *row = am + i * LL_NF_MAX;
        int64_t s = bv[i] * 65536 - LL_RIDGE * (int64_t)wv[i] - h[i];
        int64_t d = (int64_t)row[i] + LL_RIDGE;
        if (d == 0) return 1;
        int64_t wi = wv[i] + nmem_floordiv(s, d);
        if (wi > LL_W_CLIP)
            wi = LL_W_CLIP;
        else if (wi < -LL_W_CLIP)
            wi = -LL_W_CLIP;
        const int32_t dw = (int32_t)(wi - wv[i]); /* both within +-2^19 */
        wv[i] = (int32_t)wi;
        if (dw != 0)
            for (int k = i + 1; k < n; k++) h[k] += (int64_t)row[k] * dw;
    }
    return 0;
}

#endif /* NMEM_LOSSLESS_INTERNAL_H */
