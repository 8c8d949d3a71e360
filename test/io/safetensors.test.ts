import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SafetensorsError, f32BitsToBf16Bits, f32BitsToF16Bits, parseSafetensors, readSafetensors, serializeSafetensors,
  writeSafetensors, type TensorToWrite,
} from '../../src/io/safetensors.ts';
import { writeFileAtomic, writeFileAtomicAsync, writeJsonAtomic } from '../../src/io/atomic.ts';
import { roundBf16 } from '../../src/backend/reference/bf16.ts';
import { Rng } from '../../src/util/random.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = resolve(repoRoot, '../shared/fixtures/gpt2-tiny');

const concat = (chunks: Uint8Array[]) => new Uint8Array(Buffer.concat(chunks));
const roundTrip = (tensors: TensorToWrite[], metadata?: Record<string, string>) =>
  parseSafetensors(concat(serializeSafetensors(tensors, metadata)), 'roundtrip.safetensors');

/** A file from a header given as JSON text or object, with `dataLength` data bytes (0, 1, 2, ...). */
function handMade(header: unknown, dataLength = 0, declaredLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataLength; i++) out[8 + json.length + i] = i & 0xff;
  return out;
}

function expectCode(code: string, bytes: Uint8Array, ...mentions: string[]): void {
  assert.throws(
    () => parseSafetensors(bytes, 'hand-made.safetensors'),
    (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      for (const m of ['hand-made.safetensors', ...mentions]) assert.ok(err.message.includes(m), `"${err.message}" lacks "${m}"`);
      return true;
    },
  );
}

