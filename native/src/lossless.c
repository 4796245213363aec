/* The lossless / near-lossless engine: a port of src/neural_memory/lossless/engine.py (and
 * predictors.py, api.py), bit-exact with the numba engine. One function, ll_code_row, runs
 * both directions, so the encoder and the decoder execute the same arithmetic in the same
 * order by construction. See docs/lossless.md for the design and the payload format. */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* mmap, madvise */
#endif
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "lossless_internal.h"

/* The sample loop is compiled twice on x86-64 with glibc, for AVX2 and for the baseline, and
 * the loader picks one (as in lossy.c): the OLS covariance update's 32-bit products vectorise
 * only with SSE4.1/AVX2. Integer results, identical either way; NMEM_NO_CLONES turns it off. */
#if defined(__has_attribute)
#if __has_attribute(target_clones) && defined(__x86_64__) && defined(__GLIBC__) && !defined(NMEM_NO_CLONES)
#define LL_HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef LL_HOT
#define LL_HOT
#endif

#define LL_ENGINE_VERSION 3
#define LL_ROW_BLOCK 16
#define LL_MAX_BYTES_PER_SAMPLE 60

/* decision nodes: 0 zero flag, 1..16 unary, 17..20 sign, 21.. mantissa */
#define LL_NNODE 96
#define LL_NODE_UNARY 1
#define LL_NODE_SIGN 17
#define LL_NODE_MANT 13
#define LL_N_SPATIAL 11
#define LL_N_INTER 8
#define LL_NP_ALL (LL_N_SPATIAL + 2 * LL_N_INTER + 1) /* + the OLS predictor */
#define LL_N_E 24
#define LL_F_SETS 6

static const int64_t NCTX[LL_NM] = {96,  144, 192,  384,  324,  243, 4,   576, 729, 972,
                                    4374, 3750, 156, 156, 156, 156, 156, 156, 1521, 312};
static const int64_t MIX_SETS[LL_NMIX] = {24, 24, 169, 104};
static const int64_t APM_CTX[LL_NAPM] = {96, 81, 156};
static const int PI_NOREF[6] = {2, 3, 6, 7, 8, 10};
static const int PI_REF[6] = {LL_N_SPATIAL, LL_N_SPATIAL + 1, LL_N_SPATIAL + 2, LL_N_SPATIAL + 3, 2, 3};
/* PARAMS: mixer learning rate, blend epsilon, column-error decay (/8), weight of the reference
 * channel's errors, second-layer learning rate */
#define LL_P_LR 12
#define LL_P_BLEND_C 32
#define LL_P_VD 6
#define LL_P_XW 4
#define LL_P_FLR 2
static const int SQUASH_KNOTS[33] = {1,    2,    4,    6,    10,   17,   27,   45,   74,   120,  194,
                                     311,  488,  747,  1102, 1546, 2048, 2550, 2994, 3349, 3608, 3785,
                                     3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095};
/* the OLS neighbourhoods (ols.py) */
static const int SP_DY[LL_N_SP] = {-1, -1, -1, 0, -2, -2, -2, -1, -1, -2, -2, 0, -3};
static const int SP_DX[LL_N_SP] = {0, -1, 1, -2, 0, -1, 1, -2, 2, -2, 2, -3, 0};
static const int RF_DY[LL_N_RF] = {0, -1, -1, -1, 0, -2, -1, -1, -2, -2, 0, -3};
static const int RF_DX[LL_N_RF] = {0, 0, -1, 1, -2, 0, -2, 2, -1, 1, -3, 0};
#define LL_REACH_UP 3
#define LL_REACH_LEFT 3
#define LL_REACH_RIGHT 2

/* The whole state of one coding run (identical initial values on both sides). */
typedef struct ll_engine {
    /* the image */
    int64_t width, height, nch;
    int64_t maxval, near, step, mid, gap_shift, cs, kmax, maxp;
    int order[4], ref1[4], ref2[4], others[4][2];
    uint16_t *rec; /* reconstruction, height x width x nch */
    /* per-predictor error history and the quantized residuals of the last rows */
    int32_t *errb;  /* 2 rows x width x nch x LL_NP_ALL */
    int64_t *resb;  /* 3 rows x width x nch */
    int32_t *vacc;  /* decayed column errors, width x nch x LL_NP_ALL */
    /* adaptive models */
    ll_models md;
    ll_ols ols;
    int64_t cbase[LL_NM], mbase[LL_NMIX], abase[LL_NAPM];
    ll_tables tb;
    ll_coder coder;
    size_t cm_bytes, mix_bytes, apm_bytes; /* sizes of md.cm, md.mix_w, md.apm */
    nmem_lossless_context *ctx;            /* where the tables go back to, or NULL */
    uint8_t *dirty; /* with a context: one flag per block of LL_NNODE table entries a sample's
                       decisions may write (counters, then weight sets, then APM contexts) */
    size_t ncm_blocks, nmix_blocks, napm_blocks;
    int failed; /* a zero OLS pivot (never with valid samples) */
} ll_engine;

/* floor(log2(v)) for v >= 1 */
static inline int64_t ilog2(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return 63 - __builtin_clzll(v);
#else
    int64_t b = 0;
    while (v > 1) {
        v >>= 1;
        b++;
    }
    return b;
#endif
}

/* Log-like quantizer: 0, 1, 2, 3, then two levels per octave (engine.lq). */
static inline int64_t lq(int64_t v) {
    if (v < 4) return v;
    int64_t b = ilog2((uint64_t)v);
    return 2 * b + ((v >> (b - 1)) & 1);
}

/* Bits of v > 0; 0 for v <= 0 (engine.bitlen). */
static inline int64_t bitlen(int64_t v) { return v > 0 ? ilog2((uint64_t)v) + 1 : 0; }

static inline int64_t qd(int64_t d, int64_t sg, int64_t step) {
    int64_t v = step == 1 ? (d * sg) >> 3 : nmem_floordiv(d * sg, 8 * step);
    if (v == 0) return 4;
    int64_t m = v < 0 ? -v : v;
    int64_t lv = m < 2 ? 1 : (m < 4 ? 2 : (m < 12 ? 3 : 4));
    return v > 0 ? 4 + lv : 4 - lv;
}

static inline int64_t qd13(int64_t d, int64_t sg, int64_t step) {
    int64_t v = step == 1 ? (d * sg) >> 2 : nmem_floordiv(d * sg, 4 * step);
    if (v == 0) return 6;
    int64_t b = ilog2((uint64_t)(v < 0 ? -v : v)); /* the loop of engine.qd13: lv = 1 + min(b, 5) */
    int64_t lv = 1 + (b < 5 ? b : 5);
    return v > 0 ? 6 + lv : 6 - lv;
}

static inline int64_t clip2(int64_t v) { return v > 2 ? 4 : (v < -2 ? 0 : v + 2); }

static inline int64_t iabs(int64_t v) { return v < 0 ? -v : v; }

