/* nmem_wasm.c -- the WebAssembly face of the C decoder (scripts/build_wasm.sh, web/nmem.js).
 *
 * Exports a buffer allocator for the caller's file bytes and one decode call, whose result is
 * a small struct of 32-bit fields in the module's memory (wasm32: pointers and size_t are 32
 * bits). The decoder is the library's nmem_decode(), unchanged; this file adds the 8-bit RGBA
 * copy a canvas wants. Reactor module: no main, no WASI calls (nothing is imported).
 *
 * Result layout (byte offsets; web/nmem.js reads it with a Uint32Array):
 *    0 status     nmem_status (0 = NMEM_OK)
 *    4 message    const char *, NUL-terminated, static
 *    8 mode       nmem_mode (0 lossy, 1 lossless, 2 near-lossless); valid once the file parsed
 *   12 param      near-lossless error bound k (0 otherwise)
 *   16 width
 *   20 height
 *   24 channels   1, 3 or 4
 *   28 bit_depth  8 or 16
 *   32 samples    the decoded samples: height x width x channels, uint8 or uint16 (little-endian)
 *   36 samples_size in bytes
 *   40 rgba       height x width x 4 bytes, 8-bit RGBA (gray is repeated, alpha 255 if absent,
 *                 16-bit samples become (v * 255 + 32767) / 65535, the nearest 8-bit value)
 *   44 rgba_size  in bytes
 * Release it with nmem_wasm_result_free(). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nmem.h"

#define EXPORT(name) __attribute__((export_name(#name)))

typedef struct nmem_wasm_result {
    uint32_t status;
    const char *message;
    uint32_t mode;
    uint32_t param;
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    uint32_t bit_depth;
    uint8_t *samples;
    uint32_t samples_size;
    uint8_t *rgba;
    uint32_t rgba_size;
} nmem_wasm_result;

#if defined(__wasm32__)
_Static_assert(sizeof(nmem_wasm_result) == 48, "nmem_wasm_result: twelve 32-bit fields");
_Static_assert(offsetof(nmem_wasm_result, rgba_size) == 44, "nmem_wasm_result layout");
#endif

EXPORT(nmem_wasm_malloc) void *nmem_wasm_malloc(size_t size) { return malloc(size ? size : 1); }

EXPORT(nmem_wasm_free) void nmem_wasm_free(void *p) { free(p); }

EXPORT(nmem_wasm_version) const char *nmem_wasm_version(void) { return nmem_version(); }

EXPORT(nmem_wasm_status_name) const char *nmem_wasm_status_name(uint32_t status) {
    return nmem_status_name((nmem_status)status);
}

static void to_rgba(const nmem_image *img, uint8_t *rgba) {
    const size_t n = (size_t)img->width * img->height;
    const uint32_t c = img->channels;
    for (size_t i = 0; i < n; i++) {
        uint8_t v[4] = {0, 0, 0, 255};
        for (uint32_t k = 0; k < c; k++) {
            if (img->bit_depth == 16) {
                uint16_t s;
                memcpy(&s, img->pixels + 2 * (i * c + k), 2);
                v[k] = (uint8_t)(((uint32_t)s * 255u + 32767u) / 65535u);
            } else {
                v[k] = img->pixels[i * c + k];
            }
        }
        if (c == 1) v[1] = v[2] = v[0];
        memcpy(rgba + 4 * i, v, 4);
    }
}

static nmem_wasm_result *fail(nmem_wasm_result *r, nmem_status status, const char *message) {
    r->status = (uint32_t)status;
    r->message = message;
    return r;
}

/* Decode a whole .nmem file of any mode. max_pixels: the decoder's pixel limit (0 = the library
 * default, NMEM_DEFAULT_MAX_PIXELS). Returns NULL only when the result struct itself cannot be
 * allocated. */
EXPORT(nmem_wasm_decode)
nmem_wasm_result *nmem_wasm_decode(const uint8_t *data, size_t size, uint32_t max_pixels) {
    nmem_wasm_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    nmem_error err = {NMEM_OK, "ok"};
    nmem_info info;
    if (nmem_parse(data, size, &info, &err) != NMEM_OK) return fail(r, err.status, err.message);
    r->mode = info.mode;
    r->param = (uint32_t)info.param;
    nmem_decode_options opt;
    nmem_decode_options_init(&opt);
    opt.max_pixels = max_pixels;
    nmem_image img;
    if (nmem_decode(data, size, &opt, &img, &err) != NMEM_OK) return fail(r, err.status, err.message);
    /* the library checked width * height <= 2^28 (and the caller's limit) before allocating,
     * so these sizes fit 32 bits; checked again here, as this file does its own arithmetic */
    const uint64_t pixels = (uint64_t)img.width * img.height;
    const uint64_t rgba_size = pixels * 4u, samples_size = pixels * img.channels * (img.bit_depth / 8u);
    if (rgba_size > SIZE_MAX / 2 || samples_size > SIZE_MAX / 2) {
        nmem_image_free(&img);
        return fail(r, NMEM_ERR_LIMIT, "image is too large for a 32-bit address space");
    }
    r->rgba = malloc((size_t)rgba_size);
    if (!r->rgba) {
        nmem_image_free(&img);
        return fail(r, NMEM_ERR_MEMORY, "out of memory (RGBA image)");
    }
    to_rgba(&img, r->rgba);
    r->width = img.width;
    r->height = img.height;
    r->channels = img.channels;
    r->bit_depth = img.bit_depth;
    r->samples = img.pixels; /* handed over: freed by nmem_wasm_result_free */
    r->samples_size = (uint32_t)samples_size;
    r->rgba_size = (uint32_t)rgba_size;
    return fail(r, NMEM_OK, "ok");
}

EXPORT(nmem_wasm_result_free) void nmem_wasm_result_free(nmem_wasm_result *r) {
    if (!r) return;
    free(r->samples);
    free(r->rgba);
    free(r);
}
