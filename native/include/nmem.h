/*
 * nmem.h -- the neural-memory native core (C11, no dependencies beyond the C library).
 *
 * Reads `.nmem` files (docs/FORMAT.md) and decodes the lossy engine's payload (docs/lossy.md)
 * bit-exactly: every value that decides a probability or a pixel is an integer, so a file
 * decodes to the same pixels on every machine and in every build (Python, C, WebAssembly).
 *
 * Design rules, so that the same sources build for WebAssembly and other hosts:
 *   - no stdio, no global state, no threads: every function is reentrant (calls that share
 *     one nmem_lossless_context run one at a time; a progress callback may call in again
 *     with it, the inner call then takes fresh tables);
 *   - the caller owns the input and (for the low-level calls) the output buffer; the library
 *     allocates only the working memory a call needs and frees it before returning, except
 *     nmem_decode(), whose image the caller releases with nmem_image_free(), and the
 *     lossless tables a caller's nmem_lossless_context keeps between calls (up to about
 *     93 MB, until nmem_lossless_context_free());
 *   - errors are a status code plus a static message (never freed, never formatted);
 *   - nothing is allocated before the header's dimensions have been checked against the
 *     caller's pixel limit, and no allocation depends on anything but those dimensions and
 *     the payload's small architecture header.
 *
 * nmem_decode() decodes every mode (lossy, lossy RGBA with its alpha plane, lossless and
 * near-lossless, 8 and 16 bits); the lossless engine also encodes (nmem_lossless_encode).
 */
#ifndef NMEM_H
#define NMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NMEM_LIB_VERSION "0.2.0" /* 0.2: nmem_lossless_options.context */
#define NMEM_FORMAT_VERSION 2       /* the newest container version this build reads (1 and 2;
                                       2 adds the metadata sections ICCP, EXIF, XMP_) */
#define NMEM_LOSSY_PAYLOAD_VERSION 4 /* the newest lossy payload version this build reads (from 2) */

#define NMEM_MAX_SECTIONS 64
#define NMEM_MAX_SIDE 65536u                    /* format limit on width and height */
#define NMEM_FORMAT_MAX_PIXELS (1ull << 28)      /* format limit on width * height */
/* Default decode limit on width * height (stored and requested output size): 64 Mpixel,
 * e.g. 8192 x 8192. A lossy decode needs about 4.3 bytes per pixel and per latent grid of
 * level >= 1 at a quarter of the pixels, plus 4 bytes per level-0 grid pixel: ~30 bytes per
 * pixel with the default architecture (17 grids), ~2 GB at this limit. */
#define NMEM_DEFAULT_MAX_PIXELS (1ull << 26)

typedef enum nmem_status {
    NMEM_OK = 0,
    NMEM_ERR_ARGUMENT = 1,    /* a NULL pointer, a bad option or a too small output buffer */
    NMEM_ERR_FORMAT = 2,      /* not an .nmem file, or truncated, corrupted, unsupported version */
    NMEM_ERR_LIMIT = 3,       /* the stored image is larger than the caller's pixel limit */
    NMEM_ERR_MEMORY = 4,      /* malloc failed */
    NMEM_ERR_UNSUPPORTED = 5, /* a valid request this build does not do (resizing an alpha plane) */
    NMEM_ERR_CANCELLED = 6    /* the caller's progress callback asked to stop */
} nmem_status;

/* Filled by every call that can fail (pass NULL if you only want the status). The message is
 * a static string: valid for the life of the program, never freed by the caller. */
typedef struct nmem_error {
    nmem_status status;
    const char *message;
} nmem_error;

typedef enum nmem_mode { NMEM_MODE_LOSSY = 0, NMEM_MODE_LOSSLESS = 1, NMEM_MODE_NEAR_LOSSLESS = 2 } nmem_mode;

/* One section of a parsed container: its payload is data[offset .. offset + size). */
typedef struct nmem_section {
    char tag[5]; /* 4 ASCII characters and a NUL */
    size_t offset;
    size_t size;
} nmem_section;

/* A parsed container header (docs/FORMAT.md). */
typedef struct nmem_info {
    uint32_t version;
    uint32_t mode;      /* an nmem_mode */
    uint32_t width;
    uint32_t height;
    uint32_t channels;  /* 1, 3 or 4 */
    uint32_t bit_depth; /* 8 or 16 */
    uint64_t param;     /* near-lossless error bound k; 0 otherwise (a varint: < 2^35) */
    uint32_t n_sections;
    nmem_section sections[NMEM_MAX_SECTIONS];
} nmem_info;

/* Options of a decode. Zero-initialise (or call nmem_decode_options_init) for the defaults. */
typedef struct nmem_decode_options {
    uint64_t max_pixels;  /* limit on width * height; 0 means NMEM_DEFAULT_MAX_PIXELS */
    uint32_t out_width;   /* lossy only: render at another size; 0, 0 = the stored size */
    uint32_t out_height;
} nmem_decode_options;

/* A decoded image: height rows of width * channels interleaved samples, 8-bit (uint8_t) or,
 * for 16-bit lossless files, 16-bit (uint16_t in host byte order; pixels is then 2-byte
 * aligned, as malloc's memory is). */