/* ---- tables ---- */
static void init_tables(ll_tables *tb) {
    for (int x = 0; x < 4096; x++) {
        int i = x >> 7, w = x & 127, hi = i + 1 < 32 ? i + 1 : 32;
        tb->squash[x] = (int16_t)((SQUASH_KNOTS[i] * (128 - w) + SQUASH_KNOTS[hi] * w + 64) >> 7);
    }
    int idx = 0;
    for (int p = 0; p < 4096; p++) {
        while (idx < 4096 && tb->squash[idx] < p) idx++;
        tb->stretch_cm[p ^ 0x800] = (int16_t)((idx < 4095 ? idx : 4095) - 2048); /* index (p ^ 0x8000) >> 4 of the 16-bit p */
    }
    for (int n = 0; n <= LL_COUNTER_LIMIT_MAX; n++) tb->recip[n] = 131072 / (2 * n + 3);
    const int64_t lr = LL_P_LR;
    for (int n = 0; n < 1024; n++) tb->rates[n] = lr * 16 + (lr * 16 * 64) / (n + 16);
    for (int i = 0; i < LL_MIX_DOT; i++) tb->mix0[i] = i < LL_NM ? 65536 / LL_NM : 0;
    for (int j = 0; j < 33; j++) tb->apm0[j] = (uint16_t)(tb->squash[j * 128 < 4095 ? j * 128 : 4095] * 16);
}

/* ---- the causal neighbourhood and the fixed predictors (predictors.py) ---- */
enum { IW, IN, INW, INE, IWW, INN, INNE };

#define REC(y, x, c) ((int64_t)e->rec[((size_t)(y) * (size_t)e->width + (size_t)(x)) * (size_t)e->nch + (size_t)(c)])

static inline void fetch(const ll_engine *e, int64_t y, int64_t x, int c, int64_t nb[7]) {
    int64_t w, n, nw, ne, ww, nn, nne;
    const int64_t width = e->width;
    if (y == 0) {
        if (x == 0) {
            w = e->mid;
            ww = e->mid;
        } else {
            w = REC(y, x - 1, c);
            ww = x > 1 ? REC(y, x - 2, c) : w;
        }
        n = nw = ne = nn = nne = w;
    } else {
        n = REC(y - 1, x, c);
        ne = x + 1 < width ? REC(y - 1, x + 1, c) : n;
        if (x == 0) {
            w = ww = nw = n;
        } else {
            w = REC(y, x - 1, c);
            ww = x > 1 ? REC(y, x - 2, c) : w;
            nw = REC(y - 1, x - 1, c);
        }
        if (y > 1) {
            nn = REC(y - 2, x, c);
            nne = x + 1 < width ? REC(y - 2, x + 1, c) : nn;
        } else {
            nn = n;
            nne = ne;
        }
    }
    nb[IW] = w;
    nb[IN] = n;
    nb[INW] = nw;
    nb[INE] = ne;
    nb[IWW] = ww;
    nb[INN] = nn;
    nb[INNE] = nne;
}

static inline void spatial(const int64_t nb[7], int64_t gap_shift, int64_t *preds) {
    int64_t w = nb[IW], n = nb[IN], nw = nb[INW], ne = nb[INE], ww = nb[IWW], nn = nb[INN], nne = nb[INNE];
    preds[0] = w * 16;
    preds[1] = n * 16;
    preds[2] = (w + n - nw) * 16;
    preds[3] = ne * 16;
    preds[4] = (w + ne) * 8;
    preds[5] = (w + n) * 8;
    preds[6] = (2 * n - nn) * 16;
    preds[7] = (2 * w - ww) * 16;
    preds[8] = (n + ne - nne) * 16;
    preds[9] = (w + ne - n) * 16;
    int64_t dh = iabs(w - ww) + iabs(n - nw) + iabs(n - ne);
    int64_t dv = iabs(w - nw) + iabs(n - nn) + iabs(ne - nne);
    int64_t dd = (dv - dh) >> gap_shift;
    int64_t g;
    if (dd > 80) {
        g = w * 16;
    } else if (dd < -80) {
        g = n * 16;
    } else {
        int64_t t = (w + n) * 8 + (ne - nw) * 4;
        if (dd > 32)
            g = (t + w * 16) >> 1;
        else if (dd > 8)
            g = (3 * t + w * 16) >> 2;
        else if (dd < -32)
            g = (t + n * 16) >> 1;
        else if (dd < -8)
            g = (3 * t + n * 16) >> 2;
        else
            g = t;
    }
    preds[10] = g;
}

static inline void inter(const int64_t nb[7], const int64_t rb[7], int64_t r0, int64_t *preds) {
    int64_t dw = nb[IW] - rb[IW], dn = nb[IN] - rb[IN], dnw = nb[INW] - rb[INW], dne = nb[INE] - rb[INE];
    int64_t base = r0 * 16;
    preds[0] = base + dw * 16;
    preds[1] = base + dn * 16;
    preds[2] = base + (dw + dn - dnw) * 16;
    preds[3] = base + dne * 16;
    preds[4] = base + (dw + dne) * 8;
    preds[5] = base + (dw + dn) * 8;
    int64_t dww = nb[IWW] - rb[IWW], dnn = nb[INN] - rb[INN];
    preds[6] = base + (dw + dn + dnw + dne) * 4;
    preds[7] = base + (2 * dw + 2 * dn + dnw + dne + dww + dnn) * 2;
}

/* ---- the OLS feature vector (ols.sample, ols.features) ---- */
static inline int64_t sample(const ll_engine *e, int64_t y, int64_t x, int dy, int dx, int c) {
    int64_t xx = x + dx;
    if (xx < 0)
        xx = 0;
    else if (xx >= e->width)
        xx = e->width - 1;
    if (dy == 0) {
        if (xx >= x) {
            if (y > 0) return REC(y - 1, xx, c);
            return e->mid;
        }
        return REC(y, xx, c);
    }
    int64_t yy = y + dy;
    if (yy < 0) {
        if (x > 0) return REC(y, x - 1, c);
        return e->mid;
    }
    return REC(yy, xx, c);
}

static inline int gather(const ll_engine *e, int64_t y, int64_t x, int c, const int *dys, const int *dxs, int i0,
                         int i1, int64_t base, int inner, int64_t *f, int at) {
    for (int i = i0; i < i1; i++) {
        int64_t v = inner ? REC(y + dys[i], x + dxs[i], c) : sample(e, y, x, dys[i], dxs[i], c);
        f[at++] = v - base;
    }
    return at;
}

/* Fill f with the feature vector of coded channel k (channel c) at (y, x); returns the count
 * and sets *w0 to the W sample. */
