/**
 * safetensors (https://huggingface.co/docs/safetensors) reading and writing.
 *
 * Layout: u64 LE header length N | N bytes of UTF-8 JSON | data buffer. The JSON maps each tensor
 * name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data buffer, tensors
 * row-major little-endian) plus an optional "__metadata__" string→string map.
 *
 * Files are untrusted input: every size is validated before it is used (no huge allocations, no
 * out-of-bounds reads), and every problem surfaces as a SafetensorsError with a stable `code`. The
 * rules are those of the reference Rust implementation: header ≤ 100 MB and starting with '{',
 * tensors exactly tiling the data buffer (no overlaps, holes or trailing bytes).
 */
import * as fs from 'node:fs';
import { SafetensorsError, type SafetensorsErrorCode } from './errors.ts';
import { DTYPES, LITTLE_ENDIAN_HOST, MAX_HEADER_BYTES, quoteName, type SafetensorsDtype } from './safetensors-write.ts';

export { SafetensorsError } from './errors.ts';
export {
  type SafetensorsDtype, type SerializeOptions, type TensorToWrite, type TensorsToWrite,
  MAX_HEADER_BYTES, f32BitsToBf16Bits, f32BitsToF16Bits, serializeSafetensors, writeSafetensors,
} from './safetensors-write.ts';

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** data_offsets exactly as in the header: relative to the start of the data buffer. */
  dataOffsets: [number, number];
  /** Absolute offset of the tensor's bytes in the parsed file (8 + header length + begin). */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

// ---------------------------------------------------------------------------------------------
// Element conversions (all little-endian).
//   bf16 → f32: bits << 16 (bf16 is the top half of an fp32).
//   f16  → f32: (-1)^s · 2^(e−15) · (1 + m/1024) for 0 < e < 31; 2^−14 · m/1024 for e = 0; ±Inf/NaN for e = 31.
//   f8 e4m3fn: bias 7, no infinities, S.1111.111 = NaN; e5m2: the top byte of an f16.

let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    f16Table[h] =
      e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return f16Table;
}

let e4m3Table: Float32Array | undefined;
function e4m3ToF32Table(): Float32Array {
  if (e4m3Table) return e4m3Table;
  e4m3Table = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const e = (b >>> 3) & 15;
    const m = b & 7;
    e4m3Table[b] = e === 15 && m === 7 ? NaN : e === 0 ? sign * m * 2 ** -9 : sign * (1 + m / 8) * 2 ** (e - 7);
  }
  return e4m3Table;
}

type TypedCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/** A typed view of little-endian bytes: zero-copy when aligned, else a copy (typed arrays need alignment). */
function typedView<T>(raw: Uint8Array, ctor: TypedCtor<T>): T {
  const size = ctor.BYTES_PER_ELEMENT;
  const aligned = raw.byteOffset % size === 0 ? raw : raw.slice();
  return new ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

// ---------------------------------------------------------------------------------------------
// Reading

export class SafetensorsFile {
  /** Tensor names ordered by data offset (= header order for files written by this module or by HF). */
  readonly names: readonly string[];

  /** @internal use parseSafetensors */
  constructor(
    private readonly bytes: Uint8Array,
    readonly source: string,
    readonly headerLength: number,
    readonly metadata: Record<string, string> | undefined,
    private readonly entries: ReadonlyMap<string, SafetensorsTensorInfo>,
  ) {
    this.names = [...entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    const e = this.entry(name);
    return { ...e, shape: [...e.shape], dataOffsets: [...e.dataOffsets] };
  }

  /** The tensor's bytes as a view into the parsed buffer (zero-copy: do not mutate unless you own the buffer). */
  getRaw(name: string): Uint8Array {
    const e = this.entry(name);
    return this.bytes.subarray(e.byteOffset, e.byteOffset + e.byteLength);
  }

  /**
   * Values converted to fp32 (I64/U64 beyond 2^24 and F64 lose precision). F32 tensors come back as a
   * zero-copy view of the file buffer when 4-byte aligned, otherwise (and for every other dtype) as a copy.
   */
  getFloat32(name: string): Float32Array {
    const { dtype } = this.entry(name);
    const raw = this.getRaw(name);
    switch (dtype) {
      case 'F32': return typedView(raw, Float32Array);
      case 'F64': return new Float32Array(typedView(raw, Float64Array));
      case 'BF16': {
        const half = typedView(raw, Uint16Array);
        const bits = new Uint32Array(half.length);
        for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
        return new Float32Array(bits.buffer);
      }
      case 'F16': return lookup(typedView(raw, Uint16Array), f16ToF32Table());
      case 'F8_E4M3': return lookup(raw, e4m3ToF32Table());
      case 'F8_E5M2': return lookup(raw, f16ToF32Table(), 8);
      case 'I64':
      case 'U64': {
        const words = typedView(raw, Uint32Array);
        const out = new Float32Array(words.length / 2);
        for (let i = 0; i < out.length; i++) {
          const high = dtype === 'I64' ? words[2 * i + 1] | 0 : words[2 * i + 1];
          out[i] = high * 4294967296 + words[2 * i];
        }
        return out;
      }
      case 'BOOL': return Float32Array.from(raw, (b) => (b ? 1 : 0));
      default: return new Float32Array(intView(raw, dtype));
    }
  }

  /** Integer and BOOL tensors as int32; I64/U32/U64 values outside int32 throw OUT_OF_RANGE. */
  getInt32(name: string): Int32Array {
    const { dtype } = this.entry(name);
    const raw = this.getRaw(name);
    const outOfRange = () => new SafetensorsError('OUT_OF_RANGE', `${this.where(name)}has ${dtype} values outside int32`);
    switch (dtype) {
      case 'I32': return typedView(raw, Int32Array);
      case 'BOOL': return Int32Array.from(raw, (b) => (b ? 1 : 0));
      case 'I8': case 'U8': case 'I16': case 'U16': return new Int32Array(intView(raw, dtype));
      case 'U32': {
        const words = typedView(raw, Int32Array); // same bits; a negative word is a U32 value ≥ 2^31
        if (words.some((w) => w < 0)) throw outOfRange();
        return words;
      }
      case 'I64':
      case 'U64': {
        const words = typedView(raw, Int32Array);
        const out = new Int32Array(words.length / 2);
        for (let i = 0; i < out.length; i++) {
          const low = words[2 * i];
          // In int32 range iff the high word is the low word's sign extension (I64), or zero with a non-negative low word (U64).
          if (words[2 * i + 1] !== (dtype === 'I64' ? low >> 31 : 0) || (dtype === 'U64' && low < 0)) throw outOfRange();
          out[i] = low;
        }
        return out;
      }
      default:
        throw new SafetensorsError('BAD_DTYPE', `${this.where(name)}is ${dtype}; getInt32 reads integer and BOOL dtypes only`);
    }
  }

  /** Every tensor converted with getFloat32, in file order. */
  tensors(): Map<string, SafetensorsTensor> {
    const out = new Map<string, SafetensorsTensor>();
    for (const name of this.names) {
      const e = this.entry(name);
      out.set(name, { dtype: e.dtype, shape: [...e.shape], data: this.getFloat32(name) });
    }
    return out;
  }

  private where(name: string): string {
    return `${this.source}: tensor ${quoteName(name)} `;
  }

  private entry(name: string): SafetensorsTensorInfo {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError('NOT_FOUND', `${this.where(name)}not found (${this.names.length} tensors in file)`);
    return e;
  }
}

function lookup(codes: ArrayLike<number>, table: Float32Array, shift = 0): Float32Array {
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i] << shift];
  return out;
}

