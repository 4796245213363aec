/* Unit test of the C lossless engine, built by tests/test_native_lossless.py, plain and under
 * AddressSanitizer + UndefinedBehaviorSanitizer:
 *   test_lossless                          round trips of synthetic images (every channel
 *                                          count, 8 and 16 bits, k = 0, 1, 2, 4), the error
 *                                          bound, truncated / corrupted payloads, bad arguments,
 *                                          the pixel limit, cancelling; the same with one
 *                                          nmem_lossless_context reused by every call
 *   test_lossless PAYLOAD H W C DEPTH K OUT decode a payload and write the samples (16-bit ones
 *                                          little-endian) to OUT, for the golden hashes */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmem.h"

static int failures = 0;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* smooth gradient + a little noise */
static void synth(void *buf, uint32_t h, uint32_t w, uint32_t c, uint32_t depth) {
    uint32_t maxval = (1u << depth) - 1;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t k = 0; k < c; k++) {
                int64_t v = (int64_t)maxval * (x * (3 + k) + y * (5 - k)) / (8 * (h + w)) + maxval / 3;
                v += (int64_t)(rnd() % (maxval / 32 + 2)) - (maxval / 64);
                if (v < 0) v = 0;
                if (v > maxval) v = maxval;
                size_t i = ((size_t)y * w + x) * c + k;
                if (depth == 8)
                    ((uint8_t *)buf)[i] = (uint8_t)v;
                else
                    ((uint16_t *)buf)[i] = (uint16_t)v;
            }
}

static int stop_at_first(void *user, uint32_t done, uint32_t total) {
    (void)total;
    *(uint32_t *)user = done;
    return 1;
}

static void round_trips(void) {
    static const uint32_t chans[3] = {1, 3, 4}, nears[4] = {0, 1, 2, 4};
    nmem_lossless_context *shared = nmem_lossless_context_new();
    CHECK(shared != NULL);
    for (int ci = 0; ci < 3; ci++)
        for (uint32_t depth = 8; depth <= 16; depth += 8)
            for (int ni = 0; ni < 4; ni++) {
                uint32_t h = 13 + (uint32_t)ci, w = 17 + (uint32_t)ni, c = chans[ci], near = nears[ni];
                size_t n = (size_t)h * w * c, bytes = n * (depth / 8);
                void *img = malloc(bytes), *out = malloc(bytes);
                synth(img, h, w, c, depth);
                uint8_t *pay = NULL;
                size_t ps = 0;
                nmem_error err;
                CHECK(nmem_lossless_encode(img, w, h, c, depth, near, NULL, &pay, &ps, &err) == NMEM_OK);
                CHECK(nmem_lossless_decode(pay, ps, w, h, c, depth, near, NULL, out, bytes, &err) == NMEM_OK);
                for (size_t i = 0; i < n; i++) {
                    int64_t a = depth == 8 ? ((uint8_t *)img)[i] : ((uint16_t *)img)[i];
                    int64_t b = depth == 8 ? ((uint8_t *)out)[i] : ((uint16_t *)out)[i];
                    if (a - b > (int64_t)near || b - a > (int64_t)near) {
                        CHECK(!"error bound");
                        break;
                    }
                }
                /* truncations and corruptions fail cleanly (or decode garbage); a few cases,
                 * with and without the shared context */
                const nmem_lossless_options ctx_opt = {0, NULL, NULL, shared};
                for (size_t cut = 0; ni == 1 && depth == 8 && cut < ps; cut += 1 + ps / 4) {
                    nmem_status s = nmem_lossless_decode(pay, cut, w, h, c, depth, near, cut & 1 ? &ctx_opt : NULL,
                                                         out, bytes, &err);
                    CHECK(s == NMEM_ERR_FORMAT);
                }
                for (size_t at = 1; ni == 1 && depth == 8 && at < ps; at += 1 + ps / 3) {
                    pay[at] ^= 0x5A;
                    nmem_status s = nmem_lossless_decode(pay, ps, w, h, c, depth, near, at & 1 ? &ctx_opt : NULL,
                                                         out, bytes, &err);
                    CHECK(s == NMEM_OK || s == NMEM_ERR_FORMAT);
                    pay[at] ^= 0x5A;
                }
                /* the same calls with a context kept across all of them (tables reused, for
                 * every channel count in turn, after truncated / corrupt decodes that stopped
                 * early): the same bytes and pixels */
                nmem_lossless_options with = {0, NULL, NULL, shared};
                uint8_t *pay2 = NULL;
                size_t ps2 = 0;
                void *out2 = malloc(bytes);
                CHECK(nmem_lossless_encode(img, w, h, c, depth, near, &with, &pay2, &ps2, &err) == NMEM_OK);
                CHECK(ps2 == ps && memcmp(pay2, pay, ps) == 0);
                CHECK(nmem_lossless_decode(pay2, ps2, w, h, c, depth, near, &with, out2, bytes, &err) == NMEM_OK);
                CHECK(nmem_lossless_decode(pay2, ps2, w, h, c, depth, near, NULL, out, bytes, &err) == NMEM_OK);
                CHECK(memcmp(out, out2, bytes) == 0);
                nmem_free(pay2);
                free(out2);
                nmem_free(pay);
                free(img);
                free(out);
            }
    nmem_lossless_context_free(shared);
    nmem_lossless_context_free(NULL);
}

