/* Training kernels of the lossy encoder (float32, CPU): the per-pixel synthesis MLP with its
 * backward pass, and the ARM rate with its backward pass. See train_kernels.py for what they
 * compute; this is the C version of its numba kernels.
 *
 * Layout: every "panel" is a set of rows of float32, one row per feature / hidden unit, the
 * pixels (positions) of a block along the row, so that 8 consecutive pixels fill one AVX2
 * register. Reductions over pixels (weight gradients) go into "lanes": 8 float partial sums
 * per weight, added in a fixed order and reduced at the end of a part, so a part's result
 * depends only on its pixel range, never on the thread that runs it. */
#ifndef NM_TRAIN_H
#define NM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define NM_HAVE_AVX2 1 /* compiled with target("avx2,fma"), used if the CPU has them */
#endif

/* Version of the Python-facing calls (module.c): train_kernels.py ignores a build whose
 * version differs (a stale in-place build) and falls back to numba. */
#define NM_TRAIN_API 6

#define NM_SYN_BLOCK 192 /* pixels per synthesis block: 24 vectors of 8 */
#define NM_ARM_CHUNK 96  /* positions per ARM chunk: 12 vectors of 8 */

/* The building blocks, in a generic C version and an AVX2/FMA version. */
typedef struct {
    /* Y[j][px] = act(bias[j] + sum_k W[k * ldw + j] * X[k][px]) for j < n_out, over nv
     * vectors of 8 pixels; act: ReLU if relu, then zeroed where mask[j][px] <= 0 if mask. */
    void (*dense)(const float *X, ptrdiff_t ldx, int n_in, const float *W, ptrdiff_t ldw,
                  int n_out, const float *bias, int relu, const float *mask, ptrdiff_t ldm,
                  float *Y, ptrdiff_t ldy, int nv);
    /* L[(i * ldl + q) * 8 + lane] += sum over pixels of Y[i][px] * X[q][px] (px = 8v + lane). */
    void (*outer)(const float *Y, ptrdiff_t ldy, int n_y, const float *X, ptrdiff_t ldx, int n_x,
                  int nv, float *L, ptrdiff_t ldl);
    /* Backward of a small output layer (n_c <= 4 outputs) through a ReLU hidden layer H:
     * lanes Lw[c * n_h + k] += G[c] * H[k], Lb[k] += D[k], and H[k] is overwritten by
     * D[k] = (H[k] > 0) * sum_c W[c * n_h + k] * G[c]. */
    void (*backout)(float *H, ptrdiff_t ldh, int n_h, const float *G, ptrdiff_t ldg, int n_c,
                    const float *W, int nv, float *Lw, float *Lb);
    /* Squared error of O (n_c rows, stride ldo) against T (stride ldt) over the first m
     * pixels: returns the sum; O becomes two_s * error (0 past m), lanes Lb[c] += O[c]. */
    double (*sq_error)(float *O, ptrdiff_t ldo, const float *T, ptrdiff_t ldt, int n_c, int nv,
                       int m, float two_s, float *Lb);
    /* Discretised-Laplace bits of V under (MU, LB) for the first m positions (nv vectors),
     * returns the sum of bits; writes sw * d/dv, sw * d/dmu, sw * d/dlogb (0 past m). */
    double (*laplace)(const float *V, const float *MU, const float *LB, int nv, int m,
                      float logb_lo, float logb_hi, float sw, float *GV, float *GMU, float *GLB);
    /* S[lane] += R[px] summed over nv vectors (a bias gradient). */
    void (*rowsum)(const float *R, int nv, float *S);
    /* D[i] = F[at + s * i] for lo <= i < hi, 0 for the other i < n (a strided row read). */
    void (*gather)(const float *F, int64_t at, int64_t s, int lo, int hi, int n, float *D);
    /* F[at + s * i] += G[i] for lo <= i < hi (its adjoint). */
    void (*scatter)(float *F, int64_t at, int64_t s, int lo, int hi, const float *G);
    /* The training proxy of rounding for n values (train.proxy_and_derivative): P = sr(sr(Y) +
     * N), D = dP/dY, where sr(x) = m + k tanh((x - m) / t), m = floor(x) + 0.5 and
     * k = 1 / (2 tanh(0.5 / t)); t > 0. */
    void (*proxy)(const float *Y, const float *N, int64_t n, float t, float *P, float *D);
    /* One Adam update of n values (optim.Adam): the gradient G = G1 (times D1 if D1) plus
     * G2 * D2 if G2 (the chain rule through the rounding proxies, train._fused_step),
     * M = b1 M + a1 G, V = b2 V + a2 G^2, P -= step * M / (sqrt(V / c2) + eps), where
     * a1 = 1 - b1 and a2 = 1 - b2 come rounded from double (as torch's alphas). */
    void (*adam)(float *P, float *M, float *V, const float *G1, const float *D1, const float *G2,
                 const float *D2, int64_t n, float step, float b1, float a1, float b2, float a2,
                 float c2, float eps);
    /* N[i] = sigma * z(key, i0 + i) for i < n: standard normal samples that depend only on
     * the 64-bit key and the index (see nm_gauss_c), whatever the split into calls. */
    void (*gauss)(float *N, int64_t i0, int64_t n, float sigma, uint64_t key);
} nm_ops;