test('round-trips every dtype, including scalars and zero-size shapes', () => {
  const f32 = new Float32Array([1.5, -2.25, 3e-8, 1e30]);
  const f64 = new Float64Array([0.1, -1e300, 2 ** -30]);
  const i64 = new BigInt64Array([-1n, 2n ** 40n, -(2n ** 31n), 7n]);
  const i32 = new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, 42, -7, 9]);
  const u32Bytes = new Uint8Array(new Uint32Array([0, 2 ** 32 - 1, 123]).buffer);
  const u64Bytes = new Uint8Array(new BigUint64Array([5n, 2n ** 33n]).buffer);
  const f = roundTrip([
    { name: 'f32', shape: [2, 2], data: f32 },
    { name: 'scalar', shape: [], data: new Float32Array([7]) },
    { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
    { name: 'f64', shape: [3], data: f64 },
    { name: 'f16', dtype: 'F16', shape: [7], data: new Float32Array([1, -2.5, 65504, 2 ** -24, 0, -0, -Infinity]) },
    { name: 'bf16', dtype: 'BF16', shape: [5], data: new Float32Array([1, -3, 2 ** 100, Infinity, NaN]) },
    { name: 'f16bits', dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
    { name: 'bf16bits', dtype: 'BF16', shape: [1, 1], data: new Uint16Array([0x4049]) },
    { name: 'i64', shape: [4], data: i64 },
    { name: 'i32', shape: [2, 3], data: i32 },
    { name: 'i16', shape: [3], data: new Int16Array([-32768, 32767, 1]) },
    { name: 'i8', shape: [2], data: new Int8Array([-128, 127]) },
    { name: 'u8', shape: [3], data: new Uint8Array([0, 200, 255]) },
    { name: 'bool', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'u16', dtype: 'U16', shape: [1], data: new Uint16Array([65535]) },
    { name: 'u32', dtype: 'U32', shape: [3], data: u32Bytes },
    { name: 'u64', dtype: 'U64', shape: [2], data: u64Bytes },
    { name: 'e4m3', dtype: 'F8_E4M3', shape: [4], data: new Uint8Array([0x38, 0x7e, 0x7f, 0x81]) },
    { name: 'e5m2', dtype: 'F8_E5M2', shape: [2], data: new Uint8Array([0x3c, 0xc2]) },
    { name: 'i32as64', dtype: 'I64', shape: [2], data: new Int32Array([-5, 6]) },
    { name: 'i64as32', dtype: 'I32', shape: [2], data: new BigInt64Array([-5n, 6n]) },
    { name: 'f32as64', dtype: 'F64', shape: [1], data: new Float32Array([0.1]) },
  ], { format: 'pt', '2': 'integer-like key', __proto__x: 'y' });

  assert.deepEqual(f.metadata, { format: 'pt', '2': 'integer-like key', __proto__x: 'y' });
  assert.deepEqual(f.getFloat32('f32'), f32);
  assert.deepEqual(f.info('f32'), { ...f.info('f32'), dtype: 'F32', shape: [2, 2], byteLength: 16 });
  assert.deepEqual(f.info('scalar').shape, []);
  assert.deepEqual(f.getFloat32('scalar'), new Float32Array([7]));
  assert.deepEqual(f.info('empty').shape, [0, 3]);
  assert.equal(f.getFloat32('empty').length, 0);
  assert.deepEqual(f.getFloat32('f64'), new Float32Array(f64));
  assert.deepEqual(Buffer.from(f.getRaw('f64')), Buffer.from(f64.buffer));
  assert.deepEqual([...f.getFloat32('f16')], [1, -2.5, 65504, 2 ** -24, 0, -0, -Infinity]);
  assert.deepEqual([...f.getFloat32('bf16')], [1, -3, 2 ** 100, Infinity, NaN]);
  assert.deepEqual([...f.getFloat32('f16bits')], [1, -2]);
  assert.deepEqual([...f.getFloat32('bf16bits')], [3.140625]);
  assert.deepEqual([...f.getFloat32('i64')], [-1, 2 ** 40, -(2 ** 31), 7]);
  assert.deepEqual(Buffer.from(f.getRaw('i64')), Buffer.from(i64.buffer));
  assert.throws(() => f.getInt32('i64'), (e: SafetensorsError) => e.code === 'OUT_OF_RANGE' && e.message.includes('"i64"'));
  assert.deepEqual(f.getInt32('i32'), i32);
  assert.deepEqual([...f.getFloat32('i32')], [...i32].map(Math.fround));
  assert.deepEqual([...f.getInt32('i16')], [-32768, 32767, 1]);
  assert.deepEqual([...f.getInt32('i8')], [-128, 127]);
  assert.deepEqual([...f.getInt32('u8')], [0, 200, 255]);
  assert.deepEqual([...f.getFloat32('bool')], [1, 0, 1]);
  assert.deepEqual([...f.getInt32('u16')], [65535]);
  assert.deepEqual([...f.getFloat32('u32')], [0, Math.fround(2 ** 32 - 1), 123]);
  assert.throws(() => f.getInt32('u32'), (e: SafetensorsError) => e.code === 'OUT_OF_RANGE');
  assert.deepEqual([...f.getFloat32('u64')], [5, 2 ** 33]);
  assert.deepEqual([...f.getFloat32('e4m3')], [1, 448, NaN, -(2 ** -9)]);
  assert.deepEqual([...f.getFloat32('e5m2')], [1, -3]);
  assert.deepEqual([...f.getInt32('i32as64')], [-5, 6]);
  assert.equal(f.info('i32as64').dtype, 'I64');
  assert.deepEqual([...f.getInt32('i64as32')], [-5, 6]);
  assert.deepEqual([...f.getFloat32('f32as64')], [Math.fround(0.1)]);
  assert.throws(() => f.getInt32('f32'), (e: SafetensorsError) => e.code === 'BAD_DTYPE');
  assert.throws(() => f.getFloat32('nope'), (e: SafetensorsError) => e.code === 'NOT_FOUND' && e.message.includes('"nope"'));
  const all = f.tensors();
  assert.equal(all.size, f.names.length);
  assert.deepEqual(all.get('f32'), { dtype: 'F32', shape: [2, 2], data: f32 });
});

