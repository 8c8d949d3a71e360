/**
 * Mutation fuzzing of the safetensors reader: valid files (the PyTorch fixtures and small generated
 * ones) are truncated, bit-flipped, given absurd header lengths, rewritten with hostile JSON, or
 * replaced by garbage. Every case must either parse with every tensor readable, or throw
 * SafetensorsError: any other exception, an out-of-bounds view or a slow case fails the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { SafetensorsError, parseSafetensors, serializeSafetensors, type SafetensorsDtype } from '../../src/io/safetensors.ts';
import { Rng } from '../../src/util/random.ts';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../..', '../shared/fixtures/gpt2-tiny');
const DTYPES: SafetensorsDtype[] = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL'];
const SIZES: Record<SafetensorsDtype, number> = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, F8_E4M3: 1, F8_E5M2: 1, I8: 1, U8: 1, BOOL: 1 };
const INTEGER = new Set<string>(['I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL']);
const CASES = 5000;

const rng = new Rng(0x5afe7e);
const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)];

function generatedFile(): Uint8Array {
  const tensors = Array.from({ length: rng.int(5) }, (_, i) => {
    const dtype = pick(DTYPES);
    const shape = Array.from({ length: rng.int(4) }, () => rng.int(5));
    const count = shape.reduce((a, d) => a * d, 1);
    return { name: pick(['w', 'bias', 'é', '__proto__', '0', '']) + i, dtype, shape, data: new Uint8Array(count * SIZES[dtype]).map(() => rng.int(256)) };
  });
  const metadata = rng.next() < 0.5 ? { format: 'pt', step: String(rng.int(1000)) } : undefined;
  return new Uint8Array(Buffer.concat(serializeSafetensors(tensors, metadata, { order: pick(['canonical', 'given'] as const) })));
}

function split(file: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const length = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(Buffer.from(file.subarray(8, 8 + length)).toString()), data: file.subarray(8 + length) };
}

function assemble(headerText: string, data: Uint8Array): Uint8Array {
  const json = Buffer.from(headerText + ' '.repeat(rng.int(9)));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const WEIRD = [-1, 1.5, '3', 2 ** 53, 1e308, 0, 2 ** 31, null, [], {}, true, -0, 2 ** 64, '', 'F32'];

/** One structural edit of a header, as a JSON text (deep nesting is spliced in as text: stringify would recurse). */
function mutateJson(file: Uint8Array): Uint8Array {
  const { header, data } = split(file);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = names.length ? pick(names) : 'fresh';
  const entry = (header[name] ?? { dtype: 'F32', shape: [1], data_offsets: [0, 4] }) as Record<string, unknown>;
  header[name] = entry;
  const shape = Array.isArray(entry.shape) ? (entry.shape as unknown[]) : [];
  const offsets = Array.isArray(entry.data_offsets) ? (entry.data_offsets as unknown[]) : [0, 0];
  let deep = 0;
  switch (rng.int(14)) {
    case 0: entry[pick(['dtype', 'dtype', 'shape', 'data_offsets'])] = pick([...DTYPES, 'F33', '', 'f32', 5, null, ['F32'], {}, 'constructor', '__proto__', '__DEEP__']); deep = 1 + rng.int(20000); break;
    case 1: shape.push(pick([1, 2, 0, 1000, 2 ** 40])); entry.shape = shape; break;
    case 2: shape.pop(); entry.shape = shape; break;
    case 3: shape[rng.int(shape.length + 1)] = pick(WEIRD); entry.shape = shape; break;
    case 4: entry.shape = pick([5, null, '[1]', {}, shape.map(String)]); break;
    case 5: offsets[rng.int(2)] = (Number(offsets[rng.int(2)]) || 0) + pick([-4, -1, 1, 2, 4, 8, 1024, 2 ** 53]); entry.data_offsets = offsets; break;
    case 6: offsets[rng.int(3)] = pick(WEIRD); entry.data_offsets = pick([offsets, offsets.slice(0, 1), [...offsets].reverse(), offsets.map(String)]); break;
    case 7: { // point at another tensor's bytes (overlap) or duplicate it under a new name
      const other = header[pick(names.length ? names : ['fresh'])] as Record<string, unknown>;
      if (rng.next() < 0.5) entry.data_offsets = other.data_offsets;
      else header[`${name}.copy`] = { ...other };
      break;
    }
    case 8: delete entry[pick(['dtype', 'shape', 'data_offsets'])]; if (rng.next() < 0.5) entry.extra = pick(WEIRD); break;
    case 9: deep = 1 + rng.int(20000); header[name] = '__DEEP__'; break;
    case 10: header[name] = pick([3, 'x', null, [], [entry], true]); break;
    case 11: header.__metadata__ = pick([3, null, [], { a: 1 }, { a: { b: 'c' } }, { a: 'b', __proto__x: 'c' }, '__DEEP__']); deep = 1 + rng.int(5000); break;
    case 12: delete header[name]; break; // leaves a hole
    case 13: { header[pick(['__proto__', 'constructor', '', '\u0000', 'x'.repeat(1000)])] = entry; delete header[name]; break; }
  }
  let text = JSON.stringify(header);
  if (deep) {
    const nested = rng.next() < 0.5 ? '['.repeat(deep) + ']'.repeat(deep) : '{"a":'.repeat(deep) + '1' + '}'.repeat(deep);
    text = text.replace('"__DEEP__"', rng.next() < 0.2 ? nested.slice(0, -1) : nested); // sometimes unbalanced
  }
  const resized = rng.next() < 0.15 ? data.subarray(0, Math.max(0, data.length - rng.int(8))) : data;
  return assemble(text, resized);
}

