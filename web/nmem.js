// nmem.js -- decode .nmem files in the browser with the C decoder compiled to WebAssembly
// (nmem.wasm, built by scripts/build_wasm.sh from native/; docs/C_API.md, "WebAssembly").
//
//   import { decodeNmem } from "./nmem.js";
//   const img = await decodeNmem(new Uint8Array(await file.arrayBuffer()));
//   ctx.putImageData(new ImageData(img.rgba, img.width, img.height), 0, 0);
//
// No dependencies; nothing is fetched but nmem.wasm (next to this file, or what init() gets).

const MODES = ["lossy", "lossless", "near-lossless"];
const RESULT_FIELDS = 12; // nmem_wasm_result: twelve 32-bit fields (native/wasm/nmem_wasm.c)

/** A decode failure: the C library's message; `status` is its nmem_status code, `statusName`
 * the library's name for it. */
export class NmemError extends Error {
  constructor(message, status, statusName) {
    super(message);
    this.name = "NmemError";
    this.status = status;
    this.statusName = statusName;
  }
}

let instance = null;

/** Load the module once. `source`: a URL or path (default: nmem.wasm next to this file), a
 * Response, or the module's bytes (ArrayBuffer / Uint8Array). Later calls return the first
 * instance unless `source` is given again. */
export async function init(source) {
  if (instance && source === undefined) return instance;
  let bytes;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    bytes = source;
  } else {
    const response =
      source instanceof Response ? source : await fetch(source ?? new URL("nmem.wasm", import.meta.url));
    if (!response.ok) throw new Error(`cannot load the decoder: ${response.status} ${response.url}`);
    bytes = await response.arrayBuffer();
  }
  // no imports: the module is a WASI reactor that makes no system calls
  const { instance: inst } = await WebAssembly.instantiate(bytes, {});
  inst.exports._initialize?.();
  instance = inst;
  return inst;
}

function cString(memory, ptr) {
  const bytes = new Uint8Array(memory.buffer, ptr);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? 0 : end));
}

/**
 * Decode a whole .nmem file (lossy, lossless or near-lossless; gray, RGB or RGBA; 8 or 16 bits).
 * @param {Uint8Array|ArrayBuffer} bytes the file
 * @param {{maxPixels?: number}} [options] pixel limit (0 or absent: the library's default,
 *   2^26); a larger stored image throws before anything is allocated
 * @returns {Promise<{width: number, height: number, channels: number, bitDepth: number,
 *   mode: string, near: number, rgba: Uint8ClampedArray, samples: Uint8Array|Uint16Array}>}
 *   rgba: 8-bit RGBA for a canvas (16-bit samples rounded to the nearest 8-bit value,
 *   v * 255 / 65535); samples: the decoded samples as stored (height x width x channels).
 * @throws {NmemError} with the C library's message for a bad, truncated or too large file
 */
export async function decodeNmem(bytes, options = {}) {
  const ex = (await init()).exports;
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const maxPixels = options.maxPixels ?? 0;
  if (!Number.isInteger(maxPixels) || maxPixels < 0 || maxPixels > 0xffffffff) {
    throw new RangeError("maxPixels must be an integer from 0 to 2^32 - 1");
  }
  const input = ex.nmem_wasm_malloc(data.length);
  if (!input) throw new NmemError("out of memory (input)", 4, "out of memory");
  let result = 0;
  try {
    new Uint8Array(ex.memory.buffer, input, data.length).set(data);
    result = ex.nmem_wasm_decode(input, data.length, maxPixels);
    if (!result) throw new NmemError("out of memory", 4, "out of memory");
    // views after the call: a decode may grow the memory, which replaces its buffer
    const mem = ex.memory;
    const f = new Uint32Array(mem.buffer, result, RESULT_FIELDS);
    const [status, message, mode, param, width, height, channels, bitDepth] = f;
    if (status !== 0) {
      throw new NmemError(cString(mem, message), status, cString(mem, ex.nmem_wasm_status_name(status)));
    }
    const [samplesPtr, samplesSize, rgbaPtr, rgbaSize] = f.subarray(8);
    const raw = new Uint8Array(mem.buffer, samplesPtr, samplesSize).slice();
    return {
      width,
      height,
      channels,
      bitDepth,
      mode: MODES[mode] ?? `mode ${mode}`,
      near: param,
      rgba: new Uint8ClampedArray(mem.buffer.slice(rgbaPtr, rgbaPtr + rgbaSize)),
      samples: bitDepth === 16 ? new Uint16Array(raw.buffer) : raw,
    };
  } finally {
    if (result) ex.nmem_wasm_result_free(result);
    ex.nmem_wasm_free(input);
  }
}