static inline int features(const ll_engine *e, int64_t y, int64_t x, int k, int c, const int refs[2], int64_t *f,
                           int64_t *w0) {
    int inner = y >= LL_REACH_UP && x >= LL_REACH_LEFT && x + LL_REACH_RIGHT < e->width;
    int64_t w = inner ? REC(y, x - 1, c) : sample(e, y, x, 0, -1, c);
    int n = gather(e, y, x, c, SP_DY, SP_DX, 0, LL_N_SP, w, inner, f, 0);
    for (int r = 0; r < 2; r++) {
        int ch = refs[r];
        if (ch >= 0) {
            int64_t rw = inner ? REC(y, x - 1, ch) : sample(e, y, x, 0, -1, ch);
            f[n] = REC(y, x, ch) - rw;
            n = gather(e, y, x, ch, RF_DY, RF_DX, 1, LL_N_RF, rw, inner, f, n + 1);
        }
    }
    for (int r = 0; r < 2; r++) {
        int ch = e->others[k][r];
        if (ch >= 0) {
            int64_t rw = inner ? REC(y, x - 1, ch) : sample(e, y, x, 0, -1, ch);
            n = gather(e, y, x, ch, RF_DY, RF_DX, 1, LL_N_RF, rw, inner, f, n);
        }
    }
    *w0 = w;
    return n;
}

/* ---- one row, both directions (engine._rows) ---- */
#define ERRB(row, x, k, i) e->errb[(((size_t)(row) * (size_t)e->width + (size_t)(x)) * (size_t)e->nch + (size_t)(k)) * LL_NP_ALL + (size_t)(i)]
#define VACC(x, k, i) e->vacc[((size_t)(x) * (size_t)e->nch + (size_t)(k)) * LL_NP_ALL + (size_t)(i)]
#define RESB(row, x, k) e->resb[((size_t)(row) * (size_t)e->width + (size_t)(x)) * (size_t)e->nch + (size_t)(k)]

/* One sample's prediction, kept from ll_predict to ll_learn. */
typedef struct ll_pred {
    ll_select sel;                /* the table entries of its decisions */
    int64_t preds[LL_NP_ALL];     /* the predictions (1/16 units), the OLS one last */
    int64_t fv[LL_NF_MAX];        /* the OLS feature vector */
    int64_t w0, mo, pint;         /* W sample, OLS model, integer prediction */
    int npr, nf, flip;
} ll_pred;

/* Predict sample (y, x) of coded channel k and choose its contexts (engine._rows up to the
 * coding of the residual). Reads only the reconstruction, the residual / error history and
 * the OLS models, never the coder's tables. */
