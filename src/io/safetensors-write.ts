/**
 * safetensors writing (and the dtype table the reader in safetensors.ts shares). Output is the
 * canonical form the reference Rust/Python `safetensors` writes: "__metadata__" first, tensors sorted
 * by descending dtype alignment then by name (UTF-8 byte order) and packed back to back, compact JSON
 * padded with spaces so the data buffer starts 8-byte aligned. Import from './safetensors.ts'.
 */
import { type AtomicWriteOptions, writeFileAtomic } from './atomic.ts';
import { SafetensorsError } from './errors.ts';

export type SafetensorsDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** Bytes per element; listed in the Rust `Dtype` enum order (increasing alignment), which `rank` records. */
export const DTYPES: ReadonlyMap<string, { size: number; rank: number }> = new Map(
  (
    [
      ['BOOL', 1], ['U8', 1], ['I8', 1], ['F8_E5M2', 1], ['F8_E4M3', 1], ['I16', 2], ['U16', 2], ['F16', 2],
      ['BF16', 2], ['I32', 4], ['U32', 4], ['F32', 4], ['F64', 8], ['I64', 8], ['U64', 8],
    ] as const
  ).map(([name, size], rank) => [name, { size, rank }]),
);

/** Readers reject larger headers (the Rust limit), so writers must not produce them. */
export const MAX_HEADER_BYTES = 100_000_000;
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * fp32 bits → f16 bits, round to nearest even. Normal results rebias the exponent (127 → 15, i.e.
 * subtract 112 << 23) and round the 13 dropped mantissa bits by adding 0xfff + the lowest kept bit,
 * letting a carry ripple into the exponent. |x| ≥ 65520 (halfway above the max 65504) → ±Inf;
 * |x| ≤ 2^−25 (halfway to the smallest subnormal 2^−24) → ±0; in between, h = round(|x| / 2^−24).
 */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN stays (quiet) NaN
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) return sign | ((abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13);
  if (abs <= 0x33000000) return sign;
  const mantissa = (abs & 0x7fffff) | 0x800000; // |x| = mantissa · 2^(e − 150), so |x| / 2^−24 = mantissa >> (126 − e)
  const shift = 126 - (abs >>> 23);
  const kept = mantissa >>> shift;
  const dropped = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (kept + (dropped > half || (dropped === half && kept & 1) ? 1 : 0));
}

/**
 * fp32 bits → bf16 bits, round to nearest even: add 0x7fff + the lowest kept bit, keep the top 16 bits
 * (the kernels' autocast trick; a carry out of the largest finite values correctly gives ±Inf).
 * NaN is kept a quiet NaN, since the bias could otherwise carry its payload into ±Inf.
 */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

export type WritableData =
  | Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

export interface TensorToWrite {
  name: string;
  /**
   * Stored dtype; defaults to the data's own (Float32Array → F32, Float64Array → F64, Int32Array → I32,
   * BigInt64Array → I64, Int16Array → I16, Int8Array → I8, Uint8Array → U8). Conversions: Float32Array /
   * Float64Array → F32, F64, BF16, F16 (round to nearest even, via fp32); Int32Array → I64, F32;
   * BigInt64Array → I32 (range-checked). Uint16Array holds raw F16/BF16/U16/I16 bits (dtype required);
   * a Uint8Array is taken as the raw little-endian bytes of any dtype (e.g. SafetensorsFile.getRaw).
   */
  dtype?: SafetensorsDtype;
  shape: readonly number[];
  data: WritableData;
}
export type TensorsToWrite =
  | ReadonlyArray<TensorToWrite>
  | ReadonlyMap<string, Omit<TensorToWrite, 'name'>>
  | Readonly<Record<string, Omit<TensorToWrite, 'name'>>>;

export interface SerializeOptions {
  /** 'canonical' (default): the reference library's order; 'given': keep the caller's order. */
  order?: 'canonical' | 'given';
}

/** A name for an error message: quoted, and cut short since untrusted names can be megabytes long. */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function naturalDtype(data: WritableData): SafetensorsDtype | undefined {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint8Array) return 'U8';
  return undefined; // Uint16Array: F16, BF16 and U16 bits all look alike
}