function setLength(file: Uint8Array, value: bigint): Uint8Array {
  const out = file.slice();
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return out;
}

function mutate(base: Uint8Array): { kind: string; bytes: Uint8Array } {
  const headerEnd = 8 + Math.min(Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true)), base.length - 8);
  switch (rng.int(8)) {
    case 0: return { kind: 'truncate', bytes: base.subarray(0, rng.next() < 0.5 ? rng.int(headerEnd + 1) : rng.int(base.length + 1)) };
    case 1: {
      const out = base.slice();
      out[rng.int(8)] ^= 1 << rng.int(8);
      return { kind: 'flip-length', bytes: out };
    }
    case 2: {
      const out = base.slice();
      const json = '{}[]",:0123456789-.e \\';
      for (let n = 1 + rng.int(4); n > 0; n--) out[8 + rng.int(headerEnd - 8)] = rng.next() < 0.5 ? rng.int(256) : json.charCodeAt(rng.int(json.length));
      return { kind: 'flip-header', bytes: out };
    }
    case 3: {
      const length = BigInt(headerEnd - 8);
      const value = pick([0n, 1n, 7n, -1n, 2n ** 63n, 2n ** 32n, 100_000_000n, 100_000_001n, BigInt(base.length - 8), BigInt(base.length - 7), length + BigInt(rng.int(17) - 8), BigInt(rng.int(base.length))]);
      return { kind: 'set-length', bytes: setLength(base, value) };
    }
    case 4: case 5: return { kind: 'json', bytes: mutateJson(base) };
    case 6: {
      const garbage = new Uint8Array(rng.int(300)).map(() => rng.int(256));
      if (garbage.length >= 8 && rng.next() < 0.5) new DataView(garbage.buffer).setBigUint64(0, BigInt(rng.int(garbage.length)), true);
      return { kind: 'garbage', bytes: garbage };
    }
    default: { // splice the head of one file onto the tail of another
      const cut = rng.int(base.length + 1);
      const other = generatedFile();
      return { kind: 'splice', bytes: new Uint8Array(Buffer.concat([base.subarray(0, cut), other.subarray(rng.int(other.length + 1))])) };
    }
  }
}

/** 'ok' when the file parses and every tensor reads back consistently, else the SafetensorsError code. */
function exercise(bytes: Uint8Array): string {
  try {
    const file = parseSafetensors(bytes, 'fuzz.safetensors');
    for (const name of file.names) {
      const info = file.info(name);
      const count = info.shape.reduce((a, d) => a * d, 1);
      assert.ok(info.byteOffset >= 8 && info.byteOffset + info.byteLength <= bytes.length, 'tensor inside the file');
      assert.equal(file.getRaw(name).byteLength, info.byteLength);
      assert.equal(file.getFloat32(name).length, count);
      if (INTEGER.has(info.dtype)) {
        try {
          assert.equal(file.getInt32(name).length, count);
        } catch (err) {
          if (!(err instanceof SafetensorsError && err.code === 'OUT_OF_RANGE')) throw err;
        }
      }
    }
    assert.equal(file.tensors().size, file.names.length);
    return 'ok';
  } catch (err) {
    if (err instanceof SafetensorsError) return err.code;
    throw err;
  }
}

test(`fuzz: ${CASES} mutated files parse cleanly or throw SafetensorsError`, (t) => {
  const bases = [
    new Uint8Array(readFileSync(join(fixtures, 'model.safetensors'))),
    new Uint8Array(readFileSync(join(fixtures, 'expected.safetensors'))),
    ...Array.from({ length: 30 }, generatedFile),
  ];
  for (const base of bases) assert.equal(exercise(base), 'ok', 'every base file is valid');

  const outcomes = new Map<string, number>();
  let slowest = 0;
  const started = performance.now();
  for (let i = 0; i < CASES; i++) {
    // Fixtures are big and uniform: a quarter of the cases is plenty for them.
    const base = rng.next() < 0.25 ? bases[rng.int(2)] : bases[2 + rng.int(bases.length - 2)];
    const { kind, bytes } = mutate(base);
    const t0 = performance.now();
    let outcome: string;
    try {
      outcome = exercise(bytes);
    } catch (err) {
      const sample = Buffer.from(bytes.subarray(0, 200)).toString('base64');
      assert.fail(`case ${i} (${kind}, ${bytes.length} bytes) threw ${String(err)}; first bytes (base64): ${sample}`);
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert.ok(ms < 1000, `case ${i} (${kind}) took ${ms.toFixed(0)} ms`);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  t.diagnostic(`${CASES} cases in ${(performance.now() - started).toFixed(0)} ms, slowest ${slowest.toFixed(1)} ms: ${JSON.stringify(Object.fromEntries(outcomes))}`);

  // The mutations must actually reach every validation rule, and some must stay valid.
  for (const code of ['ok', 'TRUNCATED', 'HEADER_TOO_LARGE', 'BAD_JSON', 'BAD_HEADER', 'BAD_DTYPE', 'BAD_SHAPE', 'BAD_OFFSETS', 'OVERLAP', 'INCOMPLETE', 'SIZE_MISMATCH']) {
    assert.ok((outcomes.get(code) ?? 0) > 0, `no case produced ${code}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  }
});