NMEM_INLINE void ll_predict(ll_engine *e, int64_t y, int64_t x, int k, ll_pred *sp) {
    const int64_t width = e->width, nch = e->nch, step = e->step, maxp = e->maxp;
    const int64_t cur = y & 1, prv = cur ^ 1, r0 = y % 3, r1 = (y + 2) % 3, r2 = (y + 1) % 3;
    int64_t nb[7], rb[7], ssum[LL_NP_ALL];
    int64_t *preds = sp->preds, *fv = sp->fv;
    const int c = e->order[k];
    const int64_t par = (x & 1) + 2 * (y & 1);
    fetch(e, y, x, c, nb);
    spatial(nb, e->gap_shift, preds);
    int npr = LL_N_SPATIAL;
    const int a = e->ref1[k];
    int64_t qref = 0;
    int ka = 0;
    if (a >= 0) {
        fetch(e, y, x, a, rb);
        inter(nb, rb, REC(y, x, a), preds + npr);
        npr += LL_N_INTER;
        for (int kk = 0; kk < nch; kk++)
            if (e->order[kk] == a) ka = kk;
        qref = RESB(r0, x, ka);
    }
    const int a2 = e->ref2[k];
    int ka2 = 0;
    if (a2 >= 0) {
        for (int kk = 0; kk < nch; kk++)
            if (e->order[kk] == a2) ka2 = kk;
        fetch(e, y, x, a2, rb);
        inter(nb, rb, REC(y, x, a2), preds + npr);
        npr += LL_N_INTER;
    }
    /* residual neighbourhood (quantized residuals, signed, unflipped) */
    int64_t qw = x > 0 ? RESB(r0, x - 1, k) : 0;
    int64_t qww = x > 1 ? RESB(r0, x - 2, k) : 0;
    int64_t qn = y > 0 ? RESB(r1, x, k) : 0;
    int64_t qnw = (y > 0 && x > 0) ? RESB(r1, x - 1, k) : 0;
    int64_t qne = (y > 0 && x + 1 < width) ? RESB(r1, x + 1, k) : 0;
    int64_t qnn = y > 1 ? RESB(r2, x, k) : 0;
    int64_t energy = 2 * iabs(qw) + 2 * iabs(qn) + iabs(qnw) + iabs(qne) + iabs(qww) + iabs(qnn);
    if (a >= 0) energy += 2 * iabs(qref);
    int64_t le = lq(energy);
    if (le > LL_N_E - 1) le = LL_N_E - 1;
    /* the OLS predictor, one model per channel and pixel phase */
    const int refs[2] = {a, a2};
    int64_t w0;
    int nf = features(e, y, x, k, c, refs, fv, &w0);
    const int64_t mo = k * LL_N_PHASE + par;
    int64_t po = ll_ols_predict(&e->ols, mo, fv, nf, w0);
    if (po < 0)
        po = 0;
    else if (po > maxp)
        po = maxp;
    const int io = npr;
    preds[io] = po;
    npr++;
    /* blend by recent local errors */
    const int64_t cw = x > 0 ? 2 : 0, cn = y > 0 ? 2 : 0, cnw = (y > 0 && x > 0) ? 1 : 0;
    const int64_t cne = (y > 0 && x + 1 < width) ? 1 : 0, cww = x > 1 ? 1 : 0;
    const int64_t cnee = (y > 0 && x + 2 < width) ? 1 : 0;
    const int64_t xm1 = x > 0 ? x - 1 : x, xm2 = x > 1 ? x - 2 : x;
    const int64_t xp1 = x + 1 < width ? x + 1 : x, xp2 = x + 2 < width ? x + 2 : x;
    for (int i = 0; i < npr; i++) {
        ssum[i] = cw * ERRB(cur, xm1, k, i) + cn * ERRB(prv, x, k, i) + cnw * ERRB(prv, xm1, k, i) +
                  cne * ERRB(prv, xp1, k, i) + cww * ERRB(cur, xm2, k, i) + cnee * ERRB(prv, xp2, k, i) +
                  (VACC(x, k, i) >> 3);
    }
    if (a >= 0) {
        for (int i = 0; i < LL_N_SPATIAL; i++) ssum[i] += LL_P_XW * (int64_t)ERRB(cur, x, ka, i);
        if (a2 >= 0)
            for (int i = 0; i < LL_N_SPATIAL; i++) ssum[i] += LL_P_XW * (int64_t)ERRB(cur, x, ka2, i);
    }
    ssum[io] >>= 1; /* the OLS predictor gets a head start */
    int64_t smin = ssum[0];
    for (int i = 1; i < npr; i++)
        if (ssum[i] < smin) smin = ssum[i];
    int64_t wsum = 0, psum = 0, esum = 0;
    for (int i = 0; i < npr; i++) {
        int64_t r = ((smin + LL_P_BLEND_C) * 65536) / (ssum[i] + LL_P_BLEND_C);
        int64_t wgt = (r * r) >> 16;
        wsum += wgt;
        psum += wgt * preds[i];
        esum += wgt * ssum[i];
    }
    int64_t p = nmem_floordiv(psum + (wsum >> 1), wsum);
    int64_t lb = lq(esum / (wsum * 16 * step));
    if (lb > LL_N_E - 1) lb = LL_N_E - 1;
    int64_t tex = 0;
    if (nb[0] * 16 > p) tex |= 1;
    if (nb[1] * 16 > p) tex |= 2;
    if (nb[2] * 16 > p) tex |= 4;
    if (nb[3] * 16 > p) tex |= 8;
    if ((2 * nb[1] - nb[5]) * 16 > p) tex |= 16;
    if ((2 * nb[0] - nb[4]) * 16 > p) tex |= 32;
    int64_t pb = p;
    if (pb < 0)
        pb = 0;
    else if (pb > maxp)
        pb = maxp;
    const int64_t pint = (pb + 8) >> 4;
    const int64_t frac = pb - pint * 16;
    const int flip = frac < 0;
    const int64_t sg = flip ? -1 : 1;
    /* contexts of the residual decisions */
    const int64_t sw = qw * sg > 0 ? 1 : (qw * sg < 0 ? 2 : 0);
    const int64_t sn = qn * sg > 0 ? 1 : (qn * sg < 0 ? 2 : 0);
    const int64_t sr = qref * sg > 0 ? 1 : (qref * sg < 0 ? 2 : 0);
    int64_t lw = lq(iabs(qw));
    if (lw > 11) lw = 11;
    int64_t ln = lq(iabs(qn));
    if (ln > 11) ln = 11;
    int64_t lr = a >= 0 ? lq(iabs(qref)) : lq(iabs(qne));
    if (lr > 7) lr = 7;
    int64_t cx[LL_NM];
    cx[0] = le * 4 + par;
    cx[1] = lw * 12 + ln;
    cx[2] = le * 8 + lr;
    cx[3] = lb * 16 + (tex & 15);
    cx[4] = ((le >> 1) * 3 + sw) * 9 + sn * 3 + sr;
    cx[5] = iabs(frac) * 27 + sw * 9 + sn * 3 + sr;
    cx[6] = par;
    cx[7] = le * 24 + lb;
    const int ia = a >= 0 ? LL_N_SPATIAL + 2 : 3;
    const int64_t q0 = qd(preds[0] - pb, sg, step), q1 = qd(preds[1] - pb, sg, step);
    cx[8] = (q0 * 9 + q1) * 9 + qd(preds[ia] - pb, sg, step);
    cx[9] = (le >> 1) * 81 + q0 * 9 + q1;
    const int ib = a >= 0 ? LL_N_SPATIAL : 6;
    cx[10] = (((lb >> 2) * 9 + qd(preds[2] - pb, sg, step)) * 9 + qd(preds[10] - pb, sg, step)) * 9 +
             qd(preds[ib] - pb, sg, step);
    cx[11] = ((((le >> 2) * 5 + clip2(qw * sg)) * 5 + clip2(qn * sg)) * 5 + clip2(qne * sg)) * 5 +
             clip2((a >= 0 ? qref : qnw) * sg);
    for (int t = 0; t < 6; t++) {
        int pi = a >= 0 ? PI_REF[t] : PI_NOREF[t];
        cx[12 + t] = (lb >> 1) * 13 + qd13(preds[pi] - pb, sg, step);
    }
    const int64_t qo = qd13(po - pb, sg, step);
    const int64_t q13_0 = qd13(preds[0] - pb, sg, step), q13_1 = qd13(preds[1] - pb, sg, step);
    cx[18] = (qo * 9 + q0) * 13 + q13_1;
    int64_t lo = lq(ssum[io] / (16 * step));
    if (lo > LL_N_E - 1) lo = LL_N_E - 1;
    cx[19] = lo * 13 + qo;
    for (int i = 0; i < LL_NM; i++) sp->sel.ctxoff[i] = e->cbase[i] + (k * NCTX[i] + cx[i]) * LL_NNODE;
    int64_t mx[LL_NMIX];
    mx[0] = (le >> 2) * 4 + par;
    mx[1] = lb;
    mx[2] = q13_0 * 13 + q13_1;
    mx[3] = qd13(preds[ia] - pb, sg, step) * 8 + lr;
    for (int j = 0; j < LL_NMIX; j++) sp->sel.msel[j] = e->mbase[j] + (k * MIX_SETS[j] + mx[j]) * LL_NNODE;
    sp->sel.fsel = (k * LL_F_SETS + (le >> 2)) * LL_NNODE;
    int64_t ax[LL_NAPM];
    ax[0] = le * 4 + par;
    ax[1] = q0 * 9 + q1;
    ax[2] = qo * 12 + (lb >> 1);
    for (int j = 0; j < LL_NAPM; j++) sp->sel.asel[j] = e->abase[j] + (k * APM_CTX[j] + ax[j]) * LL_NNODE;
    sp->w0 = w0;
    sp->mo = mo;
    sp->nf = nf;
    sp->npr = npr;
    sp->pint = pint;
    sp->flip = flip;
}

/* Ask for the table lines of a sample's likely decisions (hints only). */
NMEM_INLINE void ll_prefetch(const ll_engine *e, const ll_select *sel) {
    /* ask for the table lines of the likely decisions now (hints only) */
    for (int i = 0; i < LL_NM; i++) {
        NMEM_PREFETCH(e->md.cm + sel->ctxoff[i]);
        NMEM_PREFETCH(e->md.cm + sel->ctxoff[i] + LL_NODE_SIGN);
    }
    static const int NDS[5] = {0, LL_NODE_UNARY, LL_NODE_UNARY + 1, LL_NODE_SIGN, LL_NODE_SIGN + 1};
    for (int d = 0; d < 5; d++) {
        for (int j = 0; j < LL_NMIX; j++) {
            const int32_t *wb = e->md.mix_w + (sel->msel[j] + NDS[d]) * LL_MIX_STRIDE;
            NMEM_PREFETCH(wb);
            NMEM_PREFETCH(wb + 16);
        }
        for (int j = 0; j < LL_NAPM; j++) {
            const uint16_t *ab = e->md.apm + (sel->asel[j] + NDS[d]) * 33;
            NMEM_PREFETCH(ab);
            NMEM_PREFETCH(ab + 32);
        }
    }
}

/* Code (encoder) or decode the quantized residual qf of one sample, in flipped orientation:
 * zero flag, unary bucket bits, mantissa bits, sign. One loop with one call site. */
