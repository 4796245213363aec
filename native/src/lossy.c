/* Lossy engine decoder, bit-exact with the Python/numba reference
 * (src/neural_memory/lossy/decoding/: bitstream.py, arm.py, fixed_point.py, decoder.py).
 *
 * Steps: payload header (architecture, per-layer steps) -> one rANS stream with every layer's
 * weights, then the latent grids coarse to fine, each latent coded with the integer ARM's mean
 * and scale -> in version 4 each grid through its level's pre-concatenation filter (7 x 7
 * separable, stored in the stream) -> the fixed 2x upsampler (the payload version's
 * per-stage filters, UP_TABLES below), recursively, for the grids of levels >= 1 ->
 * per output row: the last upsampling step, optionally integer bilinear resampling, and the
 * per-pixel integer synthesis MLP.
 *
 * Memory: the latents (int32, padded), the upsampled stack of level >= 1 grids at level 1
 * (a quarter of the pixels per grid) and a few rows; the full-resolution features
 * (n_grids x H x W) that the numba decoder holds are never materialised.
 *
 * Integer ranges (so int32 storage is exact): latents |y| < 2^14; a level-l grid enters the
 * upsampler as y * 2^(10-l) < 2^(24-l); one 1-D step multiplies the bound by at most
 * the stage's sum of |taps| over 256 plus 1/2: 328/256 at every stage in version 2, so after
 * the l levels (2l steps) a grid stays below 2^(24-l) * 1.65^l < 2^25; in version 3 374/256
 * at stage 0 and 296-328/256 at the others, at most 2^24.1 (a level-1 grid). A version-4
 * pre-filtered grid is clipped to the same bound, below 2^(24-l), before the upsampler (its
 * exact sums: |y| < 2^14 times at most (2^(q+1))^2 with q <= 12, below 2^40). Bilinear
 * resampling is a convex combination. Sums of products are taken in int64: ARM |x| < 2^30,
 * |w| < 2^18, fan-in <= 32; synthesis |x| < 2^26, |w| < 2^18, fan-in <= 64: every sum is
 * below 2^50. */
#include <stdlib.h>
#include <string.h>

#include "nmem_internal.h"

/* The hot loops are compiled twice on x86-64 with glibc, for AVX2 and for the baseline, and
 * the loader picks one (GCC/clang function multiversioning): int64 products of int32 values
 * vectorise only with SSE4.1/AVX2. The results are integers and identical either way.
 * NMEM_NO_CLONES turns this off (tests build both ways). */
#if defined(__has_attribute)
#if __has_attribute(target_clones) && defined(__x86_64__) && defined(__GLIBC__) && !defined(NMEM_NO_CLONES)
#define HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT
#define HOT
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

#define MAX_GRIDS 32
#define MAX_LEVELS 8
#define MAX_ARM_HIDDEN 32
#define MAX_SYN_LAYERS 4
#define MAX_SYN_WIDTH 64
#define MAX_Q 15
#define WEIGHT_MAX ((1 << 18) - 1)
#define N_SPATIAL 12
#define N_PARENT 5
#define N_CTX (N_SPATIAL + N_PARENT)
#define PAD 3
#define ARM_ACT_CLIP ((1 << 30) - 1)
#define LATENT_MAX ((1 << 14) - 1)
#define UP_BITS 10
#define SYN_ACT_CLIP ((1 << 26) - 1)
#define MAX_FEATURE_VALUES (1ull << 29) /* n_grids * H * W, as the numba decoder */
#define N_MODULES_MAX (3 + MAX_SYN_LAYERS)
#define PREFILTER_MAX_Q 12
/* weights and biases of the largest architecture the header can describe */
#define MAX_PARAMS                                                                      \
    (N_CTX * MAX_ARM_HIDDEN + MAX_ARM_HIDDEN + MAX_ARM_HIDDEN * MAX_ARM_HIDDEN +        \
     MAX_ARM_HIDDEN + MAX_ARM_HIDDEN * 2 + 2 + MAX_GRIDS * MAX_SYN_WIDTH + MAX_SYN_WIDTH + \
     2 * (MAX_SYN_WIDTH * MAX_SYN_WIDTH + MAX_SYN_WIDTH) + MAX_SYN_WIDTH * 3 + 3)
#define SYN_BLOCK 256 /* pixels per synthesis block (keeps the hidden layer in L1/L2) */

/* causal neighbourhood (dy, dx) in the same grid, and the parent taps around (y/2, x/2) */
static const int CTX_DY[N_SPATIAL] = {-3, -2, -2, -2, -1, -1, -1, -1, -1, 0, 0, 0};
static const int CTX_DX[N_SPATIAL] = {0, -1, 0, 1, -2, -1, 0, 1, 2, -3, -2, -1};
static const int PAR_DY[N_PARENT] = {0, -1, 1, 0, 0};
static const int PAR_DX[N_PARENT] = {0, 0, 0, -1, 1};
/* The upsampler's filters by payload version (fixed_point.UP_TABLES): per 2x stage s (level
 * s + 1 -> s), the even outputs' taps over x[k-2..k+1]; the odd outputs read x[k-1..k+2] with
 * the taps reversed. Version 2: bicubic (a = -0.75) at every stage; version 3: sharper
 * filters at the fine stages; version 4: version 3's, after the pre-concatenation filters. */
#define N_STAGES (MAX_LEVELS - 1)
#define FIRST_PAYLOAD_VERSION 2
static const int64_t UP_TABLES[NMEM_LOSSY_PAYLOAD_VERSION - FIRST_PAYLOAD_VERSION + 1][N_STAGES][4] = {
    {{-9, 67, 225, -27}, {-9, 67, 225, -27}, {-9, 67, 225, -27}, {-9, 67, 225, -27},
     {-9, 67, 225, -27}, {-9, 67, 225, -27}, {-9, 67, 225, -27}},
    {{-29, 88, 227, -30}, {-15, 80, 200, -9}, {-12, 78, 198, -8}, {-12, 73, 208, -13},
     {-11, 70, 215, -18}, {-7, 66, 221, -24}, {-9, 67, 225, -27}},
    {{-29, 88, 227, -30}, {-15, 80, 200, -9}, {-12, 78, 198, -8}, {-12, 73, 208, -13},
     {-11, 70, 215, -18}, {-7, 66, 221, -24}, {-9, 67, 225, -27}},
};
#define PREFILTER_FROM_VERSION 4

