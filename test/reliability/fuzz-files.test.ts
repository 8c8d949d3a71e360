/**
 * Fuzzing of files as they come from disk (issue 19): safetensors files with randomly padded
 * headers (odd amounts too, so tensor data is unaligned) and random truncations, read both with
 * readSafetensors (header first, tensors by range) and from a Buffer; and gzip corpora with
 * random truncations and flipped bytes. Valid files must give exactly the written values; broken
 * ones must fail with the module's typed error naming the file — never a RangeError, an
 * out-of-bounds read or a raw zlib error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { parseSafetensors, readSafetensors, serializeSafetensors, SafetensorsError, type SafetensorsDtype } from '../../src/io/safetensors.ts';
import { CorpusError, readCorpus } from '../../src/data/corpus.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { tempDir } from '../train/helpers.ts';

const random = seededRandom(0x5afe19);
const int = (n: number) => Math.floor(random() * n);

/** A random valid file and the fp32 values each tensor must read back as. */
function randomFile(): { bytes: Buffer; values: Map<string, number[]> } {
  const dtypes: SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U8', 'I16'];
  const values = new Map<string, number[]>();
  const tensors = Array.from({ length: 1 + int(4) }, (_, i) => {
    const dtype = dtypes[int(dtypes.length)]!;
    const shape = Array.from({ length: int(3) }, () => 1 + int(4));
    const count = shape.reduce((a, d) => a * d, 1);
    // Small integers are exact in every dtype listed, so the expected values need no rounding model.
    const v = Array.from({ length: count }, () => int(200) - (dtype === 'U8' ? 0 : 100));
    values.set(`t${i}`, v);
    const data = dtype === 'I64' ? BigInt64Array.from(v.map(BigInt)) : dtype === 'I32' ? Int32Array.from(v)
      : dtype === 'U8' ? Uint8Array.from(v) : dtype === 'I16' ? Int16Array.from(v) : Float32Array.from(v);
    return { name: `t${i}`, dtype, shape, data };
  });
  return { bytes: Buffer.concat(serializeSafetensors(tensors, { format: 'pt' }, { order: random() < 0.5 ? 'canonical' : 'given' })), values };
}

/** Re-pads the header with `pad` extra spaces: still valid, data now at 8 + n + pad (any alignment). */
function pad(file: Buffer, extra: number): Buffer {
  const n = Number(file.readBigUInt64LE(0));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(n + extra));
  return Buffer.concat([prefix, file.subarray(8, 8 + n), Buffer.alloc(extra, 0x20), file.subarray(8 + n)]);
}

test('fuzz: 300 randomly padded (odd-aligned) and truncated safetensors files read from disk', () => {
  const dir = tempDir('fuzz-st');
  const counts = { valid: 0, refused: 0 };
  for (let i = 0; i < 300; i++) {
    const { bytes, values } = randomFile();
    const padded = pad(bytes, int(16));
    const truncated = i % 3 === 2;
    const content = truncated ? padded.subarray(0, int(padded.length)) : padded;
    const path = join(dir, `f${i % 7}.safetensors`);
    writeFileSync(path, content);
    for (const read of [() => readSafetensors(path), () => parseSafetensors(readFileSync(path), path)]) {
      try {
        const f = read();
        for (const [name, want] of values) {
          const info = f.info(name);
          const got = ['I32', 'I64', 'U8', 'I16'].includes(info.dtype) ? [...f.getInt32(name)] : [...f.getFloat32(name)];
          assert.deepEqual(got, want, `case ${i}: ${name} (${info.dtype})`);
        }
        assert.ok(!truncated || content.length === padded.length, `case ${i}: a truncated file was accepted`);
        counts.valid++;
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `case ${i}: ${(e as Error).stack}`);
        assert.ok(truncated, `case ${i}: a valid file was refused: ${e.message}`);
        assert.ok(e.message.startsWith(path), e.message);
        counts.refused++;
      }
    }
  }
  assert.equal(counts.valid, 400);
  assert.equal(counts.refused, 200);
});

test('fuzz: 60 randomly damaged .gz corpora either read or fail with a CorpusError naming the file', async () => {
  const dir = tempDir('fuzz-gz');
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'ran', 'home'];
  const text = Array.from({ length: 3000 }, () => words[int(words.length)]).join(' ');
  const gz = gzipSync(text);
  const counts = { whole: 0, refused: 0 };
  for (let i = 0; i < 60; i++) {
    const damaged = Buffer.from(gz);
    if (i % 2 === 0) for (let k = 0; k < 1 + int(4); k++) damaged[int(damaged.length)] ^= 1 + int(255);
    const content = i % 2 === 1 ? damaged.subarray(0, int(damaged.length)) : damaged;
    const path = join(dir, `c${i}.${i % 4 < 2 ? 'txt' : 'jsonl'}.gz`);
    writeFileSync(path, i % 4 < 2 ? content : gzipSync(JSON.stringify({ text }) + '\n').subarray(0, int(content.length)));
    try {
      let read = '';
      for await (const c of readCorpus([path], { warn: () => {} })) read += c.text;
      assert.ok(read.length > 0);
      counts.whole++;
    } catch (e) {
      assert.ok(e instanceof CorpusError, `case ${i}: ${(e as Error).stack}`);
      assert.ok(e.message.includes(path), e.message);
      counts.refused++;
    }
  }
  assert.ok(counts.refused >= 30, JSON.stringify(counts));
});