function intView(raw: Uint8Array, dtype: SafetensorsDtype): Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array {
  switch (dtype) {
    case 'I8': return typedView(raw, Int8Array);
    case 'I16': return typedView(raw, Int16Array);
    case 'U16': return typedView(raw, Uint16Array);
    case 'I32': return typedView(raw, Int32Array);
    case 'U32': return typedView(raw, Uint32Array);
    default: return raw;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Names an untrusted JSON value's kind without stringifying it (it may be huge or nested too deep to print). */
function describe(value: unknown): string {
  if (typeof value === 'string') return quoteName(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value === null ? 'null' : Array.isArray(value) ? 'array' : 'object';
}

/** A validated shape for a message, elided when absurdly long. */
function dims(shape: number[]): string {
  return shape.length > 8 ? `[${shape.slice(0, 8)},… (${shape.length} dims)]` : `[${shape}]`;
}

/** A record whose keys may include "__proto__" without touching the prototype chain. */
function defineEntry(target: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Validates the whole header against the data buffer before returning; tensor bytes are then read
 * lazily by the accessors. `source` (a file name) prefixes every error message.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('parseSafetensors: bytes must be a Uint8Array');
  if (!LITTLE_ENDIAN_HOST) throw new Error('parseSafetensors: big-endian hosts are not supported');
  const fail = (code: SafetensorsErrorCode, message: string) => new SafetensorsError(code, `${source}: ${message}`);
  if (bytes.byteLength < 8) throw fail('TRUNCATED', `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) throw fail('HEADER_TOO_LARGE', `header length ${declared} exceeds ${MAX_HEADER_BYTES} bytes`);
  const headerLength = Number(declared);
  if (headerLength > bytes.byteLength - 8) {
    throw fail('TRUNCATED', `header length ${headerLength} exceeds the ${bytes.byteLength - 8} bytes after the length prefix`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw fail('BAD_JSON', 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw fail('BAD_JSON', "header does not start with '{'");
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw fail('BAD_JSON', `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(root)) throw fail('BAD_HEADER', 'header JSON is not an object');

  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  let metadata: Record<string, string> | undefined;
  const entries: Array<SafetensorsTensorInfo & { name: string }> = [];
  for (const name of Object.keys(root)) {
    const value = root[name];
    const tensor = `tensor ${quoteName(name)}`;
    if (name === '__metadata__') {
      if (value === null) continue; // serde reads null as "no metadata"
      if (!isPlainObject(value)) throw fail('BAD_HEADER', '__metadata__ is not an object');
      metadata = {};
      for (const key of Object.keys(value)) {
        const v = value[key];
        if (typeof v !== 'string') throw fail('BAD_HEADER', `__metadata__ value for ${quoteName(key)} is not a string`);
        defineEntry(metadata, key, v);
      }
      continue;
    }
    if (!isPlainObject(value)) throw fail('BAD_HEADER', `${tensor}: entry is not an object`);
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!Object.hasOwn(value, key)) throw fail('BAD_HEADER', `${tensor}: entry has no "${key}"`);
    }
    const { dtype, shape, data_offsets: offsets } = value;
    const dtypeInfo = typeof dtype === 'string' ? DTYPES.get(dtype) : undefined;
    if (!dtypeInfo) throw fail('BAD_DTYPE', `${tensor}: unknown dtype ${describe(dtype)}`);
    const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw fail('BAD_SHAPE', `${tensor}: shape must be an array of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw fail('BAD_OFFSETS', `${tensor}: data_offsets must be [begin, end] integers with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    // Element count with overflow checks; a zero dim makes the count 0 whatever the others are.
    let count = 1;
    if (shape.includes(0)) count = 0;
    else {
      for (const d of shape as number[]) {
        if (count > Number.MAX_SAFE_INTEGER / d) throw fail('BAD_SHAPE', `${tensor}: element count of ${dims(shape)} overflows`);
        count *= d;
      }
    }
    const byteLength = count * dtypeInfo.size;
    if (!Number.isSafeInteger(byteLength)) throw fail('BAD_SHAPE', `${tensor}: byte size of ${dims(shape)} overflows`);
    if (byteLength !== end - begin) {
      throw fail('SIZE_MISMATCH', `${tensor}: ${dtype} ${dims(shape)} needs ${byteLength} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    if (end > dataLength) throw fail('BAD_OFFSETS', `${tensor}: data_offsets [${begin}, ${end}] pass the end of the ${dataLength}-byte data buffer`);
    entries.push({
      name,
      dtype: dtype as SafetensorsDtype,
      shape: (shape as number[]).map((d) => d + 0), // + 0 turns a parsed -0 into 0
      dataOffsets: [begin + 0, end + 0],
      byteOffset: dataStart + begin,
      byteLength,
    });
  }

  // Tensors must tile the data buffer exactly: sorted by offsets, each begins where the previous ended.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let previous = '';
  for (const e of entries) {
    const [begin] = e.dataOffsets;
    const tensor = `tensor ${quoteName(e.name)}`;
    if (begin < cursor) throw fail('OVERLAP', `${tensor} starts at ${begin}, inside tensor ${quoteName(previous)} which ends at ${cursor}`);
    if (begin > cursor) throw fail('INCOMPLETE', `${tensor} starts at ${begin}, leaving unowned bytes [${cursor}, ${begin})`);
    cursor = e.dataOffsets[1];
    previous = e.name;
  }
  if (cursor !== dataLength) throw fail('INCOMPLETE', `tensors end at ${cursor} but the data buffer has ${dataLength} bytes`);

  const byName = new Map<string, SafetensorsTensorInfo>();
  for (const { name, ...info } of entries) byName.set(name, info);
  return new SafetensorsFile(bytes, source, headerLength, metadata, byName);
}

/** Reads the whole file (chunked, so files above readFileSync's 2 GiB limit work) and parses it. */
export function readSafetensors(path: string): SafetensorsFile {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const bytes = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const n = fs.readSync(fd, bytes, filled, Math.min(size - filled, 1 << 30), filled);
      if (n === 0) break; // shrank while reading: parse what we have, validation reports truncation
      filled += n;
    }
    return parseSafetensors(bytes.subarray(0, filled), path);
  } finally {
    fs.closeSync(fd);
  }
}