typedef struct layer {
    uint32_t n_in, n_out, q, scale_idx;
    int32_t *w; /* (n_in, n_out) row-major */
    int32_t *b; /* n_out, at 2^-q */
} layer;

typedef struct grid {
    uint32_t level, h, w;
    size_t stride;   /* w + 2 * PAD */
    int32_t *padded; /* (h + PAD) rows of `stride` values; latent (y, x) at [PAD + y][PAD + x] */
    int parent;      /* the grid one level coarser of the same colour component, or -1 */
} grid;

/* A stack of upsampled grids at one level: n planes of h x w. */
typedef struct stack {
    uint32_t n, h, w;
    int32_t *data;
    int grid_of[MAX_GRIDS]; /* plane -> grid index (header order) */
} stack;

typedef struct lossy {
    /* architecture (payload header) */
    uint32_t n_grids;
    uint32_t levels[MAX_GRIDS];
    uint32_t top; /* the coarsest level */
    uint32_t arm_hidden;
    uint32_t n_syn;
    uint32_t dims[MAX_SYN_LAYERS + 1]; /* synthesis widths: n_grids, hidden..., channels */
    uint32_t channels;
    uint32_t n_modules; /* 3 ARM layers + n_syn synthesis layers */
    const int64_t (*up_taps)[4]; /* per stage, the even taps (UP_TABLES of the version) */
    /* version 4: per level the 7 taps (a, b, c, d, c, b, a), sum 2^pf_q (pf_q = 0: none) */
    uint32_t pf_q, pf_scale_idx;
    int64_t pf_taps[MAX_LEVELS][7];
    layer mods[N_MODULES_MAX];
    size_t stream_offset;
    /* image */
    uint32_t height, width;
    grid grids[MAX_GRIDS];
    stack coarse; /* grids of level >= 1, upsampled to level 1 */
    int32_t params[MAX_PARAMS];
} lossy;

static uint32_t level_size(uint32_t n, uint32_t level) { return (uint32_t)(((uint64_t)n + (1u << level) - 1) >> level); }

INLINE int64_t clip64(int64_t v, int64_t lim) { return v > lim ? lim : (v < -lim ? -lim : v); }

/* ---------------------------------------------------------------- header and weights */

static nmem_status read_header(lossy *L, const uint8_t *p, size_t n, uint32_t channels, nmem_error *err) {
    if (n < 2) return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload truncated (header)");
    if (p[0] < FIRST_PAYLOAD_VERSION || p[0] > NMEM_LOSSY_PAYLOAD_VERSION)
        return nmem_fail(err, NMEM_ERR_FORMAT, "unsupported lossy payload version");
    L->up_taps = UP_TABLES[p[0] - FIRST_PAYLOAD_VERSION];
    uint32_t g = p[1];
    if (!(g >= 1 && g <= MAX_GRIDS) || n < 4 + (size_t)g)
        return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad grid count or truncated header");
    L->n_grids = g;
    L->top = 0;
    for (uint32_t i = 0; i < g; i++) {
        if (p[2 + i] >= MAX_LEVELS) return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad grid level");
        L->levels[i] = p[2 + i];
        if (L->levels[i] > L->top) L->top = L->levels[i];
    }
    L->arm_hidden = p[2 + g];
    L->n_syn = p[3 + g];
    if (!(L->arm_hidden >= 1 && L->arm_hidden <= MAX_ARM_HIDDEN))
        return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad ARM width");
    if (!(L->n_syn >= 1 && L->n_syn <= MAX_SYN_LAYERS))
        return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad synthesis depth");
    size_t pos = 4 + (size_t)g;
    if (n < pos + L->n_syn - 1) return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload truncated (header)");
    L->dims[0] = g;
    for (uint32_t i = 0; i + 1 < L->n_syn; i++) {
        uint32_t h = p[pos + i];
        if (!(h >= 1 && h <= MAX_SYN_WIDTH)) return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad synthesis width");
        L->dims[i + 1] = h;
    }
    L->dims[L->n_syn] = channels;
    L->channels = channels;
    pos += L->n_syn - 1;
    L->n_modules = 3 + L->n_syn;
    int filters = p[0] >= PREFILTER_FROM_VERSION;
    if (n < pos + 2 * ((size_t)L->n_modules + filters) + 4)
        return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload truncated (header)");
    uint32_t a = L->arm_hidden;
    uint32_t shapes[N_MODULES_MAX][2] = {{N_CTX, a}, {a, a}, {a, 2}};
    for (uint32_t i = 0; i < L->n_syn; i++) {
        shapes[3 + i][0] = L->dims[i];
        shapes[3 + i][1] = L->dims[i + 1];
    }
    int32_t *next = L->params;
    for (uint32_t m = 0; m < L->n_modules; m++) {
        uint32_t q = p[pos + 2 * m], si = p[pos + 2 * m + 1];
        if (!(q >= 1 && q <= MAX_Q && si < NMEM_LAPLACE_NSCALE))
            return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad quantisation parameters");
        layer *ly = &L->mods[m];
        ly->n_in = shapes[m][0];
        ly->n_out = shapes[m][1];
        ly->q = q;
        ly->scale_idx = si;
        ly->w = next;
        next += ly->n_in * ly->n_out;
        ly->b = next;
        next += ly->n_out;
    }
    L->stream_offset = pos + 2 * (size_t)L->n_modules;
    L->pf_q = 0;
    if (filters) {
        uint32_t q = p[L->stream_offset], si = p[L->stream_offset + 1];
        if (!(q >= 1 && q <= PREFILTER_MAX_Q && si < NMEM_LAPLACE_NSCALE))
            return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad quantisation parameters");
        L->pf_q = q;
        L->pf_scale_idx = si;
        L->stream_offset += 2;
    }
    return NMEM_OK;
}

