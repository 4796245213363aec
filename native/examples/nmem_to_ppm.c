/* nmem_to_ppm: decode a .nmem file (any mode) to a binary PPM (RGB), PGM (gray) or PAM (RGBA)
 * with the C library; 16-bit lossless files give 16-bit samples (maxval 65535, big-endian).
 *
 *   cc -std=c11 -O2 -Inative/include native/src/{container,lossless,lossy,tables}.c \
 *      native/examples/nmem_to_ppm.c -o nmem_to_ppm
 *   ./nmem_to_ppm photo.nmem photo.ppm [WIDTH HEIGHT]
 *
 * WIDTH HEIGHT render the image at another size. NMEM_MAX_PIXELS in the environment sets the
 * decoder's pixel limit. Exit status 0 on success, 1 on a decode error, 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>

#include "nmem.h"

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: %s IN.nmem OUT.ppm [WIDTH HEIGHT]\n", argv[0]);
        return 2;
    }
    size_t size = 0;
    unsigned char *data = read_all(argv[1], &size);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    nmem_decode_options options;
    nmem_decode_options_init(&options);
    const char *limit = getenv("NMEM_MAX_PIXELS");
    if (limit) options.max_pixels = strtoull(limit, NULL, 10);
    if (argc == 5) {
        options.out_width = (uint32_t)strtoul(argv[3], NULL, 10);
        options.out_height = (uint32_t)strtoul(argv[4], NULL, 10);
    }
    nmem_image image;
    nmem_error error;
    nmem_status status = nmem_decode(data, size, &options, &image, &error);
    free(data);
    if (status != NMEM_OK) {
        fprintf(stderr, "%s: %s (%s)\n", argv[1], error.message, nmem_status_name(status));
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    int ok = out != NULL;
    if (ok) {
        unsigned maxval = image.bit_depth == 16 ? 65535u : 255u;
        if (image.channels == 4)
            fprintf(out, "P7\nWIDTH %u\nHEIGHT %u\nDEPTH 4\nMAXVAL %u\nTUPLTYPE RGB_ALPHA\nENDHDR\n",
                    (unsigned)image.width, (unsigned)image.height, maxval);
        else
            fprintf(out, "P%c\n%u %u\n%u\n", image.channels == 1 ? '5' : '6', (unsigned)image.width,
                    (unsigned)image.height, maxval);
        size_t n = (size_t)image.width * image.height * image.channels;
        if (image.bit_depth == 16) { /* PNM's 16-bit samples are big-endian */
            const uint16_t *px = (const uint16_t *)(const void *)image.pixels;
            for (size_t i = 0; ok && i < n; i++) {
                unsigned char be[2] = {(unsigned char)(px[i] >> 8), (unsigned char)(px[i] & 255)};
                ok = fwrite(be, 1, 2, out) == 2;
            }
        } else {
            ok = fwrite(image.pixels, 1, n, out) == n;
        }
        ok = (fclose(out) == 0) && ok;
    }
    nmem_image_free(&image);
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", argv[2]);
        return 1;
    }
    return 0;
}
