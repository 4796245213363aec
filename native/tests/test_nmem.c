/* Unit tests of the native core, built and run by tests/test_native.py (also under
 * AddressSanitizer + UndefinedBehaviorSanitizer):
 *
 *     test_nmem GOLDEN_PAYLOAD OUT_RAW
 *
 * checks CRC-32, varints and the container parser (hand-built files, every truncation and
 * byte flip), rANS + Laplace coding (a test-only encoder, escapes included), then decodes the
 * lossy golden payload (32 x 32 RGB) into OUT_RAW for the caller to hash, and decodes every
 * truncation and many corruptions of it (must fail cleanly or decode, never crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmem_internal.h"

static int failures = 0;
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* ---- a container writer (test only) ---- */
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

static size_t build_file(uint8_t *out, uint8_t mode, uint32_t w, uint32_t h, uint8_t c, uint8_t depth, uint32_t param,
                         const char *tag, const uint8_t *payload, size_t n) {
    size_t p = 0;
    memcpy(out, "NMEM", 4);
    p = 4;
    out[p++] = 1;
    out[p++] = mode;
    p += put_varint(out + p, w);
    p += put_varint(out + p, h);
    out[p++] = c;
    out[p++] = depth;
    p += put_varint(out + p, param);
    p += put_varint(out + p, tag ? 1 : 0);
    if (tag) {
        memcpy(out + p, tag, 4);
        p += 4;
        p += put_varint(out + p, n);
        memcpy(out + p, payload, n);
        p += n;
    }
    uint32_t crc = nmem_crc32(out, p);
    for (int i = 0; i < 4; i++) out[p++] = (uint8_t)(crc >> (8 * i));
    return p;
}

static void test_crc(void) {
    CHECK(nmem_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u);
    CHECK(nmem_crc32(NULL, 0) == 0);
}

static void test_container(void) {
    uint8_t buf[256];
    const uint8_t payload[3] = {1, 2, 3};
    size_t n = build_file(buf, NMEM_MODE_LOSSLESS, 300, 2, 3, 16, 0, "DATA", payload, 3);
    nmem_info info;
    nmem_error err;
    CHECK(nmem_parse(buf, n, &info, &err) == NMEM_OK);
    CHECK(info.width == 300 && info.height == 2 && info.channels == 3 && info.bit_depth == 16);
    CHECK(info.n_sections == 1 && strcmp(info.sections[0].tag, "DATA") == 0);
    CHECK(info.sections[0].size == 3 && memcmp(buf + info.sections[0].offset, payload, 3) == 0);
    CHECK(nmem_find_section(&info, "DATA") == &info.sections[0]);
    CHECK(nmem_find_section(&info, "LOSY") == NULL);
    /* every truncation fails; every single-byte change fails (the CRC covers all bytes) */
    for (size_t k = 0; k < n; k++) CHECK(nmem_parse(buf, k, &info, &err) == NMEM_ERR_FORMAT);
    for (size_t k = 0; k < n; k++) {
        buf[k] ^= 0x41;
        CHECK(nmem_parse(buf, n, &info, &err) == NMEM_ERR_FORMAT);
        buf[k] ^= 0x41;
    }
    /* header rules */
    n = build_file(buf, NMEM_MODE_NEAR_LOSSLESS, 4, 4, 1, 8, 0, "DATA", payload, 3);
    CHECK(nmem_parse(buf, n, &info, &err) == NMEM_ERR_FORMAT); /* near-lossless without k */
    n = build_file(buf, NMEM_MODE_LOSSY, 70000, 4, 3, 8, 0, "LOSY", payload, 3);
    CHECK(nmem_parse(buf, n, &info, &err) == NMEM_ERR_FORMAT); /* side over 65536 */
    n = build_file(buf, NMEM_MODE_LOSSY, 65536, 65536, 3, 8, 0, "LOSY", payload, 3);
    CHECK(nmem_parse(buf, n, &info, &err) == NMEM_ERR_FORMAT); /* over 2^28 pixels */
    n = build_file(buf, NMEM_MODE_LOSSY, 4, 4, 2, 8, 0, "LOSY", payload, 3);
    CHECK(nmem_parse(buf, n, &info, &err) == NMEM_ERR_FORMAT); /* 2 channels */
    n = build_file(buf, NMEM_MODE_LOSSY, 4, 4, 3, 8, 0, NULL, NULL, 0);
    CHECK(nmem_parse(buf, n, &info, &err) == NMEM_ERR_FORMAT); /* no LOSY section */
    /* a lossy file without its section is a format error for nmem_decode */
    nmem_image img;
    CHECK(nmem_decode(buf, n, NULL, &img, &err) == NMEM_ERR_FORMAT && img.pixels == NULL);
    n = build_file(buf, NMEM_MODE_LOSSLESS, 4, 4, 3, 8, 0, "DATA", payload, 3);
    CHECK(nmem_decode(buf, n, NULL, &img, &err) == NMEM_ERR_FORMAT); /* 3-byte payload: too short */
    /* over-long varint */
    uint8_t bad[] = {'N', 'M', 'E', 'M', 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0};
    CHECK(nmem_parse(bad, sizeof bad, &info, &err) == NMEM_ERR_FORMAT);
    CHECK(nmem_parse(NULL, 0, &info, &err) == NMEM_ERR_FORMAT);
    CHECK(nmem_parse(buf, n, NULL, &err) == NMEM_ERR_ARGUMENT);
}