static nmem_status pull_modules(lossy *L, nmem_rans *r, nmem_error *err) {
    for (uint32_t m = 0; m < L->n_modules; m++) {
        layer *ly = &L->mods[m];
        int row = (int)(ly->scale_idx * NMEM_LAPLACE_NFRAC);
        size_t n = (size_t)ly->n_in * ly->n_out + ly->n_out; /* weights then biases: contiguous */
        for (size_t i = 0; i < n; i++) {
            int64_t v = nmem_pull_value(r, 0, row);
            if (r->error || v > WEIGHT_MAX || v < -WEIGHT_MAX)
                return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: corrupted network weights");
            ly->w[i] = (int32_t)v;
        }
    }
    if (!L->pf_q) return NMEM_OK;
    /* the filters' (a, b, c) per level 0..top: d = 2^q - 2 (a + b + c), sum of |taps| at most
     * 2^(q+1) (bitstream.prefilter_ok) */
    int row = (int)(L->pf_scale_idx * NMEM_LAPLACE_NFRAC);
    for (uint32_t lv = 0; lv <= L->top; lv++) {
        int64_t abc[3], l1 = 0;
        for (int i = 0; i < 3; i++) {
            abc[i] = nmem_pull_value(r, 0, row);
            if (r->error || abc[i] > WEIGHT_MAX || abc[i] < -WEIGHT_MAX)
                return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: corrupted network weights");
        }
        int64_t *t = L->pf_taps[lv];
        t[0] = t[6] = abc[0];
        t[1] = t[5] = abc[1];
        t[2] = t[4] = abc[2];
        t[3] = ((int64_t)1 << L->pf_q) - 2 * (abc[0] + abc[1] + abc[2]);
        for (int i = 0; i < 7; i++) l1 += t[i] < 0 ? -t[i] : t[i];
        if (l1 > ((int64_t)2 << L->pf_q)) return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: corrupted filter taps");
    }
    return NMEM_OK;
}

/* ---------------------------------------------------------------- ARM and latents */

/* One ARM layer: out = clip(relu?((b << FP_BITS + x . w + 2^(q-1)) >> q)). Zero inputs are
 * skipped (contexts of fine grids and hidden units after the ReLU are often zero; the sums
 * are the same): their indices are gathered first without branches. Called with a constant
 * n_out for the common widths, so the inner loop is unrolled and vectorised. */
INLINE void arm_layer(const int32_t *x, const layer *ly, uint32_t n_in, uint32_t n_out, int relu, int32_t *out) {
    int64_t acc[MAX_ARM_HIDDEN];
    uint32_t nz[MAX_ARM_HIDDEN > N_CTX ? MAX_ARM_HIDDEN : N_CTX];
    uint32_t m = 0;
    for (uint32_t i = 0; i < n_in; i++) {
        nz[m] = i;
        m += x[i] != 0;
    }
    for (uint32_t j = 0; j < n_out; j++) acc[j] = (int64_t)ly->b[j] * (1 << NMEM_FP_BITS);
    for (uint32_t k = 0; k < m; k++) {
        uint32_t i = nz[k];
        int64_t xi = x[i];
        const int32_t *wi = ly->w + (size_t)i * n_out;
        for (uint32_t j = 0; j < n_out; j++) acc[j] += xi * wi[j];
    }
    int64_t half = (int64_t)1 << (ly->q - 1);
    for (uint32_t j = 0; j < n_out; j++) {
        int64_t v = (acc[j] + half) >> ly->q;
        if (relu && v < 0) v = 0;
        out[j] = (int32_t)clip64(v, ARM_ACT_CLIP);
    }
}

/* The ARM on one context: integer centre and Laplace table row (arm._position_model). */
INLINE int arm_model(const lossy *L, const int32_t *ctx, uint32_t a, int64_t *center) {
    int32_t h1[MAX_ARM_HIDDEN], h2[MAX_ARM_HIDDEN], o[2];
    arm_layer(ctx, &L->mods[0], N_CTX, a, 1, h1);
    arm_layer(h1, &L->mods[1], a, a, 1, h2);
    arm_layer(h2, &L->mods[2], a, 2, 0, o);
    return nmem_table_row(o[0], o[1], center);
}

/* arm_model with the width known at compile time for the presets' ARM (16) */
static int arm_model_any(const lossy *L, const int32_t *ctx, int64_t *center) {
    return arm_model(L, ctx, L->arm_hidden, center);
}

HOT static nmem_status decode_grid(lossy *L, nmem_rans *r, grid *g, nmem_error *err) {
    const grid *par = g->parent >= 0 ? &L->grids[g->parent] : NULL;
    int32_t ctx[N_CTX];
    ptrdiff_t off[N_SPATIAL];
    for (int c = 0; c < N_SPATIAL; c++) off[c] = (ptrdiff_t)CTX_DY[c] * (ptrdiff_t)g->stride + CTX_DX[c];
    /* the all-zero context is the most common one by far: evaluate it once */
    memset(ctx, 0, sizeof ctx);
    int64_t zero_center;
    int zero_row = arm_model_any(L, ctx, &zero_center);
    for (uint32_t y = 0; y < g->h; y++) {
        int32_t *row = g->padded + (size_t)(PAD + y) * g->stride + PAD;
        for (uint32_t x = 0; x < g->w; x++) {
            int32_t *here = row + x;
            int32_t any = 0;
            for (int c = 0; c < N_SPATIAL; c++) {
                ctx[c] = here[off[c]] * (1 << NMEM_FP_BITS);
                any |= ctx[c];
            }
            for (int c = 0; c < N_PARENT; c++) {
                int32_t v = 0;
                if (par) {
                    int64_t py = (int64_t)(y >> 1) + PAR_DY[c], px = (int64_t)(x >> 1) + PAR_DX[c];
                    if (py < 0) py = 0;
                    if (py > (int64_t)par->h - 1) py = par->h - 1;
                    if (px < 0) px = 0;
                    if (px > (int64_t)par->w - 1) px = par->w - 1;
                    v = par->padded[(size_t)(PAD + py) * par->stride + PAD + (size_t)px];
                }
                ctx[N_SPATIAL + c] = v * (1 << NMEM_FP_BITS);
                any |= ctx[N_SPATIAL + c];
            }
            int64_t center = zero_center;
            int trow = zero_row;
            if (any) trow = L->arm_hidden == 16 ? arm_model(L, ctx, 16, &center) : arm_model_any(L, ctx, &center);
            int64_t v = nmem_pull_value(r, center, trow);
            if (r->error || v > LATENT_MAX || v < -LATENT_MAX)
                return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: corrupted or truncated latent stream");
            *here = (int32_t)v;
        }
    }
    return NMEM_OK;
}