NMEM_INLINE int64_t ll_code_residual(ll_engine *e, const ll_select *sel, int64_t qf) {
    const int enc = e->coder.enc;
    if (e->dirty) {
        /* every entry this sample's decisions write lies in these blocks: counter
         * ctxoff[i] + node, weight set msel[j] + node, APM context asel[j] + node, with
         * node < LL_NNODE and each offset a multiple of LL_NNODE */
        uint8_t *d = e->dirty;
        for (int i = 0; i < LL_NM; i++) d[sel->ctxoff[i] / LL_NNODE] = 1;
        d += e->ncm_blocks;
        for (int j = 0; j < LL_NMIX; j++) d[sel->msel[j] / LL_NNODE] = 1;
        d += e->nmix_blocks;
        for (int j = 0; j < LL_NAPM; j++) d[sel->asel[j] / LL_NNODE] = 1;
    }
    /* its decisions: zero flag, unary bucket bits, mantissa bits, sign */
    int64_t mag = iabs(qf);
    const int64_t m = mag - 1;
    const int64_t kbe = enc ? bitlen(m) : 0;
    int stage = 0;
    int64_t j = 0, kb = 0, mm = 0, t = 0;
    while (stage < 4) {
        int64_t node;
        int bit;
        if (stage == 0) {
            node = 0;
            bit = mag == 0;
        } else if (stage == 1) {
            node = LL_NODE_UNARY + j;
            bit = kbe > j;
            if (j >= 1) {
                for (int jj = 0; jj < LL_NMIX; jj++) {
                    const int32_t *wb = e->md.mix_w + (sel->msel[jj] + node + 1) * LL_MIX_STRIDE;
                    NMEM_PREFETCH(wb);
                    NMEM_PREFETCH(wb + 16);
                }
                for (int jj = 0; jj < LL_NAPM; jj++) NMEM_PREFETCH(e->md.apm + (sel->asel[jj] + node + 1) * 33 + 16);
            }
        } else if (stage == 2) {
            int64_t state = t == 0 ? 0 : (t == 1 ? 1 + (mm & 1) : 3);
            node = LL_NODE_MANT + 4 * kb + state;
            bit = enc ? (int)((m >> (kb - 2 - t)) & 1) : 0;
        } else {
            node = LL_NODE_SIGN + (mag < 4 ? mag - 1 : 3);
            bit = qf < 0;
        }
        int b = ll_code_decision(&e->coder, bit, node, sel, &e->md, &e->tb);
        if (stage == 0) {
            if (b) {
                qf = 0;
                stage = 4;
            } else if (e->kmax == 0) {
                mag = 1;
                stage = 3;
            } else {
                stage = 1;
            }
        } else if (stage == 1) {
            if (b) j++;
            if (b == 0 || j == e->kmax) {
                kb = j;
                stage = 2;
                mm = kb;
                if (kb > 1) {
                    mm = 1;
                } else {
                    stage = 3;
                    mag = mm + 1;
                }
            }
        } else if (stage == 2) {
            mm = (mm * 2) | b;
            t++;
            if (t == kb - 1) {
                stage = 3;
                mag = mm + 1;
            }
        } else {
            qf = b ? -mag : mag;
            stage = 4;
        }
    }
    return qf;
}

/* Reconstruct sample (y, x) of coded channel k from its residual and learn from it. */
NMEM_INLINE void ll_learn(ll_engine *e, int64_t y, int64_t x, int k, const ll_pred *sp, int64_t qf) {
    const int64_t width = e->width, nch = e->nch, step = e->step;
    const int64_t cur = y & 1, r0 = y % 3;
    const int c = e->order[k];
    const int64_t pint = sp->pint;
    const int flip = sp->flip;
    const int64_t *preds = sp->preds;
    const int npr = sp->npr;
    /* reconstruction */
    int64_t er = qf * step, q = qf;
    if (flip) {
        er = -er;
        q = -qf;
    }
    int64_t v = pint + er;
    if (v < 0)
        v = 0;
    else if (v > e->maxval)
        v = e->maxval;
    e->rec[((size_t)y * (size_t)width + (size_t)x) * (size_t)nch + (size_t)c] = (uint16_t)v;
    RESB(r0, x, k) = q;
    /* learn: predictor errors */
    const int64_t v16 = v * 16;
    for (int i = 0; i < npr; i++) {
        int64_t ei = iabs(v16 - preds[i]);
        ERRB(cur, x, k, i) = NMEM_WRAP32(ei);
        VACC(x, k, i) = NMEM_WRAP32(((VACC(x, k, i) * (int64_t)LL_P_VD) >> 3) + ei * 8);
    }
    /* learn: the OLS model of this phase */
    if (ll_ols_update(&e->ols, sp->mo, sp->fv, sp->nf, v - sp->w0, (int)e->cs, ((x >> 1) & (LL_SOLVE_EVERY - 1)) == 0))
        e->failed = 1;
}

/* The encoder's residual of a predicted sample: quantized in the loop, flipped. */
NMEM_INLINE int64_t ll_residual(const ll_engine *e, int64_t y, int64_t x, int k, const ll_pred *sp,
                                  const void *img, int wide) {
    size_t at = ((size_t)y * (size_t)e->width + (size_t)x) * (size_t)e->nch + (size_t)e->order[k];
    int64_t ev = (wide ? (int64_t)((const uint16_t *)img)[at] : (int64_t)((const uint8_t *)img)[at]) - sp->pint;
    if (sp->flip) ev = -ev;
    return ev >= 0 ? (ev + e->near) / e->step : -((e->near - ev) / e->step);
}

/* One row, decoder: predict, decode, learn, sample after sample. */
LL_HOT static void ll_decode_row(ll_engine *e, int64_t y) {
    ll_pred sp;
    for (int64_t x = 0; x < e->width; x++)
        for (int k = 0; k < e->nch; k++) {
            ll_predict(e, y, x, k, &sp);
            ll_prefetch(e, &sp.sel);
            int64_t qf = ll_code_residual(e, &sp.sel, 0);
            ll_learn(e, y, x, k, &sp, qf);
        }
}

/* One row, encoder: the same three steps. The encoder knows every residual before coding it
 * and its predictions never read the coder's tables, so it predicts and learns a run of
 * samples first and then codes their residuals in the same order, asking for the table lines
 * a few samples ahead: the same arithmetic in the same order for every table, hence the same
 * bytes, with the tables' cache misses overlapped. */