test('writer output matches the reference library byte for byte, in canonical order', () => {
  // The header bytes the Rust `safetensors` crate produces for these inputs (its own unit tests).
  const one = concat(serializeSafetensors([{ name: 'attn.0', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) }]));
  const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assert.equal(json.length, 64);
  assert.deepEqual(one.subarray(0, 8), new Uint8Array([64, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(Buffer.from(one.subarray(8, 72)).toString(), json);
  assert.deepEqual(new Float32Array(one.slice(72).buffer), new Float32Array([0, 1, 2, 3, 4, 5]));
  assert.deepEqual([...concat(serializeSafetensors([]))], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  const meta = concat(serializeSafetensors({}, { framework: 'pt' }));
  assert.equal(Buffer.from(meta.subarray(8)).toString(), '{"__metadata__":{"framework":"pt"}}     ');

  const tensors: TensorToWrite[] = [
    { name: 'b', shape: [1], data: new Float32Array([2]) },
    { name: 'é', shape: [1], data: new Float32Array([4]) },
    { name: 'a', shape: [1], data: new Float32Array([1]) },
    { name: 'c', dtype: 'BF16', shape: [1], data: new Float32Array([3]) },
    { name: 'd', shape: [1], data: new BigInt64Array([5n]) },
  ];
  assert.deepEqual(roundTrip(tensors).names, ['d', 'a', 'b', 'é', 'c']); // alignment desc, then UTF-8 name order
  const given = parseSafetensors(concat(serializeSafetensors(tensors, undefined, { order: 'given' })));
  assert.deepEqual(given.names, ['b', 'é', 'a', 'c', 'd']);
  assert.equal(given.getFloat32('d')[0], 5);
  // Map and Record inputs work too; every header is space-padded so the data starts 8-byte aligned.
  for (const input of [new Map([['x', { shape: [3], data: new Int8Array([1, 2, 3]) }]]), { x: { shape: [3], data: new Int8Array([1, 2, 3]) } }]) {
    const head = serializeSafetensors(input)[0];
    assert.equal(head.length % 8, 0);
    assert.deepEqual([...parseSafetensors(concat(serializeSafetensors(input))).getInt32('x')], [1, 2, 3]);
  }
});

test('writer rejects inconsistent tensors with typed errors', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof SafetensorsError);
      return e.code;
    }
    return 'none';
  };
  const one = (t: Partial<TensorToWrite>) => () => serializeSafetensors([{ name: 't', shape: [2], data: new Float32Array(2), ...t }]);
  assert.equal(code(one({ shape: [3] })), 'SIZE_MISMATCH');
  assert.equal(code(one({ shape: [-2] })), 'BAD_SHAPE');
  assert.equal(code(one({ dtype: 'I32' })), 'BAD_DTYPE');
  assert.equal(code(one({ data: new Uint16Array(2), dtype: undefined })), 'BAD_DTYPE');
  assert.equal(code(one({ data: new BigInt64Array([1n, 2n ** 40n]), dtype: 'I32' })), 'OUT_OF_RANGE');
  assert.equal(code(one({ data: new Uint8Array(7), dtype: 'F32' })), 'SIZE_MISMATCH');
  assert.equal(code(one({ name: '__metadata__' })), 'BAD_NAME');
  assert.equal(code(one({ name: 'bad\uD800' })), 'BAD_NAME');
  assert.equal(code(() => serializeSafetensors([{ name: 'a', shape: [], data: new Float32Array(1) }, { name: 'a', shape: [], data: new Float32Array(1) }])), 'BAD_NAME');
  assert.equal(code(() => serializeSafetensors([], { k: 1 as unknown as string })), 'BAD_HEADER');
});

test('f16 and bf16 encoders round to nearest even, exhaustively', () => {
  const f32 = new Float32Array(1);
  const bits = new Uint32Array(f32.buffer);
  const decoded = parseSafetensors(concat(serializeSafetensors([{
    name: 'all', dtype: 'F16', shape: [65536], data: new Uint16Array(65536).map((_, i) => i),
  }]))).getFloat32('all');
  const toF16 = (x: number) => { f32[0] = x; return f32BitsToF16Bits(bits[0]); };
  for (let h = 0; h < 65536; h++) {
    const v = decoded[h];
    if (Number.isNaN(v)) {
      assert.ok((toF16(v) & 0x7c00) === 0x7c00 && (toF16(v) & 0x3ff) !== 0);
      continue;
    }
    assert.equal(toF16(v), h, `f16 ${h.toString(16)} does not round-trip`);
    if ((h & 0x7fff) >= 0x7c00) continue;
    // Halfway to the next magnitude (exact in fp32) goes to the even neighbour; a hair either side does not.
    const next = (h & 0x7fff) === 0x7bff ? 65536 * Math.sign(1 / v) : decoded[h + 1];
    const mid = (v + next) / 2;
    const even = h & 1 ? h + 1 : h;
    assert.equal(toF16(mid), even, `tie above f16 ${h.toString(16)}`);
    f32[0] = mid; bits[0] -= 1; assert.equal(f32BitsToF16Bits(bits[0]), h);
    bits[0] += 2; assert.equal(f32BitsToF16Bits(bits[0]), h + 1);
  }
  const rng = new Rng(7);
  for (let i = 0; i < 20000; i++) {
    bits[0] = (rng.next() * 2 ** 24) * 256 + rng.int(256); // random fp32 bit patterns (with ties when low bits are 0x8000)
    if (i % 4 === 0) bits[0] = (bits[0] & 0xffff0000) | 0x8000;
    const x = f32[0];
    const got = f32BitsToBf16Bits(bits[0]);
    bits[0] = got << 16;
    if (Number.isNaN(x)) assert.ok(Number.isNaN(f32[0]));
    else assert.equal(f32[0], roundBf16(x));
  }
});