extern const nm_ops nm_ops_generic;
#if defined(NM_HAVE_AVX2)
extern const nm_ops nm_ops_avx2;
/* dense and outer on 16-pixel vectors (kernels_avx512.c); the other blocks are AVX2's */
void nm_dense_avx512(const float *X, ptrdiff_t ldx, int n_in, const float *W, ptrdiff_t ldw,
                     int n_out, const float *bias, int relu, const float *mask, ptrdiff_t ldm,
                     float *Y, ptrdiff_t ldy, int nv);
void nm_outer_avx512(const float *Y, ptrdiff_t ldy, int n_y, const float *X, ptrdiff_t ldx,
                     int n_x, int nv, float *L, ptrdiff_t ldl);
#endif
void nm_train_init(void); /* once, before any kernel runs (builds the AVX-512 table) */
/* The best building blocks for this CPU: at most `cap` (NM_ISA_*), 0 = no cap. */
enum { NM_ISA_GENERIC = 1, NM_ISA_AVX2 = 2, NM_ISA_AVX512 = 3 };
const nm_ops *nm_ops_select(int cap);
/* The generic proxy (the AVX2 one uses it for the last n % 8 values). */
void nm_proxy_c(const float *Y, const float *N, int64_t n, float t, float *P, float *D);
/* The generic Gaussian noise: a counter-based hash of (key, index) gives a uniform u in
 * (0, 1) (24 bits), and z = Phi^-1(u) by Acklam's rational approximation (relative error
 * ~1e-9 in exact arithmetic; float here), so |z| < 5.4. The hash, the coefficients and the
 * switch to the tail formula (min(u, 1 - u) <= NM_GAUSS_TAIL) below serve both versions. */
void nm_gauss_c(float *N, int64_t i0, int64_t n, float sigma, uint64_t key);
#define NM_GOLDEN 0x9e3779b9u /* index * golden ratio, then MurmurHash3's finaliser twice */
#define NM_FMIX_1 0x85ebca6bu
#define NM_FMIX_2 0xc2b2ae35u
#define NM_GAUSS_TAIL 0.02425f
extern const float NM_GAUSS_A[6], NM_GAUSS_B[6], NM_GAUSS_C[6], NM_GAUSS_D[5];
/* The generic Adam update (the AVX2 one uses it for the last n % 8 values). */
void nm_adam_c(float *P, float *M, float *V, const float *G1, const float *D1, const float *G2,
               const float *D2, int64_t n, float step, float b1, float a1, float b2, float a2,
               float c2, float eps);
int nm_isa(void); /* the best NM_ISA_* this CPU runs */

typedef struct {
    const float *feat;   /* (g_n, n) */
    const float *target; /* (c_n, n) */
    float *grad_feat;    /* (g_n, n) or NULL: no gradients */
    int64_t n;
    const float *w1, *b1, *w2, *b2; /* (h_n, g_n), (h_n), (c_n, h_n), (c_n) */
    int g_n, c_n, h_n;
    float scale;
    /* Features built from the upsampler instead of read from feat (when up != NULL): pixel p
     * is column p % width of full-resolution row rows[p / width]; its features are the row pass
     * of the coarse stack (n_old, h1, width) there, then the level-0 grids (n_new, height,
     * width); g_n = n_old + n_new. With want_grad, the feature gradients are added (instead
     * of written to grad_feat) into g_lvl0 (n_new, height, width) and, through the adjoint of
     * the row pass, into the coarse rows band_lo .. band_lo + band_n - 1: row band_lo + k of
     * g_coarse (n_old, h1, width) where slot[k] < 0 (rows no other part touches), else row
     * slot[k] of edge (n_old, n_edge, width) (rows the caller adds up in part order). */
    const void *up;
    const float *up_taps; /* the last stage's 4 even-phase taps (see nm_up_rows) */
    const float *coarse, *lvl0;
    const int64_t *rows, *slot;
    int64_t n_old, n_new, h1, height, width, band_lo, band_n, n_edge;
    float *g_coarse, *edge, *g_lvl0;
    int want_grad;
} nm_synth_args;