#define LL_RUN 64
#define LL_AHEAD 2
LL_HOT static void ll_encode_row(ll_engine *e, int64_t y, const void *img, int wide) {
    ll_pred sp;
    ll_select sels[LL_RUN];
    int64_t qfs[LL_RUN];
    const int64_t total = e->width * e->nch;
    for (int64_t s0 = 0; s0 < total; s0 += LL_RUN) {
        int n = (int)(total - s0 < LL_RUN ? total - s0 : LL_RUN);
        for (int i = 0; i < n; i++) {
            int64_t x = (s0 + i) / e->nch;
            int k = (int)((s0 + i) % e->nch);
            ll_predict(e, y, x, k, &sp);
            int64_t qf = ll_residual(e, y, x, k, &sp, img, wide);
            ll_learn(e, y, x, k, &sp, qf);
            sels[i] = sp.sel;
            qfs[i] = qf;
        }
        for (int i = 0; i < n && i < LL_AHEAD; i++) ll_prefetch(e, &sels[i]);
        for (int i = 0; i < n; i++) {
            if (i + LL_AHEAD < n) ll_prefetch(e, &sels[i + LL_AHEAD]);
            ll_code_residual(e, &sels[i], qfs[i]);
        }
    }
}

/* ---- setup ---- */

/* The adaptive tables (about 12 MB per channel, read at random: a few dozen lines per
 * decision) start all zero (lossless_internal.h), so they come from fresh zero pages and are
 * never written in full: a small image touches a small part of them, and an untouched page
 * costs nothing. On Linux they are mapped directly (always fresh, unlike malloc's recycled
 * heap) and, for an image of at least LL_HUGE_PIXELS pixels, asked for in 2 MB pages
 * (transparent huge pages in "madvise" mode) so that their reads do not also miss the TLB: a
 * hint, the contents are the same either way. A small image touches few of the tables'
 * pages, and 2 MB pages would fault in whole 2 MB blocks around each (a 20x16 RGBA decode:
 * 50.8 MB resident with them, 13.6 MB without). Under a sanitizer they come from calloc, where
 * AddressSanitizer checks every access against their bounds. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_MEMORY__)
#define LL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define LL_SANITIZED 1
#endif
#endif
#if defined(__linux__) && defined(MAP_ANONYMOUS) && !defined(LL_SANITIZED)
#define LL_MMAP_TABLES 1
#endif
#define LL_HUGE ((size_t)2 << 20)
#define LL_HUGE_PIXELS ((uint64_t)1 << 17) /* 362 x 362; Kodak images (393,216) use them */

static void *table_alloc(size_t bytes, int huge) {
    if (!bytes) bytes = 1;
#if defined(LL_MMAP_TABLES)
    if (bytes >= LL_HUGE) {
        /* map one huge page more and trim, so that the table starts on a 2 MB boundary */
        size_t rounded = (bytes + LL_HUGE - 1) / LL_HUGE * LL_HUGE, span = rounded + LL_HUGE;
        uint8_t *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        uint8_t *p = (uint8_t *)(((uintptr_t)m + LL_HUGE - 1) & ~(uintptr_t)(LL_HUGE - 1));
        if (p > m) munmap(m, (size_t)(p - m));
        if (p + rounded < m + span) munmap(p + rounded, (size_t)(m + span - (p + rounded)));
        if (huge) madvise(p, rounded, MADV_HUGEPAGE);
        return p;
    }
#endif
    void *p = calloc(1, bytes);
#if defined(__linux__)
    if (p && huge && bytes >= 2 * LL_HUGE) { /* the 2 MB pages inside the block */
        uintptr_t a = ((uintptr_t)p + LL_HUGE - 1) & ~(uintptr_t)(LL_HUGE - 1);
        uintptr_t b = ((uintptr_t)p + bytes) & ~(uintptr_t)(LL_HUGE - 1);
        if (b > a) madvise((void *)a, (size_t)(b - a), MADV_HUGEPAGE);
    }
#else
    (void)huge;
#endif
    return p;
}

static void table_free(void *p, size_t bytes) {
    if (!p) return;
#if defined(LL_MMAP_TABLES)
    if (bytes >= LL_HUGE) {
        munmap(p, (bytes + LL_HUGE - 1) / LL_HUGE * LL_HUGE);
        return;
    }
#endif
    (void)bytes;
    free(p);
}

int ll_coder_reserve(ll_coder *c, size_t more) {
    if (c->pos + more <= c->cap) return 0;
    size_t cap = c->cap * 2;
    if (cap < c->pos + more) cap = c->pos + more;
    uint8_t *p = realloc(c->out, cap);
    if (!p) return -1;
    c->out = p;
    c->cap = cap;
    return 0;
}

/* Tables kept between calls (nmem_lossless_context_new): one set per channel count, each of
 * exactly the size a call with that many channels uses (so that AddressSanitizer's bounds
 * stay exact), all zero while the context holds it. A call that uses the context flags the
 * blocks of entries its samples may write (ll_code_residual) and zeroes just those when it
 * hands the set back: a small image writes a small part of 12 MB per channel. */
struct nmem_lossless_context {
    void *cm[5], *mix_w[5], *apm[5];
    uint8_t *dirty[5]; /* all zero here, like the tables */
};

static void table_sizes(int64_t nch, size_t *cm, size_t *mix, size_t *apm) {
    int64_t csum = 0, msum = 0, asum = 0;
    for (int i = 0; i < LL_NM; i++) csum += NCTX[i];
    for (int i = 0; i < LL_NMIX; i++) msum += MIX_SETS[i];
    for (int i = 0; i < LL_NAPM; i++) asum += APM_CTX[i];
    *cm = (size_t)(csum * nch * LL_NNODE) * sizeof(uint32_t);
    *mix = (size_t)(msum * nch * LL_NNODE) * LL_MIX_STRIDE * sizeof(int32_t);
    *apm = (size_t)(asum * nch * LL_NNODE) * 33 * sizeof(uint16_t);
}

nmem_lossless_context *nmem_lossless_context_new(void) { return calloc(1, sizeof(nmem_lossless_context)); }

void nmem_lossless_context_free(nmem_lossless_context *ctx) {
    if (!ctx) return;
    for (int c = 1; c <= 4; c++) {
        size_t cm, mix, apm;
        table_sizes(c, &cm, &mix, &apm);
        table_free(ctx->cm[c], cm);
        table_free(ctx->mix_w[c], mix);
        table_free(ctx->apm[c], apm);
        free(ctx->dirty[c]);
    }
    free(ctx);
}