static nmem_status decode_latents(lossy *L, nmem_rans *r, nmem_error *err) {
    /* parents: same colour component (k-th grid of its level), one level coarser */
    uint32_t comp[MAX_GRIDS];
    for (uint32_t g = 0; g < L->n_grids; g++) {
        comp[g] = 0;
        for (uint32_t j = 0; j < g; j++) comp[g] += L->levels[j] == L->levels[g];
    }
    for (uint32_t g = 0; g < L->n_grids; g++) {
        L->grids[g].parent = -1;
        for (uint32_t j = 0; j < L->n_grids; j++)
            if (L->levels[j] == L->levels[g] + 1 && comp[j] == comp[g]) L->grids[g].parent = (int)j;
    }
    /* coding order: coarse to fine, header order within a level */
    for (int lv = (int)L->top; lv >= 0; lv--)
        for (uint32_t g = 0; g < L->n_grids; g++)
            if (L->levels[g] == (uint32_t)lv) {
                nmem_status st = decode_grid(L, r, &L->grids[g], err);
                if (st != NMEM_OK) return st;
            }
    return NMEM_OK;
}

/* ---------------------------------------------------------------- pre-concatenation filters */

/* Version 4: replace grid gr's latents (level lv) by their features at 2^(UP_BITS - lv):
 * the exact 7 x 7 separable sum (replicate border), one rounding, clipped below 2^(24-lv)
 * (fixed_point.prefilter_grid). In place, row by row: the row pass of source rows r-3..r+3
 * sits in a ring of 8 int64 rows, computed before output row r overwrites anything they
 * read. */
HOT static nmem_status prefilter_grid(const lossy *L, grid *gr, nmem_error *err) {
    uint32_t h = gr->h, w = gr->w, lv = gr->level;
    const int64_t *k = L->pf_taps[lv];
    int64_t *ring = malloc(8 * (size_t)w * sizeof(int64_t));
    if (!ring) return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (lossy filters)");
    uint32_t shift = 2 * L->pf_q;
    int64_t half = (int64_t)1 << (shift - 1), top = ((int64_t)1 << (24 - lv)) - 1;
    uint32_t done = 0;
    for (uint32_t r = 0; r < h; r++) {
        uint32_t need = r + 3 < h ? r + 3 : h - 1;
        for (; done <= need; done++) {
            const int32_t *src = gr->padded + (size_t)(PAD + done) * gr->stride + PAD;
            int64_t *dst = ring + (size_t)(done & 7) * w;
            for (uint32_t x = 0; x < w; x++) {
                int64_t acc = 0;
                for (int i = 0; i < 7; i++) {
                    int64_t xx = (int64_t)x + i - 3;
                    xx = xx < 0 ? 0 : (xx > (int64_t)w - 1 ? (int64_t)w - 1 : xx);
                    acc += k[i] * src[xx];
                }
                dst[x] = acc;
            }
        }
        const int64_t *rows[7];
        for (int i = 0; i < 7; i++) {
            int64_t rr = (int64_t)r + i - 3;
            rr = rr < 0 ? 0 : (rr > (int64_t)h - 1 ? (int64_t)h - 1 : rr);
            rows[i] = ring + (size_t)(rr & 7) * w;
        }
        int32_t *out = gr->padded + (size_t)(PAD + r) * gr->stride + PAD;
        for (uint32_t x = 0; x < w; x++) {
            int64_t acc = 0;
            for (int i = 0; i < 7; i++) acc += k[i] * rows[i][x];
            out[x] = (int32_t)clip64((acc * ((int64_t)1 << (UP_BITS - lv)) + half) >> shift, top);
        }
    }
    free(ring);
    return NMEM_OK;
}

/* ---------------------------------------------------------------- upsampler */

/* Source indices of output sample j of a 2x step over n samples (replicate border). */
INLINE void taps(uint32_t j, uint32_t n, uint32_t idx[4]) {
    int64_t base = (int64_t)(j >> 1) - 2 + (int64_t)(j & 1);
    for (int m = 0; m < 4; m++) {
        int64_t i = base + m;
        idx[m] = (uint32_t)(i < 0 ? 0 : (i > (int64_t)n - 1 ? (int64_t)n - 1 : i));
    }
}

/* The taps of output sample j of a stage with even taps te: te, or te reversed (odd j). */
INLINE void phase_taps(const int64_t te[4], uint32_t j, int64_t t[4]) {
    for (int m = 0; m < 4; m++) t[m] = (j & 1) ? te[3 - m] : te[m];
}

/* One output row j (of a 2x vertical step with even taps te) of an h x w plane. */
INLINE void up_vertical(const int32_t *plane, uint32_t h, uint32_t w, uint32_t j, const int64_t te[4],
                        int32_t *dst) {
    uint32_t idx[4];
    taps(j, h, idx);
    int64_t t[4];
    phase_taps(te, j, t);
    const int32_t *r0 = plane + (size_t)idx[0] * w, *r1 = plane + (size_t)idx[1] * w;
    const int32_t *r2 = plane + (size_t)idx[2] * w, *r3 = plane + (size_t)idx[3] * w;
    for (uint32_t x = 0; x < w; x++) {
        int64_t v = t[0] * r0[x] + t[1] * r1[x] + t[2] * r2[x] + t[3] * r3[x];
        dst[x] = (int32_t)((v + 128) >> 8);
    }
}