/* Blocks [blk0, blk1) of NM_SYN_BLOCK pixels. out: gw1 (h_n*g_n), gb1 (h_n), gw2 (c_n*h_n),
 * gb2 (c_n), overwritten. Returns 0, -1 if memory ran out, -2 if the band was too small. */
int nm_synth_part(const nm_synth_args *a, int64_t blk0, int64_t blk1, float *out, double *sse,
                  const nm_ops *ops);

typedef struct {
    const float *flat;
    const int64_t *offs, *shapes, *parents, *strides, *phases; /* per grid */
    const float *weights;                                      /* per grid */
    const int64_t *tasks;                                      /* (n_tasks, 2): grid, row */
    const int64_t *ctx_off, *par_off;                          /* (n_sp, 2), (n_par, 2) */
    int n_sp, n_par, a_n;
    const float *w0, *b0, *w1, *b1, *w2, *b2; /* nn.Linear layout: (a_n, n_ctx), ... (2, a_n) */
    float logb_lo, logb_hi, scale;
    float *g_flat; /* gradient grids (flat; zeroed by the call), or NULL when scale == 0 */
    int64_t n_flat;
} nm_arm_args;

/* Tasks [t0, t1). out: gw0 (n_ctx, a_n), gb0, gw1 (a_n, a_n) as (in, out), gb1, gw2 (a_n, 2),
 * gb2 (2), overwritten. Returns 0, or -1 if memory ran out. */
int nm_arm_part(const nm_arm_args *a, int64_t t0, int64_t t1, float *out, double *bits,
                const nm_ops *ops);

/* The training upsampler (upsample.c). Level-l grids are ceil(height / 2^l) x
 * ceil(width / 2^l); cap as nm_ops_select's. Each returns 0, or -1 if memory ran out.
 * Filters: taps[4 * s .. 4 * s + 3] are the even-phase taps of stage s (level s + 1 -> s; a row
 * of fixed_point.UP_TABLES over 256), the odd phase reads them reversed; the row passes to
 * full-resolution rows (stage 0) take that stage's four taps. */
/* out (h_1, width) = the grid (level >= 1, times 2^-level) upsampled to level 1, then 2x along
 * its columns to full width; taps of stages 0 .. level - 1. */
int nm_up_coarse(const float *grid, int level, int64_t height, int64_t width,
                 const float *taps, float *out, int cap);
/* grad (the grid's shape) += the adjoint of nm_up_coarse applied to g (h_1, width). */
int nm_up_coarse_adjoint(const float *g, int level, int64_t height, int64_t width,
                         const float *taps, float *grad, int cap);
/* out[c] (r_n, w) = 2x rows of src[c] (h, w) at output rows `rows`, channels c0 <= c < c1. */
int nm_up_rows(const float *src, int64_t h, int64_t w, const int64_t *rows, int64_t r_n,
               int64_t c0, int64_t c1, const float *taps, float *out, int cap);
/* out[c] (h, w) += the adjoint of nm_up_rows applied to g[c] (r_n, w), c0 <= c < c1. */
int nm_up_rows_adjoint(const float *g, int64_t h, int64_t w, const int64_t *rows, int64_t r_n,
                       int64_t c0, int64_t c1, const float *taps, float *out, int cap);
/* The row pass on one segment of an output row, for nm_synth_part: ops from nm_up_select(cap);
 * dst[c * ldd + i] = output row `row` of channel c of coarse (n_c, h, w) at column x0 + i,
 * i < len. The adjoint adds t * g[c * ldg + i] into source row s of channel c, which is at
 * rp[s - lo] + c * cs[s - lo] for lo <= s < lo + band_n; it returns -1 (and adds nothing) if
 * a source row of `row` is outside them. Taps of one source row (clamped) are summed first. */
const void *nm_up_select(int cap);
void nm_up_segment(const void *ops, const float *taps, const float *coarse, int64_t n_c,
                   int64_t h, int64_t w, int64_t row, int64_t x0, int64_t len, float *dst,
                   ptrdiff_t ldd);
int nm_up_segment_adjoint(const void *ops, const float *taps, const float *g, ptrdiff_t ldg,
                          int64_t n_c, int64_t h, int64_t row, int64_t x0, int64_t len,
                          float *const *rp, const int64_t *cs, int64_t lo, int64_t band_n);

#endif