/* ---- rANS + Laplace: a test-only encoder (entropy/rans.py, laplace.push_value) ---- */
typedef struct sym {
    uint32_t start, freq;
} sym;

static size_t push_value(int64_t v, int64_t center, int row, sym *out) {
    const uint16_t *cdf = nmem_laplace_cdf[row];
    int64_t d = v - center, e = -1;
    int s;
    if (d < -NMEM_LAPLACE_RADIUS) {
        s = 0;
        e = -NMEM_LAPLACE_RADIUS - 1 - d;
    } else if (d > NMEM_LAPLACE_RADIUS) {
        s = NMEM_LAPLACE_NSYM - 1;
        e = d - NMEM_LAPLACE_RADIUS - 1;
    } else {
        s = (int)(1 + NMEM_LAPLACE_RADIUS + d);
    }
    size_t k = 0;
    uint32_t end = s + 1 < NMEM_LAPLACE_NSYM ? cdf[s + 1] : 65536u;
    out[k++] = (sym){cdf[s], end - cdf[s]};
    if (e >= 0) {
        int64_t e1 = e + 1;
        int nb = 0;
        while ((e1 >> (nb + 1)) > 0) nb++;
        for (int i = 0; i < nb; i++) out[k++] = (sym){32768, 32768};
        out[k++] = (sym){0, 32768};
        for (int j = nb - 1; j >= 0; j--) out[k++] = (sym){32768u * (uint32_t)((e1 >> j) & 1), 32768};
    }
    return k;
}

static size_t rans_encode(const sym *s, size_t n, uint8_t *out, size_t cap) {
    size_t p = cap;
    uint64_t x = NMEM_RANS_L;
    for (size_t i = n; i-- > 0;) {
        uint64_t x_max = ((uint64_t)(NMEM_RANS_L >> 16) << 8) * s[i].freq;
        while (x >= x_max) {
            out[--p] = (uint8_t)(x & 255);
            x >>= 8;
        }
        x = ((x / s[i].freq) << 16) + (x % s[i].freq) + s[i].start;
    }
    for (int i = 0; i < 4; i++) {
        out[--p] = (uint8_t)(x & 255);
        x >>= 8;
    }
    memmove(out, out + p, cap - p);
    return cap - p;
}

static void test_rans(void) {
    enum { N = 20000 };
    static int64_t vals[N], centers[N];
    static int rows[N];
    static sym syms[N * 45];
    static uint8_t stream[N * 45 * 2 + 64];
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        rows[i] = (int)(rnd() % NMEM_LAPLACE_ROWS);
        centers[i] = (int64_t)(rnd() % 2001) - 1000;
        int64_t spread = i % 100 == 0 ? 3000000 : 40; /* a few far escapes */
        vals[i] = centers[i] + (int64_t)(rnd() % (2 * spread + 1)) - spread;
        if (vals[i] - centers[i] > (1 << 20)) vals[i] = centers[i] + (1 << 20);
        if (vals[i] - centers[i] < -(1 << 20)) vals[i] = centers[i] - (1 << 20);
        k += push_value(vals[i], centers[i], rows[i], syms + k);
    }
    size_t n = rans_encode(syms, k, stream, sizeof stream);
    nmem_rans r;
    nmem_rans_init(&r, stream, n, 0);
    int ok = 1;
    for (int i = 0; i < N && ok; i++) ok = nmem_pull_value(&r, centers[i], rows[i]) == vals[i] && !r.error;
    CHECK(ok);
    CHECK(r.pos == n && r.x == NMEM_RANS_L);
    /* table_row: floor semantics on negative means and scales */
    int64_t c;
    CHECK(nmem_table_row(-1, -100000, &c) == 7 && c == -1);
    CHECK(nmem_table_row(256 * 5 + 32, 100000, &c) == 63 * 8 + 1 && c == 5);
    CHECK(nmem_table_row(-256, -896 - 15, &c) == 0 && c == -1);
    CHECK(nmem_table_row(0, -896 - 14, &c) == 0); /* (-14 + 14) // 28 = 0 */
    CHECK(nmem_table_row(0, -896 + 14, &c) == 8); /* (14 + 14) // 28 = 1 */
}

