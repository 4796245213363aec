/* The .nmem container (docs/FORMAT.md; the Python parser is src/neural_memory/container/nmem.py).
 * The checks run in the Python parser's order, so both accept exactly the same files
 * (tests/test_native.py compares them on mutated files). */
#include <string.h>

#include "nmem_internal.h"

#define MAX_VARINT_BYTES 5

nmem_status nmem_fail(nmem_error *error, nmem_status status, const char *message) {
    if (error) {
        error->status = status;
        error->message = message;
    }
    return status;
}

static nmem_status ok(nmem_error *error) { return nmem_fail(error, NMEM_OK, "ok"); }

const char *nmem_version(void) { return NMEM_LIB_VERSION; }

const char *nmem_status_name(nmem_status status) {
    switch (status) {
        case NMEM_OK: return "ok";
        case NMEM_ERR_ARGUMENT: return "bad argument";
        case NMEM_ERR_FORMAT: return "bad file";
        case NMEM_ERR_LIMIT: return "image over the pixel limit";
        case NMEM_ERR_MEMORY: return "out of memory";
        case NMEM_ERR_UNSUPPORTED: return "not supported by this build";
        case NMEM_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void nmem_decode_options_init(nmem_decode_options *options) {
    if (options) memset(options, 0, sizeof *options);
}

uint32_t nmem_crc32(const uint8_t *data, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) crc = nmem_crc32_table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

void nmem_rans_init(nmem_rans *r, const uint8_t *buf, size_t size, size_t pos) {
    r->buf = buf;
    r->size = size;
    r->error = 0;
    r->x = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t b = 0;
        if (pos < size)
            b = buf[pos];
        else
            r->error = 1;
        r->x = (r->x << 8) | b;
        pos++;
    }
    r->pos = pos;
}

/* Unsigned LEB128, at most 5 bytes (container/varint.py). */
static int read_varint(const uint8_t *body, size_t n, size_t *pos, uint64_t *value) {
    uint64_t v = 0;
    for (size_t i = 0; i < MAX_VARINT_BYTES; i++) {
        if (*pos + i >= n) return -1; /* truncated */
        uint8_t byte = body[*pos + i];
        v |= (uint64_t)(byte & 0x7Fu) << (7 * i);
        if (!(byte & 0x80u)) {
            *value = v;
            *pos += i + 1;
            return 0;
        }
    }
    return -2; /* too long */
}

#define VARINT(name, what)                                                                 \
    do {                                                                                   \
        int rc_ = read_varint(body, n, &pos, &(name));                                     \
        if (rc_ == -1) return nmem_fail(error, NMEM_ERR_FORMAT, "file is truncated (inside the " what ")"); \
        if (rc_ == -2) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: the " what " is not a valid number"); \
    } while (0)

/* container/nmem.py check_sections: exactly the engine's sections in order (LOSY [+ ALPH for
 * RGBA] or DATA), then, from version 2 on, metadata sections in the order ICCP, EXIF, XMP_;
 * nothing unknown (duplicates are refused while the table is read). */
static nmem_status check_sections(const nmem_info *info, uint8_t mode, uint8_t channels,
                                  uint8_t version, nmem_error *error) {
    static const char *const metadata[] = {"ICCP", "EXIF", "XMP_"};
    const char *engine[2] = {"DATA", NULL};
    uint32_t n_engine = 1;
    if (mode == NMEM_MODE_LOSSY) {
        engine[0] = "LOSY";
        if (channels == 4) engine[n_engine++] = "ALPH";
    }
    if (info->n_sections < n_engine)
        return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: a section of the engine is missing");
    for (uint32_t i = 0; i < n_engine; i++)
        if (memcmp(info->sections[i].tag, engine[i], 4) != 0)
            return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: unexpected section");
    int last = -1;
    for (uint32_t i = n_engine; i < info->n_sections; i++) {
        int index = -1;
        for (int k = 0; k < 3; k++)
            if (memcmp(info->sections[i].tag, metadata[k], 4) == 0) index = k;
        if (index < 0) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: unknown section");
        if (version < 2) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: metadata in a version 1 file");
        if (index <= last) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: a section is out of order");
        last = index;
    }
    return NMEM_OK;
}

nmem_status nmem_parse(const uint8_t *data, size_t size, nmem_info *info, nmem_error *error) {
    if (!info || (!data && size)) return nmem_fail(error, NMEM_ERR_ARGUMENT, "NULL argument");
    memset(info, 0, sizeof *info);
    if (size < 4 || memcmp(data, "NMEM", 4) != 0)
        return nmem_fail(error, NMEM_ERR_FORMAT, "not a neural-memory (.nmem) file: wrong magic bytes");
    if (size < 4 + 2 + 4) return nmem_fail(error, NMEM_ERR_FORMAT, "file is truncated (header incomplete)");
    if (data[4] < 1 || data[4] > NMEM_FORMAT_VERSION)
        return nmem_fail(error, NMEM_ERR_FORMAT, "unsupported format version (this build reads versions 1 to 2)");
    const uint8_t *body = data;
    size_t n = size - 4;
    uint32_t stored_crc = (uint32_t)data[n] | (uint32_t)data[n + 1] << 8 | (uint32_t)data[n + 2] << 16 |
                          (uint32_t)data[n + 3] << 24;
    if (body[5] > NMEM_MODE_NEAR_LOSSLESS) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: unknown mode");
    size_t pos = 6;
    uint64_t width, height, param, count;
    VARINT(width, "width");
    VARINT(height, "height");
    if (pos + 2 > n) return nmem_fail(error, NMEM_ERR_FORMAT, "file is truncated (header incomplete)");
    uint8_t channels = body[pos], bit_depth = body[pos + 1];
    pos += 2;
    VARINT(param, "mode parameter");
    VARINT(count, "section count");
    if (count > NMEM_MAX_SECTIONS) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: too many sections");
    for (uint64_t s = 0; s < count; s++) {
        if (pos + 4 > n) return nmem_fail(error, NMEM_ERR_FORMAT, "file is truncated (section table incomplete)");
        const uint8_t *tag = body + pos;
        pos += 4;
        for (int i = 0; i < 4; i++)
            if (!(tag[i] > 0x20 && tag[i] < 0x7F))
                return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: invalid section tag");
        uint64_t length;
        VARINT(length, "length of a section");
        if (length > n - pos) return nmem_fail(error, NMEM_ERR_FORMAT, "file is truncated (a section is incomplete)");
        for (uint32_t j = 0; j < info->n_sections; j++)
            if (memcmp(info->sections[j].tag, tag, 4) == 0)
                return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: a section appears twice");
        nmem_section *sec = &info->sections[info->n_sections++];
        memcpy(sec->tag, tag, 4);
        sec->tag[4] = '\0';
        sec->offset = pos;
        sec->size = (size_t)length;
        pos += (size_t)length;
    }
    if (pos != n) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: unexpected bytes after the last section");
    if (nmem_crc32(body, n) != stored_crc) return nmem_fail(error, NMEM_ERR_FORMAT, "corrupted file: checksum mismatch");
    /* Header.validate */
    if (!(width >= 1 && width <= NMEM_MAX_SIDE && height >= 1 && height <= NMEM_MAX_SIDE))
        return nmem_fail(error, NMEM_ERR_FORMAT, "image size is out of range");
    if (width * height > NMEM_FORMAT_MAX_PIXELS) return nmem_fail(error, NMEM_ERR_FORMAT, "image size is too large");
    if (channels != 1 && channels != 3 && channels != 4)
        return nmem_fail(error, NMEM_ERR_FORMAT, "unsupported channel count");
    if (bit_depth != 8 && bit_depth != 16) return nmem_fail(error, NMEM_ERR_FORMAT, "unsupported bit depth");
    if (body[5] == NMEM_MODE_NEAR_LOSSLESS && param < 1)
        return nmem_fail(error, NMEM_ERR_FORMAT, "near-lossless file without an error bound");
    nmem_status sections_ok = check_sections(info, body[5], channels, data[4], error);
    if (sections_ok != NMEM_OK) return sections_ok;
    info->version = data[4];
    info->mode = body[5];
    info->width = (uint32_t)width;
    info->height = (uint32_t)height;
    info->channels = channels;
    info->bit_depth = bit_depth;
    info->param = param;
    return ok(error);
}

const nmem_section *nmem_find_section(const nmem_info *info, const char *tag) {
    if (!info || !tag) return NULL;
    for (uint32_t i = 0; i < info->n_sections && i < NMEM_MAX_SECTIONS; i++)
        if (memcmp(info->sections[i].tag, tag, 4) == 0) return &info->sections[i];
    return NULL;
}