/** The tensor's little-endian bytes in `dtype`: zero-copy views where no conversion is needed. */
function encode(where: string, data: WritableData, dtype: SafetensorsDtype, count: number): Uint8Array {
  const fail = (code: 'SIZE_MISMATCH' | 'BAD_DTYPE' | 'OUT_OF_RANGE', message: string) =>
    new SafetensorsError(code, `${where}: ${message}`);
  const size = DTYPES.get(dtype)!.size;
  if (data instanceof Uint8Array) {
    if (data.byteLength !== count * size) throw fail('SIZE_MISMATCH', `${data.byteLength} raw bytes, ${dtype} shape needs ${count * size}`);
    return data;
  }
  if (data.length !== count) throw fail('SIZE_MISMATCH', `data has ${data.length} elements, shape needs ${count}`);
  if (dtype === naturalDtype(data)) return bytesOf(data);
  if (data instanceof Uint16Array && (dtype === 'F16' || dtype === 'BF16' || dtype === 'U16' || dtype === 'I16')) return bytesOf(data);
  if ((data instanceof Float32Array || data instanceof Float64Array) && dtype !== 'F64') {
    const f32 = data instanceof Float32Array ? data : new Float32Array(data);
    if (dtype === 'F32') return bytesOf(f32);
    if (dtype === 'BF16' || dtype === 'F16') {
      const bits = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
      const out = new Uint16Array(count);
      const round = dtype === 'BF16' ? f32BitsToBf16Bits : f32BitsToF16Bits;
      for (let i = 0; i < count; i++) out[i] = round(bits[i]);
      return bytesOf(out);
    }
  }
  if (data instanceof Float32Array && dtype === 'F64') return bytesOf(new Float64Array(data));
  if (data instanceof Int32Array && dtype === 'F32') return bytesOf(new Float32Array(data));
  if (data instanceof Int32Array && dtype === 'I64') {
    const words = new Int32Array(2 * count);
    for (let i = 0; i < count; i++) {
      words[2 * i] = data[i];
      words[2 * i + 1] = data[i] >> 31; // sign extension
    }
    return bytesOf(words);
  }
  if (data instanceof BigInt64Array && dtype === 'I32') {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      if (data[i] !== BigInt.asIntN(32, data[i])) throw fail('OUT_OF_RANGE', `value ${data[i]} at index ${i} does not fit in I32`);
      out[i] = Number(data[i]);
    }
    return bytesOf(out);
  }
  throw fail('BAD_DTYPE', `cannot store a ${data.constructor.name} as ${dtype}`);
}

function listTensors(tensors: TensorsToWrite): TensorToWrite[] {
  if (Array.isArray(tensors)) return [...(tensors as ReadonlyArray<TensorToWrite>)];
  if (tensors instanceof Map) return [...tensors].map(([name, t]) => ({ ...t, name }));
  return Object.entries(tensors as Record<string, Omit<TensorToWrite, 'name'>>).map(([name, t]) => ({ ...t, name }));
}

function checkKey(what: string, key: unknown): string {
  if (typeof key !== 'string') throw new SafetensorsError('BAD_NAME', `${what} must be a string`);
  // JSON can carry a lone surrogate but UTF-8 cannot, so other readers would see a different name.
  if (LONE_SURROGATE.test(key)) throw new SafetensorsError('BAD_NAME', `${what} ${quoteName(key)} is not well-formed Unicode`);
  return key;
}

/**
 * Returns the file as chunks (8-byte length + header, then each tensor's bytes) so large models are
 * never copied into one buffer. Chunks may be views of the caller's arrays: write them before mutating.
 */
export function serializeSafetensors(
  tensors: TensorsToWrite,
  metadata?: Readonly<Record<string, string>> | ReadonlyMap<string, string>,
  options: SerializeOptions = {},
): Uint8Array[] {
  if (!LITTLE_ENDIAN_HOST) throw new Error('serializeSafetensors: big-endian hosts are not supported');
  const seen = new Set<string>();
  const prepared = listTensors(tensors).map((t) => {
    const name = checkKey('tensor name', t.name);
    const where = `tensor ${quoteName(name)}`;
    if (name === '__metadata__') throw new SafetensorsError('BAD_NAME', `${where} is reserved for the metadata map`);
    if (seen.has(name)) throw new SafetensorsError('BAD_NAME', `${where} appears twice`);
    seen.add(name);
    const dtype = t.dtype ?? naturalDtype(t.data);
    const info = dtype === undefined ? undefined : DTYPES.get(dtype);
    if (!info) throw new SafetensorsError('BAD_DTYPE', `${where}: ${dtype === undefined ? 'Uint16Array data needs an explicit dtype' : `unknown dtype ${dtype}`}`);
    const shape: number[] = Array.isArray(t.shape) ? [...t.shape] : [NaN];
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError('BAD_SHAPE', `${where}: shape [${shape}] is not non-negative integers`);
    const count = shape.reduce((a, d) => a * d, 1);
    if (!Number.isSafeInteger(count * info.size)) throw new SafetensorsError('BAD_SHAPE', `${where}: shape [${shape}] is too large`);
    return { name, dtype: dtype!, rank: info.rank, shape, bytes: encode(where, t.data, dtype!, count), sortKey: Buffer.from(name) };
  });
  if ((options.order ?? 'canonical') === 'canonical') {
    prepared.sort((a, b) => b.rank - a.rank || Buffer.compare(a.sortKey, b.sortKey));
  }

  // Built by hand, not JSON.stringify(object), which would move integer-like keys to the front.
  const fields: string[] = [];
  if (metadata !== undefined) {
    const pairs = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
    const body = pairs.map(([key, value]) => {
      checkKey('metadata key', key);
      if (typeof value !== 'string') throw new SafetensorsError('BAD_HEADER', `metadata value for ${quoteName(key)} is not a string`);
      return `${JSON.stringify(key)}:${JSON.stringify(checkKey('metadata value', value))}`;
    });
    fields.push(`"__metadata__":{${body.join(',')}}`);
  }
  let offset = 0;
  for (const t of prepared) {
    const end = offset + t.bytes.byteLength;
    fields.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) throw new SafetensorsError('HEADER_TOO_LARGE', `header would be ${headerLength} bytes`);
  const head = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.byteLength); // space padding
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);
  return [head, ...prepared.map((t) => t.bytes).filter((b) => b.byteLength > 0)];
}

/** serializeSafetensors + writeFileAtomic: the target is replaced in one step, never left half-written. */
export function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata?: Readonly<Record<string, string>> | ReadonlyMap<string, string>,
  options: SerializeOptions & AtomicWriteOptions = {},
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata, options), options);
}