static void engine_free(ll_engine *e) {
    nmem_lossless_context *ctx = e->ctx;
    const int64_t c = e->nch;
    if (ctx && e->dirty && e->md.cm && e->md.mix_w && e->md.apm && !ctx->cm[c]) {
        /* back to the context, all zero again: only the blocks this call may have written */
        const uint8_t *d = e->dirty;
        for (size_t b = 0; b < e->ncm_blocks; b++)
            if (d[b]) memset(e->md.cm + b * LL_NNODE, 0, LL_NNODE * sizeof *e->md.cm);
        d += e->ncm_blocks;
        for (size_t b = 0; b < e->nmix_blocks; b++)
            if (d[b]) memset(e->md.mix_w + b * LL_NNODE * LL_MIX_STRIDE, 0, LL_NNODE * LL_MIX_STRIDE * sizeof *e->md.mix_w);
        d += e->nmix_blocks;
        for (size_t b = 0; b < e->napm_blocks; b++)
            if (d[b]) memset(e->md.apm + b * LL_NNODE * 33, 0, LL_NNODE * 33 * sizeof *e->md.apm);
        memset(e->dirty, 0, e->ncm_blocks + e->nmix_blocks + e->napm_blocks);
        ctx->cm[c] = e->md.cm; /* kept for the next call */
        ctx->mix_w[c] = e->md.mix_w;
        ctx->apm[c] = e->md.apm;
        ctx->dirty[c] = e->dirty;
        e->md.cm = NULL;
        e->md.mix_w = NULL;
        e->md.apm = NULL;
        e->dirty = NULL;
    }
    free(e->dirty);
    free(e->rec);
    free(e->errb);
    free(e->resb);
    free(e->vacc);
    table_free(e->md.cm, e->cm_bytes);
    table_free(e->md.mix_w, e->mix_bytes);
    free(e->md.mix_f);
    table_free(e->md.apm, e->apm_bytes);
    free(e->ols.a);
    free(e->ols.b);
    free(e->ols.w);
    free(e->ols.n);
    free(e->coder.out);
    free(e);
}

static nmem_status check_params(uint32_t width, uint32_t height, uint32_t channels, uint32_t bit_depth,
                                uint32_t near, uint64_t max_pixels, nmem_error *error) {
    if (bit_depth != 8 && bit_depth != 16) return nmem_fail(error, NMEM_ERR_ARGUMENT, "bit depth must be 8 or 16");
    if (channels != 1 && channels != 3 && channels != 4)
        return nmem_fail(error, NMEM_ERR_ARGUMENT, "channels must be 1, 3 or 4");
    if (width < 1 || height < 1 || (uint64_t)width * height > NMEM_FORMAT_MAX_PIXELS)
        return nmem_fail(error, NMEM_ERR_ARGUMENT, "unsupported image size");
    if (near > (1u << bit_depth) - 1u) return nmem_fail(error, NMEM_ERR_ARGUMENT, "near is out of range for the bit depth");
    if (max_pixels && (uint64_t)width * height > max_pixels)
        return nmem_fail(error, NMEM_ERR_LIMIT, "image is larger than the pixel limit");
#if SIZE_MAX < UINT64_MAX
    /* 32-bit hosts (wasm32): engine_new sizes its row buffers as width x channels x up to 480
     * bytes (error history 224, column errors 112, residuals 24, two encoder rows 120) in
     * size_t, which must not wrap. Container files (sides <= 65536) are far below this. */
    if ((uint64_t)width * channels * 512u > SIZE_MAX / 2)
        return nmem_fail(error, NMEM_ERR_LIMIT, "image is too wide for a 32-bit address space");
#endif
    return NMEM_OK;
}

static nmem_status engine_new(uint32_t width, uint32_t height, uint32_t channels, uint32_t bit_depth, uint32_t near,
                              nmem_lossless_context *ctx, ll_engine **out, nmem_error *error) {
    ll_engine *e = calloc(1, sizeof *e);
    if (!e) return nmem_fail(error, NMEM_ERR_MEMORY, "out of memory");
    e->ctx = ctx;
    const int64_t nch = channels, w = width;
    e->width = w;
    e->height = height;
    e->nch = nch;
    e->maxval = ((int64_t)1 << bit_depth) - 1;
    e->near = near;
    e->step = 2 * (int64_t)near + 1;
    e->mid = (e->maxval + 1) >> 1;
    e->gap_shift = bitlen(e->maxval) - 8;
    e->cs = e->gap_shift > 0 ? e->gap_shift : 0;
    int64_t maxmag = near == 0 ? e->maxval : (e->maxval + near) / e->step;
    e->kmax = bitlen(maxmag - 1);
    e->maxp = e->maxval * 16;
    /* channel plan: RGB(A) codes G, then R (ref G), then B (refs G and R), then A alone */
    for (int k = 0; k < 4; k++) {
        e->order[k] = k;
        e->ref1[k] = e->ref2[k] = -1;
        e->others[k][0] = e->others[k][1] = -1;
    }
    if (channels >= 3) {
        e->order[0] = 1;
        e->order[1] = 0;
        e->order[2] = 2;
        e->ref1[1] = 1;
        e->ref1[2] = 1;
        e->ref2[2] = 0;
        e->others[0][0] = e->order[1];
        e->others[0][1] = e->order[2];
        e->others[1][0] = e->order[2];
    }
    init_tables(&e->tb);
    int64_t csum = 0, msum = 0, asum = 0;
    for (int i = 0; i < LL_NM; i++) {
        e->cbase[i] = csum;
        csum += NCTX[i] * nch * LL_NNODE;
    }
    for (int i = 0; i < LL_NMIX; i++) {
        e->mbase[i] = msum;
        msum += MIX_SETS[i] * nch * LL_NNODE;
    }
    for (int i = 0; i < LL_NAPM; i++) {
        e->abase[i] = asum;
        asum += APM_CTX[i] * nch * LL_NNODE;
    }
    const int64_t nfsets = nch * LL_NNODE * LL_F_SETS, nmod = nch * LL_N_PHASE;
    e->rec = calloc((size_t)height * (size_t)w * (size_t)nch, sizeof *e->rec);
    e->errb = calloc((size_t)(2 * w * nch * LL_NP_ALL), sizeof *e->errb);
    e->resb = calloc((size_t)(3 * w * nch), sizeof *e->resb);
    e->vacc = calloc((size_t)(w * nch * LL_NP_ALL), sizeof *e->vacc);
    table_sizes(nch, &e->cm_bytes, &e->mix_bytes, &e->apm_bytes);
    e->ncm_blocks = e->cm_bytes / (LL_NNODE * sizeof *e->md.cm);
    e->nmix_blocks = e->mix_bytes / (LL_NNODE * LL_MIX_STRIDE * sizeof *e->md.mix_w);
    e->napm_blocks = e->apm_bytes / (LL_NNODE * 33 * sizeof *e->md.apm);
    if (ctx && ctx->cm[nch]) { /* the context's tables, as new: all zero (engine_free) */
        e->md.cm = ctx->cm[nch];
        e->md.mix_w = ctx->mix_w[nch];
        e->md.apm = ctx->apm[nch];
        e->dirty = ctx->dirty[nch];
        ctx->cm[nch] = ctx->mix_w[nch] = ctx->apm[nch] = NULL;
        ctx->dirty[nch] = NULL;
    } else {
        int huge = (uint64_t)width * height >= LL_HUGE_PIXELS;
        e->md.cm = table_alloc(e->cm_bytes, huge);
        e->md.mix_w = table_alloc(e->mix_bytes, huge);
        e->md.apm = table_alloc(e->apm_bytes, huge);
        if (ctx) e->dirty = calloc(e->ncm_blocks + e->nmix_blocks + e->napm_blocks, 1);
    }
    e->md.mix_f = malloc((size_t)nfsets * (LL_NMIX + 1) * sizeof *e->md.mix_f);
    e->ols.a = calloc((size_t)(nmod * LL_NF_MAX * LL_NF_MAX), sizeof *e->ols.a);
    e->ols.b = calloc((size_t)(nmod * LL_NF_MAX), sizeof *e->ols.b);
    e->ols.w = calloc((size_t)(nmod * LL_NF_MAX), sizeof *e->ols.w);
    e->ols.n = calloc((size_t)nmod, sizeof *e->ols.n);
    if (!e->rec || !e->errb || !e->resb || !e->vacc || !e->md.cm || !e->md.mix_w || !e->md.mix_f || !e->md.apm ||
        !e->ols.a || !e->ols.b || !e->ols.w || !e->ols.n || (ctx && !e->dirty)) {
        engine_free(e);
        return nmem_fail(error, NMEM_ERR_MEMORY, "out of memory");
    }
    /* md.cm, md.mix_w and md.apm start all zero: nothing to write (lossless_internal.h) */
    for (int64_t s = 0; s < nfsets; s++) {
        for (int i = 0; i < LL_NMIX; i++) e->md.mix_f[s * (LL_NMIX + 1) + i] = 65536 / LL_NMIX;
        e->md.mix_f[s * (LL_NMIX + 1) + LL_NMIX] = 0;
    }
    e->md.f_lr = LL_P_FLR;
    *out = e;
    return NMEM_OK;
}