/* Output sample j of a 2x step (even taps te) over src[0 .. n) with clamped (replicate)
 * source indices. */
INLINE int32_t up_sample_clamped(const int32_t *src, uint32_t n, uint32_t j, const int64_t te[4]) {
    uint32_t idx[4];
    taps(j, n, idx);
    int64_t t[4];
    phase_taps(te, j, t);
    int64_t v = t[0] * src[idx[0]] + t[1] * src[idx[1]] + t[2] * src[idx[2]] + t[3] * src[idx[3]];
    return (int32_t)((v + 128) >> 8);
}

/* A 2x horizontal step of a row of n samples into n_out (2n or 2n - 1) samples: the border
 * samples with clamped indices, the interior as pairs (even, odd) of direct sums. */
INLINE void up_horizontal(const int32_t *src, uint32_t n, const int64_t te[4], int32_t *dst,
                          uint32_t n_out) {
    uint32_t lo = n_out < 4 ? n_out : 4;
    int64_t hi64 = 2 * (int64_t)n - 5; /* outputs j in [4, 2n - 5) read src[0 .. n) directly */
    uint32_t hi = hi64 < (int64_t)lo ? lo : (hi64 > (int64_t)n_out ? n_out : (uint32_t)hi64);
    uint32_t j = 0;
    const int64_t t0 = te[0], t1 = te[1], t2 = te[2], t3 = te[3];
    for (; j < lo; j++) dst[j] = up_sample_clamped(src, n, j, te);
    for (; j + 1 < hi; j += 2) {
        const int32_t *s = src + (j >> 1);
        int64_t e = t0 * s[-2] + t1 * s[-1] + t2 * s[0] + t3 * s[1];
        int64_t o = t3 * s[-1] + t2 * s[0] + t1 * s[1] + t0 * s[2];
        dst[j] = (int32_t)((e + 128) >> 8);
        dst[j + 1] = (int32_t)((o + 128) >> 8);
    }
    for (; j < n_out; j++) dst[j] = up_sample_clamped(src, n, j, te);
}

/* Append the grids of level lv to a stack at that level (level gain 2^-lv). */
static void append_level(lossy *L, stack *s, uint32_t lv) {
    for (uint32_t g = 0; g < L->n_grids; g++) {
        if (L->levels[g] != lv) continue;
        const grid *gr = &L->grids[g];
        int32_t *plane = s->data + (size_t)s->n * s->h * s->w;
        int32_t gain = L->pf_q ? 1 : 1 << (UP_BITS - lv); /* pre-filtered: already scaled */
        for (uint32_t y = 0; y < gr->h; y++) {
            const int32_t *src = gr->padded + (size_t)(PAD + y) * gr->stride + PAD;
            for (uint32_t x = 0; x < gr->w; x++) plane[(size_t)y * s->w + x] = src[x] * gain;
        }
        s->grid_of[s->n++] = (int)g;
    }
}

static uint32_t count_level(const lossy *L, uint32_t lv) {
    uint32_t k = 0;
    for (uint32_t g = 0; g < L->n_grids; g++) k += L->levels[g] == lv;
    return k;
}

/* Upsample the grids of levels >= 1 recursively down to level 1 (fixed_point.upsample_grids
 * without its last step, which feature_row does one row at a time). */
HOT static nmem_status build_coarse(lossy *L, nmem_error *err) {
    stack *s = &L->coarse;
    memset(s, 0, sizeof *s);
    if (L->top == 0) return NMEM_OK;
    int32_t *tmp = NULL;
    for (uint32_t lv = L->top; lv >= 1; lv--) {
        uint32_t h = level_size(L->height, lv), w = level_size(L->width, lv);
        uint32_t n_new = s->n + count_level(L, lv);
        stack next;
        memset(&next, 0, sizeof next);
        next.h = h;
        next.w = w;
        if (n_new) {
            next.data = malloc((size_t)n_new * h * w * sizeof(int32_t));
            if (!next.data) {
                free(s->data);
                s->data = NULL;
                return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (lossy features)");
            }
        }
        if (s->n) {
            tmp = malloc((size_t)s->w * sizeof(int32_t));
            if (!tmp) {
                free(s->data);
                free(next.data);
                s->data = NULL;
                return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (lossy features)");
            }
            for (uint32_t c = 0; c < s->n; c++) {
                const int32_t *src = s->data + (size_t)c * s->h * s->w;
                int32_t *dst = next.data + (size_t)c * h * w;
                const int64_t *te = L->up_taps[lv]; /* stage lv: level lv + 1 -> lv */
                for (uint32_t j = 0; j < h; j++) {
                    up_vertical(src, s->h, s->w, j, te, tmp);
                    up_horizontal(tmp, s->w, te, dst + (size_t)j * w, w);
                }
                next.grid_of[c] = s->grid_of[c];
            }
            next.n = s->n;
            free(tmp);
            tmp = NULL;
        }
        free(s->data);
        *s = next;
        append_level(L, s, lv);
    }
    return NMEM_OK;
}

/* Full-resolution features of image row r: out[g * W + x] for every grid g (header order). */
HOT static void feature_row(const lossy *L, uint32_t r, int32_t *out, int32_t *tmp) {
    uint32_t W = L->width;
    for (uint32_t g = 0; g < L->n_grids; g++) {
        if (L->levels[g] != 0) continue;
        const grid *gr = &L->grids[g];
        const int32_t *src = gr->padded + (size_t)(PAD + r) * gr->stride + PAD;
        int32_t *dst = out + (size_t)g * W;
        int32_t gain = L->pf_q ? 1 : 1 << UP_BITS; /* pre-filtered: already scaled */
        for (uint32_t x = 0; x < W; x++) dst[x] = src[x] * gain;
    }
    const stack *s = &L->coarse;
    for (uint32_t c = 0; c < s->n; c++) {
        up_vertical(s->data + (size_t)c * s->h * s->w, s->h, s->w, r, L->up_taps[0], tmp);
        up_horizontal(tmp, s->w, L->up_taps[0], out + (size_t)s->grid_of[c] * W, W);
    }
}