/* ---- the lossy decoder on the golden payload ---- */
static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = malloc(1 << 20);
    *n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

static void test_lossy(const char *golden, const char *out_path) {
    size_t n;
    uint8_t *p = read_file(golden, &n);
    CHECK(p != NULL);
    if (!p) return;
    uint8_t out[32 * 32 * 3], ref[32 * 32 * 3], big[64 * 64 * 3];
    nmem_error err;
    CHECK(nmem_lossy_decode(p, n, 32, 32, 3, NULL, out, sizeof out, &err) == NMEM_OK);
    FILE *f = fopen(out_path, "wb");
    CHECK(f && fwrite(out, 1, sizeof out, f) == sizeof out);
    if (f) fclose(f);
    memcpy(ref, out, sizeof ref);
    /* limits and arguments */
    nmem_decode_options opt = {0};
    opt.max_pixels = 1023;
    CHECK(nmem_lossy_decode(p, n, 32, 32, 3, &opt, out, sizeof out, &err) == NMEM_ERR_LIMIT);
    CHECK(nmem_lossy_decode(p, n, 32, 32, 3, NULL, out, sizeof out - 1, &err) == NMEM_ERR_ARGUMENT);
    opt.max_pixels = 0;
    opt.out_width = 64;
    opt.out_height = 0;
    CHECK(nmem_lossy_decode(p, n, 32, 32, 3, &opt, big, sizeof big, &err) == NMEM_ERR_ARGUMENT);
    opt.out_height = 64;
    CHECK(nmem_lossy_decode(p, n, 32, 32, 3, &opt, big, sizeof big, &err) == NMEM_OK);
    CHECK(nmem_lossy_decode(p, n, 32, 32, 2, NULL, out, sizeof out, &err) == NMEM_ERR_FORMAT);
    /* every truncation fails cleanly; corruptions fail or decode, never crash (ASan/UBSan) */
    for (size_t k = 0; k < n; k++) CHECK(nmem_lossy_decode(p, k, 32, 32, 3, NULL, out, sizeof out, &err) != NMEM_OK);
    uint8_t *bad = malloc(n);
    for (int t = 0; t < 1000 && bad; t++) {
        memcpy(bad, p, n);
        for (int j = 0; j < 1 + t % 4; j++) bad[rnd() % n] ^= (uint8_t)(1 + rnd() % 255);
        nmem_status st = nmem_lossy_decode(bad, n, 32, 32, 3, NULL, out, sizeof out, &err);
        CHECK(st == NMEM_OK || st == NMEM_ERR_FORMAT);
    }
    free(bad);
    /* the same payload in a container, through nmem_decode */
    uint8_t *file = malloc(n + 64);
    if (file) {
        size_t m = build_file(file, NMEM_MODE_LOSSY, 32, 32, 3, 8, 0, "LOSY", p, n);
        nmem_image img;
        CHECK(nmem_decode(file, m, NULL, &img, &err) == NMEM_OK);
        CHECK(img.width == 32 && img.height == 32 && img.channels == 3);
        CHECK(img.pixels && memcmp(img.pixels, ref, sizeof ref) == 0);
        nmem_image_free(&img);
        nmem_image_free(&img); /* idempotent */
        /* format version 2 with a metadata section after LOSY decodes to the same pixels */
        m = build_file(file, NMEM_MODE_LOSSY, 32, 32, 3, 8, 0, "LOSY", p, n);
        size_t body = m - 4, hdr = body - n - 4 - (n < 128 ? 1 : 2);
        file[4] = 2;        /* version */
        file[hdr - 1] = 2;  /* section count (one byte here) */
        memcpy(file + body, "EXIF\003abc", 8);
        body += 8;
        uint32_t crc = nmem_crc32(file, body);
        for (int i = 0; i < 4; i++) file[body + (size_t)i] = (uint8_t)(crc >> (8 * i));
        nmem_info info;
        CHECK(nmem_parse(file, body + 4, &info, &err) == NMEM_OK && info.n_sections == 2);
        CHECK(nmem_decode(file, body + 4, NULL, &img, &err) == NMEM_OK);
        CHECK(img.pixels && memcmp(img.pixels, ref, sizeof ref) == 0);
        nmem_image_free(&img);
        free(file);
    }
    free(p);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s GOLDEN_PAYLOAD OUT_RAW\n", argv[0]);
        return 2;
    }
    test_crc();
    test_container();
    test_rans();
    test_lossy(argv[1], argv[2]);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all native checks passed (%s)\n", nmem_version());
    return 0;
}
