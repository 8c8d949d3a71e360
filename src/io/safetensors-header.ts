/**
 * Validation of a safetensors header (the u64 length prefix and the JSON that follows it) against
 * the size of the data buffer, shared by the in-memory parser and the file reader, which reads only
 * the header before deciding anything (a bad or huge file then costs no memory). Import from
 * './safetensors.ts'.
 */
import { SafetensorsError, type SafetensorsErrorCode } from './errors.ts';
import { DTYPES, MAX_HEADER_BYTES, quoteName, type SafetensorsDtype } from './safetensors-write.ts';

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** data_offsets exactly as in the header: relative to the start of the data buffer. */
  dataOffsets: [number, number];
  /** Absolute offset of the tensor's bytes in the parsed file (8 + header length + begin). */
  byteOffset: number;
  byteLength: number;
}

export interface ParsedHeader {
  headerLength: number;
  metadata: Record<string, string> | undefined;
  /** Ordered by data offset. */
  entries: Map<string, SafetensorsTensorInfo>;
}

export type Fail = (code: SafetensorsErrorCode, message: string) => SafetensorsError;

export function failFor(source: string): Fail {
  return (code, message) => new SafetensorsError(code, `${source}: ${message}`);
}

/**
 * The header length from the 8-byte prefix, checked against the limit and the file size.
 * `fileSize` is the whole file (prefix included).
 */
export function headerLengthOf(prefix: Uint8Array, fileSize: number, fail: Fail): number {
  if (fileSize < 8 || prefix.byteLength < 8) throw fail('TRUNCATED', `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const declared = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) throw fail('HEADER_TOO_LARGE', `header length ${declared} exceeds ${MAX_HEADER_BYTES} bytes`);
  const headerLength = Number(declared);
  if (headerLength > fileSize - 8) {
    throw fail('TRUNCATED', `header length ${headerLength} exceeds the ${fileSize - 8} bytes after the length prefix`);
  }
  return headerLength;
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
 * Validates the header JSON (`json`, exactly headerLength bytes) against a data buffer of
 * `dataLength` bytes: the rules of the reference Rust implementation (tensors exactly tiling the
 * data buffer, no overlaps, holes or trailing bytes).
 */
export function parseHeader(json: Uint8Array, dataLength: number, fail: Fail): ParsedHeader {
  const headerLength = json.byteLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json);
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
  return { headerLength, metadata, entries: byName };
}