/* ---------------------------------------------------------------- synthesis */

/* Per-pixel integer MLP over n pixels of planar features (feat[g * stride + x]) into
 * interleaved 8-bit pixels. */
INLINE void synth_block(const lossy *L, const int32_t *feat, size_t stride, uint32_t n, int32_t *bufs,
                        int64_t *acc, uint8_t *out) {
    int32_t *a = bufs, *b = bufs + (size_t)MAX_SYN_WIDTH * SYN_BLOCK;
    uint32_t g_n = L->dims[0];
    for (uint32_t g = 0; g < g_n; g++)
        for (uint32_t x = 0; x < n; x++) a[(size_t)g * SYN_BLOCK + x] = (int32_t)clip64(feat[(size_t)g * stride + x], SYN_ACT_CLIP);
    for (uint32_t l = 0; l < L->n_syn; l++) {
        const layer *ly = &L->mods[3 + l];
        int last = l + 1 == L->n_syn;
        int64_t half = (int64_t)1 << (ly->q - 1);
        for (uint32_t j = 0; j < ly->n_out; j++) {
            int64_t bias = (int64_t)ly->b[j] * (1 << UP_BITS);
            for (uint32_t x = 0; x < n; x++) acc[x] = bias;
            for (uint32_t i = 0; i < ly->n_in; i++) {
                int64_t wij = ly->w[(size_t)i * ly->n_out + j];
                const int32_t *src = a + (size_t)i * SYN_BLOCK;
                for (uint32_t x = 0; x < n; x++) acc[x] += src[x] * wij;
            }
            int32_t *dst = b + (size_t)j * SYN_BLOCK;
            for (uint32_t x = 0; x < n; x++) {
                int64_t v = (acc[x] + half) >> ly->q;
                if (!last && v < 0) v = 0;
                dst[x] = (int32_t)clip64(v, SYN_ACT_CLIP);
            }
        }
        int32_t *t = a;
        a = b;
        b = t;
    }
    uint32_t c_n = L->channels;
    for (uint32_t ch = 0; ch < c_n; ch++) {
        const int32_t *src = a + (size_t)ch * SYN_BLOCK;
        for (uint32_t x = 0; x < n; x++) {
            int64_t pix = ((int64_t)src[x] * 255 + (1 << (UP_BITS - 1))) >> UP_BITS;
            out[(size_t)x * c_n + ch] = (uint8_t)(pix < 0 ? 0 : (pix > 255 ? 255 : pix));
        }
    }
}

HOT static void synth_row(const lossy *L, const int32_t *feat, uint32_t n, int32_t *bufs, int64_t *acc, uint8_t *out) {
    for (uint32_t x0 = 0; x0 < n; x0 += SYN_BLOCK) {
        uint32_t m = n - x0 < SYN_BLOCK ? n - x0 : SYN_BLOCK;
        synth_block(L, feat + x0, n, m, bufs, acc, out + (size_t)x0 * L->channels);
    }
}

/* ---------------------------------------------------------------- resampling */

/* Bilinear source positions of n_out centres over n_in samples (fixed_point.resize_features):
 * i0, i1 and a 16-bit fraction. */
static void axis_weights(uint32_t n_in, uint32_t n_out, uint32_t *i0, uint32_t *i1, int64_t *frac) {
    for (uint32_t j = 0; j < n_out; j++) {
        int64_t pos = (int64_t)(((2 * (uint64_t)j + 1) * n_in * 65536u) / (2 * (uint64_t)n_out)) - 32768;
        int64_t top = ((int64_t)n_in - 1) * 65536;
        if (pos < 0) pos = 0;
        if (pos > top) pos = top;
        i0[j] = (uint32_t)(pos >> 16);
        frac[j] = pos & 65535;
        i1[j] = i0[j] + 1 < n_in ? i0[j] + 1 : n_in - 1;
    }
}

/* ---------------------------------------------------------------- the decode */

static void release(lossy *L) {
    for (uint32_t g = 0; g < MAX_GRIDS; g++) free(L->grids[g].padded);
    free(L->coarse.data);
    free(L);
}

typedef struct render_buffers {
    int32_t *rows[2]; /* cached full-resolution feature rows (G x W) */
    int64_t row_of[2];
    int32_t *tmp;     /* one coarse row */
    int32_t *blend;   /* G x W: vertically resampled row */
    int32_t *outrow;  /* G x out_w */
    int32_t *bufs;    /* synthesis activations */
    int64_t *acc;
    uint32_t *x0, *x1, *y0, *y1;
    int64_t *fx, *fy;
} render_buffers;

static void free_buffers(render_buffers *B) {
    free(B->rows[0]);
    free(B->rows[1]);
    free(B->tmp);
    free(B->blend);
    free(B->outrow);
    free(B->bufs);
    free(B->acc);
    free(B->x0);
    free(B->x1);
    free(B->y0);
    free(B->y1);
    free(B->fx);
    free(B->fy);
}

/* The features of full-resolution row r, from the two-row cache. */
static const int32_t *cached_row(const lossy *L, render_buffers *B, uint32_t r, uint32_t avoid) {
    for (int k = 0; k < 2; k++)
        if (B->row_of[k] == (int64_t)r) return B->rows[k];
    int k = B->row_of[0] == (int64_t)avoid ? 1 : 0; /* keep the other row of this output row */
    feature_row(L, r, B->rows[k], B->tmp);
    B->row_of[k] = r;
    return B->rows[k];
}

