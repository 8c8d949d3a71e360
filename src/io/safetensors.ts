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
import { SafetensorsError } from './errors.ts';
import { LITTLE_ENDIAN_HOST, quoteName, type SafetensorsDtype } from './safetensors-write.ts';
import { failFor, headerLengthOf, parseHeader, type SafetensorsTensorInfo } from './safetensors-header.ts';

export { SafetensorsError } from './errors.ts';
export {
  type SafetensorsDtype, type SerializeOptions, type TensorToWrite, type TensorsToWrite,
  MAX_HEADER_BYTES, f32BitsToBf16Bits, f32BitsToF16Bits, serializeSafetensors, writeSafetensors,
} from './safetensors-write.ts';

export type { SafetensorsTensorInfo } from './safetensors-header.ts';

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

/**
 * A typed view of little-endian bytes: zero-copy when aligned, else a copy (typed arrays need alignment).
 * The copy is `new Uint8Array(raw)`, a fresh buffer at offset 0: `raw.slice()` would be another
 * unaligned view when raw is a Buffer (Buffer#slice does not copy).
 */
function typedView<T>(raw: Uint8Array, ctor: TypedCtor<T>): T {
  const size = ctor.BYTES_PER_ELEMENT;
  const aligned = raw.byteOffset % size === 0 ? raw : new Uint8Array(raw);
  return new ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

// ---------------------------------------------------------------------------------------------
// Reading

export class SafetensorsFile {
  /** Tensor names ordered by data offset (= header order for files written by this module or by HF). */
  readonly names: readonly string[];

  /** @internal use parseSafetensors or readSafetensors; `read(offset, length)` returns bytes of the file. */
  constructor(
    private readonly read: (offset: number, length: number) => Uint8Array,
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

  /**
   * The tensor's bytes: a view into the parsed buffer (parseSafetensors: zero-copy, do not mutate unless
   * you own the buffer), or a fresh copy read from the file (readSafetensors).
   */
  getRaw(name: string): Uint8Array {
    const e = this.entry(name);
    try {
      return this.read(e.byteOffset, e.byteLength);
    } catch (err) {
      if (err instanceof SafetensorsError) throw err;
      throw new SafetensorsError('IO', `${this.where(name)}(${e.byteLength} bytes) could not be read: ${(err as Error).message}`, { cause: err });
    }
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

/**
 * Validates the whole header against the data buffer before returning; tensor bytes are then read
 * lazily by the accessors. `source` (a file name) prefixes every error message.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('parseSafetensors: bytes must be a Uint8Array');
  if (!LITTLE_ENDIAN_HOST) throw new Error('parseSafetensors: big-endian hosts are not supported');
  const fail = failFor(source);
  const headerLength = headerLengthOf(bytes, bytes.byteLength, fail);
  const h = parseHeader(bytes.subarray(8, 8 + headerLength), bytes.byteLength - 8 - headerLength, fail);
  return new SafetensorsFile((offset, length) => bytes.subarray(offset, offset + length), source, headerLength, h.metadata, h.entries);
}

/** Reads exactly `length` bytes at `position` (in 1 GiB pieces: one read is limited to 2 GiB). */
function readExactly(fd: number, out: Uint8Array, position: number, fail: () => SafetensorsError): void {
  let filled = 0;
  while (filled < out.byteLength) {
    const n = fs.readSync(fd, out, filled, Math.min(out.byteLength - filled, 1 << 30), position + filled);
    if (n === 0) throw fail();
    filled += n;
  }
}

/**
 * Opens a file and reads only its 8-byte prefix and header, which are validated against the file
 * size before anything else is read: a corrupt or absurd file costs no memory, and files above
 * 4 GiB (5 GB shards, Llama-family checkpoints) work. Each tensor is then read from its own byte
 * range when asked for. The file is reopened for each read (no descriptor is held), and a file
 * replaced or changed since its header was read is refused rather than mixed with the new one.
 */
export function readSafetensors(path: string): SafetensorsFile {
  if (!LITTLE_ENDIAN_HOST) throw new Error('readSafetensors: big-endian hosts are not supported');
  const fail = failFor(path);
  const fd = fs.openSync(path, 'r');
  let stat: fs.Stats;
  let header: ReturnType<typeof parseHeader>;
  try {
    stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw fail('TRUNCATED', 'is not a regular file');
    const prefix = new Uint8Array(8);
    const truncated = () => fail('TRUNCATED', `file is ${stat.size} bytes, shorter than its header says`);
    if (stat.size >= 8) readExactly(fd, prefix, 0, truncated);
    const headerLength = headerLengthOf(prefix, stat.size, fail);
    const json = new Uint8Array(headerLength);
    readExactly(fd, json, 8, truncated);
    header = parseHeader(json, stat.size - 8 - headerLength, fail);
  } finally {
    fs.closeSync(fd);
  }
  const read = (offset: number, length: number): Uint8Array => {
    const out = new Uint8Array(length); // a fresh buffer at offset 0: aligned for every dtype
    const again = fs.openSync(path, 'r');
    try {
      const now = fs.fstatSync(again);
      if (now.ino !== stat.ino || now.dev !== stat.dev || now.size !== stat.size || now.mtimeMs !== stat.mtimeMs) {
        throw fail('CHANGED', `file was changed or replaced after its header was read (${stat.size} → ${now.size} bytes); read it again`);
      }
      readExactly(again, out, offset, () => fail('TRUNCATED', `file was truncated while reading bytes [${offset}, ${offset + length})`));
    } finally {
      fs.closeSync(again);
    }
    return out;
  };
  return new SafetensorsFile(read, path, header.headerLength, header.metadata, header.entries);
}
