/* libFuzzer harness over the container parser, the lossy decoder and the lossless decoder
 * (scripts/fuzz.sh builds it with AddressSanitizer + UndefinedBehaviorSanitizer).
 *
 * The first input byte picks the target:
 *   odd  -> the rest is a whole .nmem file: nmem_parse (with invariant checks), nmem_decode;
 *   0 mod 4 -> 4 bytes of image geometry, then a raw lossy payload for nmem_lossy_decode: the
 *           CRC would reject almost every mutated file before the decoder, so the decoders are
 *           also fed directly. Geometry: width = 1 + b0 % 64, height = 1 + b1 % 64, channels 3
 *           if b2 is odd else 1; b3 >= 128 asks for another output size (from b3's low bits);
 *   2 mod 4 -> 4 bytes of geometry, then a raw lossless payload for nmem_lossless_decode:
 *           width = 1 + b0 % 32, height = 1 + b1 % 32, channels 1, 3, 4, 1 for b2 & 3 = 0..3,
 *           16 bits if b2 & 4 else 8, error bound k = b3.
 * The pixel limit is kept small (256 x 256) so that each input runs in milliseconds. A payload
 * that decodes is decoded twice, into differently filled buffers, and must give the same
 * pixels. The first lossless decode reuses one nmem_lossless_context across inputs (tables
 * zeroed, not mapped and faulted in anew: 12 MB per channel, most of an input's time
 * otherwise); the second one, and whole files, use fresh tables, so the same pixels also
 * check that a reused context starts exactly as fresh memory. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nmem.h"

#define FUZZ_MAX_PIXELS (256u * 256u)

static void check_info(const uint8_t *data, size_t size, const nmem_info *info) {
    if (info->n_sections > NMEM_MAX_SECTIONS) abort();
    for (uint32_t i = 0; i < info->n_sections; i++) {
        const nmem_section *s = &info->sections[i];
        if (s->offset > size || s->size > size - s->offset) abort();
        if (strlen(s->tag) != 4) abort();
        (void)data;
    }
    if (info->width < 1 || info->height < 1 || (uint64_t)info->width * info->height > NMEM_FORMAT_MAX_PIXELS) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t target = data[0];
    data++;
    size--;
    nmem_decode_options opt;
    nmem_decode_options_init(&opt);
    opt.max_pixels = FUZZ_MAX_PIXELS;
    nmem_error err;
    if (target & 1) {
        nmem_info info;
        if (nmem_parse(data, size, &info, &err) == NMEM_OK) check_info(data, size, &info);
        nmem_image img;
        if (nmem_decode(data, size, &opt, &img, &err) == NMEM_OK) {
            if (!img.pixels) abort();
            volatile uint8_t sink = img.pixels[(size_t)img.width * img.height * img.channels - 1];
            (void)sink;
        }
        nmem_image_free(&img);
        return 0;
    }
    if (size < 4) return 0;
    if (target & 2) {
        static const uint32_t chans[4] = {1, 3, 4, 1};
        uint32_t lw = 1 + data[0] % 32, lh = 1 + data[1] % 32, lc = chans[data[2] & 3];
        uint32_t depth = (data[2] & 4) ? 16 : 8, near = data[3];
        size_t bytes = (size_t)lw * lh * lc * (depth / 8);
        uint8_t *px = malloc(bytes), *px2 = malloc(bytes);
        static nmem_lossless_context *ctx; /* kept for the whole run */
        if (!ctx) ctx = nmem_lossless_context_new();
        const nmem_lossless_options lopt = {0, NULL, NULL, ctx};
        nmem_status st = NMEM_ERR_MEMORY;
        if (px && px2) {
            memset(px, 0xAA, bytes);
            st = nmem_lossless_decode(data + 4, size - 4, lw, lh, lc, depth, near, &lopt, px, bytes, &err);
            if (st != NMEM_OK && st != NMEM_ERR_FORMAT) abort();
            if (st == NMEM_OK) {
                memset(px2, 0x55, bytes);
                if (nmem_lossless_decode(data + 4, size - 4, lw, lh, lc, depth, near, NULL, px2, bytes, &err) != NMEM_OK)
                    abort();
                if (memcmp(px, px2, bytes) != 0) abort();
            }
        }
        free(px);
        free(px2);
        return 0;
    }
    uint32_t w = 1 + data[0] % 64, h = 1 + data[1] % 64, c = (data[2] & 1) ? 3 : 1;
    uint32_t ow = w, oh = h;
    if (data[3] & 0x80) {
        ow = opt.out_width = 1 + (data[3] & 0x0F) * 7;
        oh = opt.out_height = 1 + ((data[3] >> 4) & 0x07) * 9;
    }
    size_t n = (size_t)ow * oh * c;
    uint8_t *out = malloc(n), *again = malloc(n);
    if (!out || !again) {
        free(out);
        free(again);
        return 0;
    }
    memset(out, 0xAA, n);
    nmem_status st = nmem_lossy_decode(data + 4, size - 4, w, h, c, &opt, out, n, &err);
    if (st != NMEM_OK && st != NMEM_ERR_FORMAT) abort(); /* nothing else is possible here */
    if (!err.message) abort();
    if (st == NMEM_OK) {
        /* a second decode into differently filled memory gives the same pixels: every output
         * byte is written, and nothing depends on uninitialised memory */
        memset(again, 0x55, n);
        if (nmem_lossy_decode(data + 4, size - 4, w, h, c, &opt, again, n, &err) != NMEM_OK) abort();
        if (memcmp(out, again, n) != 0) abort();
    }
    free(out);
    free(again);
    return 0;
}