static nmem_status render(lossy *L, uint32_t out_w, uint32_t out_h, uint8_t *out, nmem_error *err) {
    uint32_t G = L->n_grids, W = L->width, H = L->height;
    int resize = out_w != W || out_h != H;
    render_buffers B;
    memset(&B, 0, sizeof B);
    B.row_of[0] = B.row_of[1] = -1;
    size_t row_bytes = (size_t)G * W * sizeof(int32_t);
    B.rows[0] = malloc(row_bytes);
    B.tmp = malloc(((size_t)L->coarse.w + 1) * sizeof(int32_t));
    B.bufs = malloc(2 * (size_t)MAX_SYN_WIDTH * SYN_BLOCK * sizeof(int32_t));
    B.acc = malloc(SYN_BLOCK * sizeof(int64_t));
    int fail = !B.rows[0] || !B.tmp || !B.bufs || !B.acc;
    if (resize && !fail) {
        B.rows[1] = malloc(row_bytes);
        B.blend = malloc(row_bytes);
        B.outrow = malloc((size_t)G * out_w * sizeof(int32_t));
        B.x0 = malloc((size_t)out_w * sizeof(uint32_t));
        B.x1 = malloc((size_t)out_w * sizeof(uint32_t));
        B.fx = malloc((size_t)out_w * sizeof(int64_t));
        B.y0 = malloc((size_t)out_h * sizeof(uint32_t));
        B.y1 = malloc((size_t)out_h * sizeof(uint32_t));
        B.fy = malloc((size_t)out_h * sizeof(int64_t));
        fail = !B.rows[1] || !B.blend || !B.outrow || !B.x0 || !B.x1 || !B.fx || !B.y0 || !B.y1 || !B.fy;
    }
    if (fail) {
        free_buffers(&B);
        return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (lossy render)");
    }
    size_t out_stride = (size_t)out_w * L->channels;
    if (!resize) {
        for (uint32_t r = 0; r < H; r++) {
            feature_row(L, r, B.rows[0], B.tmp);
            synth_row(L, B.rows[0], W, B.bufs, B.acc, out + (size_t)r * out_stride);
        }
    } else {
        axis_weights(W, out_w, B.x0, B.x1, B.fx);
        axis_weights(H, out_h, B.y0, B.y1, B.fy);
        for (uint32_t j = 0; j < out_h; j++) {
            const int32_t *a = cached_row(L, &B, B.y0[j], B.y1[j]);
            const int32_t *b = cached_row(L, &B, B.y1[j], B.y0[j]);
            int64_t fy = B.fy[j];
            for (size_t i = 0; i < (size_t)G * W; i++)
                B.blend[i] = (int32_t)(((int64_t)a[i] * (65536 - fy) + (int64_t)b[i] * fy + 32768) >> 16);
            for (uint32_t g = 0; g < G; g++) {
                const int32_t *src = B.blend + (size_t)g * W;
                int32_t *dst = B.outrow + (size_t)g * out_w;
                for (uint32_t x = 0; x < out_w; x++) {
                    int64_t fx = B.fx[x];
                    dst[x] = (int32_t)(((int64_t)src[B.x0[x]] * (65536 - fx) + (int64_t)src[B.x1[x]] * fx + 32768) >> 16);
                }
            }
            synth_row(L, B.outrow, out_w, B.bufs, B.acc, out + (size_t)j * out_stride);
        }
    }
    free_buffers(&B);
    return NMEM_OK;
}

nmem_status nmem_lossy_decode(const uint8_t *payload, size_t payload_size, uint32_t width, uint32_t height,
                              uint32_t channels, const nmem_decode_options *options, uint8_t *out, size_t out_size,
                              nmem_error *err) {
    if ((!payload && payload_size) || !out) return nmem_fail(err, NMEM_ERR_ARGUMENT, "NULL argument");
    if (channels != 1 && channels != 3) return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: unsupported channel count");
    uint64_t pixels = (uint64_t)width * height;
    if (!(width >= 1 && height >= 1 && pixels <= NMEM_FORMAT_MAX_PIXELS))
        return nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: bad image size");
    uint64_t limit = options && options->max_pixels ? options->max_pixels : NMEM_DEFAULT_MAX_PIXELS;
    if (pixels > limit) return nmem_fail(err, NMEM_ERR_LIMIT, "image is larger than the decoder's pixel limit");
    uint32_t out_w = width, out_h = height;
    if (options && (options->out_width || options->out_height)) {
        out_w = options->out_width;
        out_h = options->out_height;
        uint64_t out_px = (uint64_t)out_w * out_h;
        if (!(out_w >= 1 && out_h >= 1 && out_px <= NMEM_FORMAT_MAX_PIXELS && out_px <= limit))
            return nmem_fail(err, NMEM_ERR_ARGUMENT, "requested output size out of range");
    }
    if (out_size < (size_t)out_w * out_h * channels) return nmem_fail(err, NMEM_ERR_ARGUMENT, "output buffer too small");

    lossy *L = calloc(1, sizeof *L);
    if (!L) return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory");
    L->width = width;
    L->height = height;
    nmem_status st = read_header(L, payload, payload_size, channels, err);
    if (st != NMEM_OK) goto done;
    if ((uint64_t)L->n_grids * pixels > MAX_FEATURE_VALUES) {
        st = nmem_fail(err, NMEM_ERR_FORMAT, "lossy payload: too many latent grids for this image size");
        goto done;
    }
    if ((uint64_t)L->n_grids * out_w * out_h > MAX_FEATURE_VALUES) {
        st = nmem_fail(err, NMEM_ERR_ARGUMENT, "requested output size out of range");
        goto done;
    }
    nmem_rans r;
    nmem_rans_init(&r, payload, payload_size, L->stream_offset);
    st = pull_modules(L, &r, err);
    if (st != NMEM_OK) goto done;
    for (uint32_t g = 0; g < L->n_grids; g++) {
        grid *gr = &L->grids[g];
        gr->level = L->levels[g];
        gr->h = level_size(height, gr->level);
        gr->w = level_size(width, gr->level);
        gr->stride = (size_t)gr->w + 2 * PAD;
        gr->padded = calloc(((size_t)gr->h + PAD) * gr->stride, sizeof(int32_t));
        if (!gr->padded) {
            st = nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (latents)");
            goto done;
        }
    }
    st = decode_latents(L, &r, err);
    if (st != NMEM_OK) goto done;
    for (uint32_t g = 0; L->pf_q && g < L->n_grids; g++) {
        st = prefilter_grid(L, &L->grids[g], err);
        if (st != NMEM_OK) goto done;
    }
    st = build_coarse(L, err);
    if (st != NMEM_OK) goto done;
    st = render(L, out_w, out_h, out, err);
    if (st == NMEM_OK) nmem_fail(err, NMEM_OK, "ok");
done:
    release(L);
    return st;
}