test('reads the PyTorch-made gpt2-tiny fixtures and re-serialises their data exactly', () => {
  const model = readSafetensors(join(fixtures, 'model.safetensors'));
  assert.equal(model.names.length, 28);
  assert.deepEqual(model.names.slice(0, 3), ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight']);
  assert.deepEqual(model.metadata, { format: 'pt' });
  assert.equal(model.headerLength, 2640);
  assert.deepEqual(model.info('transformer.h.1.attn.c_attn.weight').shape, [64, 192]);
  const wte = model.getFloat32('transformer.wte.weight');
  assert.equal(wte.length, 512 * 64);
  assert.deepEqual([...wte.subarray(0, 3)], [-0.0022343711461871862, -0.009931801818311214, 0.003261473961174488]);
  assert.equal(wte[wte.length - 1], 0.013552497141063213);
  assert.equal(wte.buffer.byteLength, wte.byteLength, 'read from its own byte range, converted without a second copy');
  const inMemory = parseSafetensors(readFileSync(join(fixtures, 'model.safetensors')));
  assert.equal(inMemory.getFloat32('transformer.wte.weight').buffer, inMemory.getRaw('transformer.wte.weight').buffer, 'aligned F32 is a zero-copy view');
  assert.deepEqual([...model.getFloat32('transformer.ln_f.bias').subarray(0, 2)], [-0.04674553498625755, 0.04839205741882324]);

  const expected = readSafetensors(join(fixtures, 'expected.safetensors'));
  assert.deepEqual(expected.info('logits').shape, [2, 16, 512]);
  assert.deepEqual([...expected.getFloat32('loss')], [6.22368049621582]);
  assert.equal(expected.getFloat32('logits')[2], 0.07232573628425598);

  for (const [file, name] of [[model, 'model'], [expected, 'expected']] as const) {
    const original = readFileSync(join(fixtures, `${name}.safetensors`));
    const tensors = [...file.tensors()].map(([n, t]) => ({ name: n, ...t }));
    const again = concat(serializeSafetensors(tensors, file.metadata, { order: 'given' }));
    const reparsed = parseSafetensors(again);
    assert.deepEqual(reparsed.names, file.names);
    assert.ok(Buffer.from(again.subarray(8 + reparsed.headerLength)).equals(original.subarray(8 + file.headerLength)), `${name} data section differs`);
    const canonical = roundTrip(tensors, file.metadata);
    for (const n of file.names) assert.ok(Buffer.from(canonical.getRaw(n)).equals(file.getRaw(n)), n);
  }
});

test('each validation rule throws its SafetensorsError code naming the file and tensor', () => {
  const t = (dtype: unknown, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
  expectCode('TRUNCATED', new Uint8Array(5));
  expectCode('TRUNCATED', handMade('{}', 0, 100n));
  expectCode('HEADER_TOO_LARGE', handMade('{}', 0, 100_000_001n));
  expectCode('HEADER_TOO_LARGE', handMade('{}', 0, 2n ** 64n - 1n)); // "-1" as u64
  expectCode('BAD_JSON', handMade(''));
  expectCode('BAD_JSON', handMade(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))); // {"\xff":1}
  expectCode('BAD_JSON', handMade('{"a":'));
  expectCode('BAD_JSON', handMade(' {}'));
  expectCode('BAD_HEADER', handMade('{"a":[1]}'), '"a"');
  expectCode('BAD_HEADER', handMade({ w: 3 }), '"w"');
  expectCode('BAD_HEADER', handMade({ w: { shape: [1], data_offsets: [0, 4] } }, 4), '"w"', 'dtype');
  expectCode('BAD_HEADER', handMade({ __metadata__: { a: 1 } }));
  expectCode('BAD_HEADER', handMade({ __metadata__: ['x'] }));
  expectCode('BAD_DTYPE', handMade({ w: t('F33', [1], [0, 4]) }, 4), '"w"');
  expectCode('BAD_DTYPE', handMade({ w: t('constructor', [1], [0, 4]) }, 4));
  expectCode('BAD_DTYPE', handMade({ w: t(4, [1], [0, 4]) }, 4));
  for (const shape of [[-1], [1.5], ['2'], '2', [2 ** 53], [1e300], [2 ** 30, 2 ** 30, 2 ** 30]]) {
    expectCode('BAD_SHAPE', handMade({ w: t('F32', shape, [0, 4]) }, 4), '"w"');
  }
  for (const offsets of [[0], [4, 0], [-1, 3], ['0', '4'], [0, 4, 8], null]) {
    expectCode('BAD_OFFSETS', handMade({ w: t('U8', [4], offsets) }, 4), '"w"');
  }
  expectCode('BAD_OFFSETS', handMade({ w: t('F32', [2], [0, 8]) }, 4), '"w"');
  expectCode('SIZE_MISMATCH', handMade({ w: t('F32', [2], [0, 4]) }, 4), '"w"');
  expectCode('OVERLAP', handMade({ a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) }, 12), '"a"', '"b"');
  expectCode('OVERLAP', handMade({ a: t('F32', [2], [0, 8]), z: t('F32', [0], [4, 4]) }, 8), '"z"');
  expectCode('INCOMPLETE', handMade({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, 12), '"b"');
  expectCode('INCOMPLETE', handMade({ a: t('F32', [1], [4, 8]) }, 8), '"a"');
  expectCode('INCOMPLETE', handMade({ a: t('F32', [1], [0, 4]) }, 5));
});

test('accepts the valid corner cases of the format', () => {
  // Padding, null metadata, "__proto__" names, zero-size tensors sharing an offset, an unaligned F32.
  const json = '{"__metadata__":null,"__proto__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"z":{"dtype":"BF16","shape":[0],"data_offsets":[8,8]},"y":{"dtype":"I64","shape":[3,0],"data_offsets":[8,8]}}';
  const header = json.padEnd(Math.ceil((json.length + 1) / 8) * 8, ' ');
  const bytes = handMade(header, 8);
  new Float32Array(bytes.buffer, 0, (8 + header.length) / 4 + 2).set([1.5, -2], (8 + header.length) / 4);
  const f = parseSafetensors(bytes);
  assert.equal(f.metadata, undefined);
  assert.deepEqual(f.names, ['__proto__', 'z', 'y']);
  assert.deepEqual([...f.getFloat32('__proto__')], [1.5, -2]);
  assert.equal(f.getFloat32('__proto__').buffer, bytes.buffer);
  const unaligned = parseSafetensors(new Uint8Array([0, ...bytes]).subarray(1)); // data now at an odd address
  const copy = unaligned.getFloat32('__proto__');
  assert.deepEqual([...copy], [1.5, -2]);
  assert.notEqual(copy.buffer, unaligned.getRaw('__proto__').buffer);
  const meta = parseSafetensors(handMade('{"__metadata__":{"__proto__":"p","1":"one"}}'));
  assert.equal(Object.getPrototypeOf(meta.metadata), Object.prototype);
  assert.deepEqual(Object.entries(meta.metadata!), [['1', 'one'], ['__proto__', 'p']]);
});

test('writeFileAtomic replaces files whole, keeps modes and cleans up after failures', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-atomic-'));
  try {
    const path = join(dir, 'out.bin');
    writeFileAtomic(path, [new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])]);
    assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
    chmodSync(path, 0o600);
    writeFileAtomic(path, 'héllo');
    assert.equal(readFileSync(path, 'utf8'), 'héllo');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await writeFileAtomicAsync(path, new Uint8Array([9]));
    assert.deepEqual([...readFileSync(path)], [9]);
    writeJsonAtomic(join(dir, 'c.json'), { a: [1, 2] });
    assert.equal(readFileSync(join(dir, 'c.json'), 'utf8'), '{\n  "a": [\n    1,\n    2\n  ]\n}\n');
    mkdirSync(join(dir, 'taken'));
    assert.throws(() => writeFileAtomic(join(dir, 'taken'), 'x')); // rename onto a directory fails
    await assert.rejects(writeFileAtomicAsync(join(dir, 'taken'), 'x'));
    assert.throws(() => writeFileAtomic(path, [1, 2] as unknown as Uint8Array[]), TypeError);
    assert.throws(() => writeJsonAtomic(path, undefined), TypeError);
    assert.deepEqual(readdirSync(dir).sort(), ['c.json', 'out.bin', 'taken'], 'no temp files left behind');

    const st = join(dir, 'model.safetensors');
    writeSafetensors(st, [{ name: 'w', dtype: 'BF16', shape: [2], data: new Float32Array([1, 1 + 2 ** -9]) }], { step: '3' });
    const back = readSafetensors(st);
    assert.deepEqual([...back.getFloat32('w')], [1, 1]);
    assert.deepEqual(back.metadata, { step: '3' });
    assert.throws(() => readSafetensors(join(dir, 'c.json')), (e: SafetensorsError) => e.code === 'HEADER_TOO_LARGE' && e.message.includes('c.json'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