static int report(const nmem_lossless_options *opt, int64_t done, int64_t total) {
    if (!opt || !opt->progress) return 0;
    return opt->progress(opt->user, (uint32_t)done, (uint32_t)total);
}

nmem_status nmem_lossless_encode(const void *pixels, uint32_t width, uint32_t height, uint32_t channels,
                                 uint32_t bit_depth, uint32_t near, const nmem_lossless_options *options,
                                 uint8_t **payload, size_t *payload_size, nmem_error *error) {
    if (!payload || !payload_size || !pixels) return nmem_fail(error, NMEM_ERR_ARGUMENT, "NULL argument");
    *payload = NULL;
    *payload_size = 0;
    nmem_status st = check_params(width, height, channels, bit_depth, near, 0, error);
    if (st != NMEM_OK) return st;
    ll_engine *e;
    st = engine_new(width, height, channels, bit_depth, near, options ? options->context : NULL, &e, error);
    if (st != NMEM_OK) return st;
    ll_coder *c = &e->coder;
    c->enc = 1;
    c->x1 = 0;
    c->x2 = 0xFFFFFFFFu;
    c->pos = 1; /* the version byte first */
    const size_t row_bytes = (size_t)width * channels * LL_MAX_BYTES_PER_SAMPLE + 16;
    if (ll_coder_reserve(c, 2 * row_bytes) != 0) {
        engine_free(e);
        return nmem_fail(error, NMEM_ERR_MEMORY, "out of memory");
    }
    c->out[0] = LL_ENGINE_VERSION;
    for (int64_t y = 0; y < height; y++) {
        if (ll_coder_reserve(c, row_bytes) != 0) c->nomem = 1;
        if (c->nomem) break;
        ll_encode_row(e, y, pixels, bit_depth == 16);
        if (e->failed) break;
        if (((y + 1) % LL_ROW_BLOCK == 0 || y + 1 == height) && report(options, y + 1, height)) {
            engine_free(e);
            return nmem_fail(error, NMEM_ERR_CANCELLED, "cancelled");
        }
    }
    if (c->nomem || ll_coder_reserve(c, 4) != 0) {
        engine_free(e);
        return nmem_fail(error, NMEM_ERR_MEMORY, "out of memory");
    }
    if (e->failed) {
        engine_free(e);
        return nmem_fail(error, NMEM_ERR_ARGUMENT, "lossless engine: zero pivot in the least-squares solve");
    }
    for (int s = 24; s >= 0; s -= 8) c->out[c->pos++] = (uint8_t)(c->x1 >> s);
    *payload = c->out;
    *payload_size = c->pos;
    c->out = NULL;
    engine_free(e);
    return nmem_fail(error, NMEM_OK, "ok");
}

nmem_status nmem_lossless_decode(const uint8_t *payload, size_t payload_size, uint32_t width, uint32_t height,
                                 uint32_t channels, uint32_t bit_depth, uint32_t near,
                                 const nmem_lossless_options *options, void *out, size_t out_size,
                                 nmem_error *error) {
    if (!payload || !out) return nmem_fail(error, NMEM_ERR_ARGUMENT, "NULL argument");
    uint64_t limit = options && options->max_pixels ? options->max_pixels : NMEM_DEFAULT_MAX_PIXELS;
    nmem_status st = check_params(width, height, channels, bit_depth, near, limit, error);
    if (st != NMEM_OK) return st;
    size_t nsamp = (size_t)width * height * channels;
    if (out_size < nsamp * (bit_depth / 8)) return nmem_fail(error, NMEM_ERR_ARGUMENT, "output buffer too small");
    if (payload_size < 5) return nmem_fail(error, NMEM_ERR_FORMAT, "lossless payload too short");
    if (payload[0] != LL_ENGINE_VERSION) return nmem_fail(error, NMEM_ERR_FORMAT, "unsupported lossless engine version");
    ll_engine *e;
    st = engine_new(width, height, channels, bit_depth, near, options ? options->context : NULL, &e, error);
    if (st != NMEM_OK) return st;
    ll_coder *c = &e->coder;
    c->enc = 0;
    c->x1 = 0;
    c->x2 = 0xFFFFFFFFu;
    c->in = payload + 1;
    c->size = payload_size - 1;
    uint32_t x = 0;
    for (size_t i = 0; i < 4; i++) x = (x << 8) | (i < c->size ? c->in[i] : 0u);
    c->x = x;
    c->pos = 4;
    for (int64_t y = 0; y < height; y++) {
        ll_decode_row(e, y);
        if (c->pos > c->size + 8 || e->failed) {
            engine_free(e);
            return nmem_fail(error, NMEM_ERR_FORMAT, "lossless payload truncated");
        }
        if (((y + 1) % LL_ROW_BLOCK == 0 || y + 1 == height) && report(options, y + 1, height)) {
            engine_free(e);
            return nmem_fail(error, NMEM_ERR_CANCELLED, "cancelled");
        }
    }
    if (c->pos != c->size) {
        engine_free(e);
        return nmem_fail(error, NMEM_ERR_FORMAT, "lossless payload length mismatch");
    }
    if (bit_depth == 16) {
        memcpy(out, e->rec, nsamp * sizeof(uint16_t));
    } else {
        uint8_t *o = out;
        for (size_t i = 0; i < nsamp; i++) o[i] = (uint8_t)e->rec[i];
    }
    engine_free(e);
    return nmem_fail(error, NMEM_OK, "ok");
}

void nmem_free(void *p) { free(p); }
