/* Internal declarations shared by the library's sources (not installed, not public API). */
#ifndef NMEM_INTERNAL_H
#define NMEM_INTERNAL_H

#include "nmem.h"

/* Every right shift of a negative value here must be an arithmetic (floor) shift, as numpy's
 * and numba's are. C leaves it implementation-defined; every compiler we target (gcc, clang,
 * clang for wasm32) shifts arithmetically, and this refuses to build anywhere else. Left
 * shifts of negative values are undefined behaviour in C: the code multiplies instead. */
#if (-1 >> 1) != -1
#error "nmem needs an arithmetic right shift of negative integers"
#endif

nmem_status nmem_fail(nmem_error *error, nmem_status status, const char *message);

/* ---- generated tables (tables.c, scripts/gen_native_tables.py) ---- */
#define NMEM_LAPLACE_RADIUS 63
#define NMEM_LAPLACE_NSYM (2 * NMEM_LAPLACE_RADIUS + 3) /* 129 */
#define NMEM_LAPLACE_NFRAC 8
#define NMEM_LAPLACE_NSCALE 64
#define NMEM_LAPLACE_ROWS (NMEM_LAPLACE_NSCALE * NMEM_LAPLACE_NFRAC)
extern const uint16_t nmem_laplace_cdf[NMEM_LAPLACE_ROWS][NMEM_LAPLACE_NSYM];
extern const uint32_t nmem_crc32_table[256];

uint32_t nmem_crc32(const uint8_t *data, size_t size);

/* ---- rANS decoder (src/neural_memory/entropy/rans.py) ----
 * 32-bit state in [2^23, 2^31), 16-bit frequencies, bytes read forwards. Reading past the
 * end feeds zeros and sets `error`; callers stop at the first error. */
#define NMEM_RANS_PROB_BITS 16
#define NMEM_RANS_L (1u << 23)

typedef struct nmem_rans {
    const uint8_t *buf;
    size_t size;
    size_t pos;
    uint64_t x;
    int error;
} nmem_rans;

void nmem_rans_init(nmem_rans *r, const uint8_t *buf, size_t size, size_t pos);

static inline void nmem_rans_renorm(nmem_rans *r) {
    while (r->x < NMEM_RANS_L) {
        uint64_t b = 0;
        if (r->pos < r->size) {
            b = r->buf[r->pos];
        } else {
            r->error = 1;
        }
        r->x = (r->x << 8) | b;
        r->pos++;
        if (r->error) break; /* the numba decoder reads on (zeros), but the result is an error */
    }
}

/* One symbol of a 129-symbol Laplace row (cdf[s] = start of symbol s, end 2^16 implicit). */
static inline int nmem_rans_symbol(nmem_rans *r, const uint16_t *cdf) {
    uint32_t slot = (uint32_t)(r->x & 0xFFFFu);
    int lo = 0, hi = NMEM_LAPLACE_NSYM;
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (cdf[mid] <= slot)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t start = cdf[lo];
    uint64_t end = lo + 1 < NMEM_LAPLACE_NSYM ? cdf[lo + 1] : (1u << 16);
    r->x = (end - start) * (r->x >> NMEM_RANS_PROB_BITS) + slot - start;
    nmem_rans_renorm(r);
    return lo;
}

/* One equiprobable bit. */
static inline int nmem_rans_bit(nmem_rans *r) {
    uint32_t slot = (uint32_t)(r->x & 0xFFFFu);
    int bit = slot >= 0x8000u;
    r->x = 0x8000u * (r->x >> NMEM_RANS_PROB_BITS) + slot - (bit ? 0x8000u : 0u);
    nmem_rans_renorm(r);
    return bit;
}

/* ---- integer Laplace coding (src/neural_memory/entropy/laplace.py) ---- */
#define NMEM_FP_BITS 8
#define NMEM_LOGB_MIN_FP (-896)
#define NMEM_LOGB_STEP_FP 28
#define NMEM_ESCAPE_MAX_BITS 20

/* Integer centre and table row of a fixed-point mean / log-scale (laplace.table_row). */
static inline int nmem_table_row(int64_t mu_fp, int64_t logb_fp, int64_t *center) {
    *center = mu_fp >> NMEM_FP_BITS;
    int64_t frac = (mu_fp & ((1 << NMEM_FP_BITS) - 1)) >> (NMEM_FP_BITS - 3);
    int64_t num = logb_fp - NMEM_LOGB_MIN_FP + (NMEM_LOGB_STEP_FP >> 1);
    /* floor division, as Python's // */
    int64_t si = num >= 0 ? num / NMEM_LOGB_STEP_FP : -((-num + NMEM_LOGB_STEP_FP - 1) / NMEM_LOGB_STEP_FP);
    if (si < 0) si = 0;
    if (si > NMEM_LAPLACE_NSCALE - 1) si = NMEM_LAPLACE_NSCALE - 1;
    return (int)(si * NMEM_LAPLACE_NFRAC + frac);
}

/* One integer coded around `center` with Laplace row `row` (laplace.pull_value). */
static inline int64_t nmem_pull_value(nmem_rans *r, int64_t center, int row) {
    int sym = nmem_rans_symbol(r, nmem_laplace_cdf[row]);
    if (sym == 0 || sym == NMEM_LAPLACE_NSYM - 1) {
        int nb = 0;
        while (!r->error && nmem_rans_bit(r) == 1) {
            nb++;
            if (nb > NMEM_ESCAPE_MAX_BITS) {
                r->error = 1;
                return center;
            }
        }
        int64_t e1 = 1;
        for (int i = 0; i < nb; i++) e1 = (e1 << 1) | nmem_rans_bit(r);
        int64_t e = e1 - 1;
        if (sym == 0) return center - NMEM_LAPLACE_RADIUS - 1 - e;
        return center + NMEM_LAPLACE_RADIUS + 1 + e;
    }
    return center + sym - 1 - NMEM_LAPLACE_RADIUS;
}

#endif /* NMEM_INTERNAL_H */