static void arguments(void) {
    uint8_t img[64 * 3] = {0}, out[64 * 3];
    uint8_t *pay = NULL;
    size_t ps = 0;
    nmem_error err;
    CHECK(nmem_lossless_encode(img, 8, 8, 2, 8, 0, NULL, &pay, &ps, &err) == NMEM_ERR_ARGUMENT);
    CHECK(nmem_lossless_encode(img, 8, 8, 3, 12, 0, NULL, &pay, &ps, &err) == NMEM_ERR_ARGUMENT);
    CHECK(nmem_lossless_encode(img, 8, 8, 3, 8, 256, NULL, &pay, &ps, &err) == NMEM_ERR_ARGUMENT);
    CHECK(nmem_lossless_encode(img, 0, 8, 3, 8, 0, NULL, &pay, &ps, &err) == NMEM_ERR_ARGUMENT);
    CHECK(nmem_lossless_encode(img, 8, 8, 3, 8, 255, NULL, &pay, &ps, &err) == NMEM_OK);
    CHECK(nmem_lossless_decode(pay, ps, 8, 8, 3, 8, 255, NULL, out, sizeof out, &err) == NMEM_OK);
    CHECK(nmem_lossless_decode(pay, ps, 8, 8, 3, 8, 255, NULL, out, sizeof out - 1, &err) == NMEM_ERR_ARGUMENT);
    pay[0] = 2;
    CHECK(nmem_lossless_decode(pay, ps, 8, 8, 3, 8, 255, NULL, out, sizeof out, &err) == NMEM_ERR_FORMAT);
    nmem_free(pay);
    /* a huge header is refused by the pixel limit before anything is allocated */
    nmem_lossless_options opt = {1000, NULL, NULL, NULL};
    uint8_t tiny[8] = {3, 0, 0, 0, 0, 0, 0, 0};
    CHECK(nmem_lossless_decode(tiny, 8, 65536, 4096, 4, 16, 0, NULL, out, sizeof out, &err) == NMEM_ERR_LIMIT);
    CHECK(nmem_lossless_decode(tiny, 8, 100, 100, 1, 8, 0, &opt, out, sizeof out, &err) == NMEM_ERR_LIMIT);
    /* a progress callback stops the call */
    uint32_t seen = 0;
    uint8_t big[40 * 5] = {0};
    nmem_lossless_options stop = {0, stop_at_first, &seen, NULL};
    pay = NULL;
    CHECK(nmem_lossless_encode(big, 5, 40, 1, 8, 0, &stop, &pay, &ps, &err) == NMEM_ERR_CANCELLED);
    CHECK(pay == NULL && seen == 16);
}

static int decode_file(char **argv) {
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    static uint8_t data[1 << 20];
    size_t size = fread(data, 1, sizeof data, f);
    fclose(f);
    uint32_t h = (uint32_t)atoi(argv[2]), w = (uint32_t)atoi(argv[3]), c = (uint32_t)atoi(argv[4]);
    uint32_t depth = (uint32_t)atoi(argv[5]), near = (uint32_t)atoi(argv[6]);
    size_t n = (size_t)h * w * c, bytes = n * (depth / 8);
    uint8_t *out = malloc(bytes);
    nmem_error err;
    if (nmem_lossless_decode(data, size, w, h, c, depth, near, NULL, out, bytes, &err) != NMEM_OK) {
        printf("decode failed: %s\n", err.message);
        free(out);
        return 1;
    }
    if (depth == 16) /* little-endian, whatever the host */
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, out + 2 * i, 2);
            out[2 * i] = (uint8_t)(v & 255);
            out[2 * i + 1] = (uint8_t)(v >> 8);
        }
    FILE *g = fopen(argv[7], "wb");
    if (!g) {
        free(out);
        return 2;
    }
    fwrite(out, 1, bytes, g);
    fclose(g);
    free(out);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 8) return decode_file(argv);
    round_trips();
    arguments();
    printf("%s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