typedef struct nmem_image {
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    uint8_t *pixels; /* malloc'd by nmem_decode; release with nmem_image_free */
    uint32_t bit_depth; /* 8 or 16 */
} nmem_image;

const char *nmem_version(void);
const char *nmem_status_name(nmem_status status);
void nmem_decode_options_init(nmem_decode_options *options);

/* Parse and check a whole file (magic, version, header, section table, CRC-32), exactly as the
 * Python parser does. Reads nothing outside data[0 .. size), allocates nothing. */
nmem_status nmem_parse(const uint8_t *data, size_t size, nmem_info *info, nmem_error *error);

/* The section with this 4-character tag, or NULL. */
const nmem_section *nmem_find_section(const nmem_info *info, const char *tag);

/* Output size of a decode of a parsed file with these options (the stored size unless the
 * options ask for another one). Checks the options and the pixel limit; decodes nothing. */
nmem_status nmem_output_size(const nmem_info *info, const nmem_decode_options *options,
                             uint32_t *width, uint32_t *height, uint32_t *channels,
                             nmem_error *error);

/* Decode a whole lossy file into a new image (release it with nmem_image_free). The sections
 * follow docs/FORMAT.md (nmem_parse checks them; metadata sections of a version 2 file are
 * ignored here: find them with nmem_find_section); on failure image->pixels is NULL. */
nmem_status nmem_decode(const uint8_t *data, size_t size, const nmem_decode_options *options,
                        nmem_image *image, nmem_error *error);
void nmem_image_free(nmem_image *image);

/* Decode a lossy engine payload (the LOSY section) of a width x height image with 1 or 3
 * channels into out, which holds out_height * out_width * channels bytes (out_* are the
 * options' output size, or width x height). */
nmem_status nmem_lossy_decode(const uint8_t *payload, size_t payload_size, uint32_t width,
                              uint32_t height, uint32_t channels,
                              const nmem_decode_options *options, uint8_t *out, size_t out_size,
                              nmem_error *error);

/* ---- the lossless / near-lossless engine (docs/lossless.md) ----
 * Pixels are height x width x channels interleaved samples: uint8_t for bit_depth 8, uint16_t
 * (host byte order) for bit_depth 16; channels 1, 3 or 4; near is the error bound k (0 =
 * lossless, at most 2^bit_depth - 1). The payload is the LOSL / NEAR section (or the ALPH
 * section of a lossy RGBA file: 1 channel, 8 bits, near 0): a version byte, then the coded
 * stream. Bit-exact with the numba engine of the Python package. The engine's state takes
 * about 12 MB per channel plus 2 bytes per sample. */

/* Called after every 16 coded rows (and after the last); a nonzero return stops the call with
 * NMEM_ERR_CANCELLED. */
typedef int (*nmem_progress_fn)(void *user, uint32_t rows_done, uint32_t rows_total);

/* Working memory kept between calls (optional). The engine's tables (about 12 MB per channel)
 * are otherwise mapped for each call and returned after it; a call given a context takes the
 * context's tables for its channel count and, when it ends, zeroes the parts it wrote and
 * leaves them there (the same start as fresh memory, so the same output), so a run of small
 * images skips mapping, faulting in and clearing 12 MB per channel each time. It holds up to
 * one set per channel count (1, 3, 4: about 12, 35 and 46 MB) until
 * nmem_lossless_context_free. One call at a time per context (one per thread); the output
 * does not depend on whether or which context is used. */
typedef struct nmem_lossless_context nmem_lossless_context;
nmem_lossless_context *nmem_lossless_context_new(void); /* NULL if out of memory */
void nmem_lossless_context_free(nmem_lossless_context *context); /* NULL is a no-op */

typedef struct nmem_lossless_options {
    uint64_t max_pixels;       /* decode: limit on width * height; 0 = NMEM_DEFAULT_MAX_PIXELS */
    nmem_progress_fn progress; /* optional */
    void *user;                /* passed to progress */
    nmem_lossless_context *context; /* optional: reuse this context's tables */
} nmem_lossless_options;

/* Encode into a new buffer *payload of *payload_size bytes (release it with nmem_free).
 * options may be NULL. */
nmem_status nmem_lossless_encode(const void *pixels, uint32_t width, uint32_t height, uint32_t channels,
                                 uint32_t bit_depth, uint32_t near, const nmem_lossless_options *options,
                                 uint8_t **payload, size_t *payload_size, nmem_error *error);

/* Decode a payload into out (width * height * channels samples of bit_depth / 8 bytes each).
 * A truncated or corrupt payload gives NMEM_ERR_FORMAT (a corrupt stream is noticed at the
 * latest when it has read 8 bytes past its end, or at the end, by its length). */
nmem_status nmem_lossless_decode(const uint8_t *payload, size_t payload_size, uint32_t width, uint32_t height,
                                 uint32_t channels, uint32_t bit_depth, uint32_t near,
                                 const nmem_lossless_options *options, void *out, size_t out_size,
                                 nmem_error *error);

/* Release a buffer returned by this library (nmem_lossless_encode). */
void nmem_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* NMEM_H */