/* ---------------------------------------------------------------- whole files */

nmem_status nmem_output_size(const nmem_info *info, const nmem_decode_options *options, uint32_t *width,
                             uint32_t *height, uint32_t *channels, nmem_error *err) {
    if (!info || !width || !height || !channels) return nmem_fail(err, NMEM_ERR_ARGUMENT, "NULL argument");
    uint64_t limit = options && options->max_pixels ? options->max_pixels : NMEM_DEFAULT_MAX_PIXELS;
    if ((uint64_t)info->width * info->height > limit)
        return nmem_fail(err, NMEM_ERR_LIMIT, "image is larger than the decoder's pixel limit");
    *width = info->width;
    *height = info->height;
    *channels = info->channels;
    if (options && (options->out_width || options->out_height)) {
        if (info->mode != NMEM_MODE_LOSSY)
            return nmem_fail(err, NMEM_ERR_ARGUMENT, "decoding at another size works for lossy files only");
        uint64_t px = (uint64_t)options->out_width * options->out_height;
        if (!(options->out_width >= 1 && options->out_height >= 1 && px <= NMEM_FORMAT_MAX_PIXELS && px <= limit))
            return nmem_fail(err, NMEM_ERR_ARGUMENT, "requested output size out of range");
        *width = options->out_width;
        *height = options->out_height;
    }
    return nmem_fail(err, NMEM_OK, "ok");
}

void nmem_image_free(nmem_image *image) {
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
}

/* Hand a decoded image over to the caller (who frees it with nmem_image_free). */
static nmem_status set_image(nmem_image *image, uint32_t w, uint32_t h, uint32_t c, uint32_t bit_depth,
                             uint8_t *pixels) {
    image->width = w;
    image->height = h;
    image->channels = c;
    image->bit_depth = bit_depth;
    image->pixels = pixels;
    return NMEM_OK;
}

nmem_status nmem_decode(const uint8_t *data, size_t size, const nmem_decode_options *options, nmem_image *image,
                        nmem_error *err) {
    if (!image) return nmem_fail(err, NMEM_ERR_ARGUMENT, "NULL argument");
    memset(image, 0, sizeof *image);
    nmem_info info;
    nmem_status st = nmem_parse(data, size, &info, err);
    if (st != NMEM_OK) return st;
    uint32_t w = 0, h = 0, c = 0;
    st = nmem_output_size(&info, options, &w, &h, &c, err);
    if (st != NMEM_OK) return st;
    /* the lossless engine's options for the DATA or ALPH section: the same pixel limit */
    const nmem_lossless_options lo = {options ? options->max_pixels : 0, NULL, NULL, NULL};
    if (info.mode != NMEM_MODE_LOSSY) {
        /* lossless / near-lossless: the DATA section (nmem_parse checked the section rules) */
        uint32_t maxval = (1u << info.bit_depth) - 1u;
        if (info.param > maxval) return nmem_fail(err, NMEM_ERR_FORMAT, "corrupted file: error bound out of range");
        size_t bytes = (size_t)w * h * c * (info.bit_depth / 8);
        uint8_t *pixels = malloc(bytes);
        if (!pixels) return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (image)");
        st = nmem_lossless_decode(data + info.sections[0].offset, info.sections[0].size, w, h, c, info.bit_depth,
                                  (uint32_t)info.param, &lo, pixels, bytes, err);
        if (st != NMEM_OK) {
            free(pixels);
            return st;
        }
        return set_image(image, w, h, c, info.bit_depth, pixels);
    }
    if (info.bit_depth != 8) return nmem_fail(err, NMEM_ERR_FORMAT, "corrupted file: lossy files hold 8-bit gray, RGB or RGBA");
    /* nmem_parse enforced docs/FORMAT.md's section rules: LOSY first (ALPH next for RGBA),
     * then only metadata sections (version 2), which the pixels do not depend on */
    if (info.n_sections < 1 || memcmp(info.sections[0].tag, "LOSY", 4) != 0)
        return nmem_fail(err, NMEM_ERR_FORMAT, "corrupted file: unexpected sections for a lossy file");
    uint32_t cc = c == 4 ? 3 : c; /* RGBA: the colour planes, then the alpha plane (ALPH) */
    if (c == 4 && (w != info.width || h != info.height))
        return nmem_fail(err, NMEM_ERR_UNSUPPORTED, "resizing the alpha plane of an RGBA file is not done by the C library");
    size_t n = (size_t)w * h * c;
    uint8_t *pixels = malloc(n);
    if (!pixels) return nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (image)");
    st = nmem_lossy_decode(data + info.sections[0].offset, info.sections[0].size, info.width, info.height, cc,
                           options, pixels, (size_t)w * h * cc, err);
    if (st == NMEM_OK && c == 4) {
        uint8_t *alpha = malloc((size_t)w * h);
        st = alpha ? nmem_lossless_decode(data + info.sections[1].offset, info.sections[1].size, w, h, 1, 8, 0, &lo,
                                          alpha, (size_t)w * h, err)
                   : nmem_fail(err, NMEM_ERR_MEMORY, "out of memory (alpha)");
        if (st == NMEM_OK)
            for (size_t i = (size_t)w * h; i-- > 0;) { /* spread RGB to RGBA in place, from the end */
                pixels[4 * i + 3] = alpha[i];
                pixels[4 * i + 2] = pixels[3 * i + 2];
                pixels[4 * i + 1] = pixels[3 * i + 1];
                pixels[4 * i] = pixels[3 * i];
            }
        free(alpha);
    }
    if (st != NMEM_OK) {
        free(pixels);
        return st;
    }
    return set_image(image, w, h, c, 8, pixels);
}
