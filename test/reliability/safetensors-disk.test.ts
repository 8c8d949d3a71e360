/**
 * Defects 2 and 4 of issue 19: safetensors files as they are on disk.
 *  - A header padded by an odd number of bytes (allowed by the format) leaves the tensor data
 *    unaligned; a Buffer from fs is a view into a larger ArrayBuffer, so "copying" with
 *    Buffer#slice made another unaligned view and Float32Array threw.
 *  - The header must be read and validated before the tensor data: a bad 1 GiB file costs no
 *    memory, and a file larger than 4 GiB (sparse here) loads tensors that lie beyond 4 GiB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, readSafetensors, serializeSafetensors, SafetensorsError } from '../../src/io/safetensors.ts';
import { tempDir } from '../train/helpers.ts';

/** A valid file whose header is padded with `pad` extra spaces (so the data starts at 8 + n). */
function padded(pad: number): Uint8Array {
  const file = Buffer.concat(serializeSafetensors([
    { name: 'w', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5, 6e-8]) },
    { name: 'h', shape: [3], dtype: 'F16', data: Float32Array.from([1, 0.5, -2]) },
    { name: 'i', shape: [2], dtype: 'I64', data: new BigInt64Array([-3n, 7n]) },
  ], { format: 'pt' }));
  const n = Number(file.readBigUInt64LE(0));
  const header = Buffer.concat([file.subarray(8, 8 + n), Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([prefix, header, file.subarray(8 + n)]);
}

test('issue 19 defect 2: odd-padded header, read from disk as a Buffer, gives the exact values', () => {
  const dir = tempDir('st-align');
  for (const pad of [1, 2, 3, 5]) {
    const path = join(dir, `pad${pad}.safetensors`);
    writeFileSync(path, padded(pad));
    const fromBuffer = parseSafetensors(readFileSync(path), path); // a Buffer, as fs gives it
    const fromFile = readSafetensors(path);
    for (const f of [fromBuffer, fromFile]) {
      assert.deepEqual([...f.getFloat32('w')], [1, -2, 3.5, 4, 5, Math.fround(6e-8)], `pad ${pad}`);
      assert.deepEqual([...f.getFloat32('h')], [1, 0.5, -2]);
      assert.deepEqual([...f.getInt32('i')], [-3, 7]);
      assert.equal(f.getFloat32('w').byteOffset % 4, 0);
    }
  }
});

test('issue 19 defect 4: a bad 1 GiB sparse file is refused from its header, without reading it', () => {
  const dir = tempDir('st-sparse');
  const path = join(dir, 'big.safetensors');
  const fd = openSync(path, 'w');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(16n);
  writeSync(fd, prefix);
  writeSync(fd, Buffer.from('not json at all!'));
  ftruncateSync(fd, 2 ** 30);
  closeSync(fd);
  const before = process.memoryUsage().rss;
  assert.throws(() => readSafetensors(path), (e: unknown) => e instanceof SafetensorsError && e.code === 'BAD_JSON' && e.message.startsWith(path));
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 200 * 2 ** 20, `RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
});

test('issue 19 defect 4: tensors past 4 GiB of a larger (sparse) file load by range', () => {
  const dir = tempDir('st-4g');
  const path = join(dir, 'huge.safetensors');
  const big = 2 ** 32 + 64; // U8 bytes, all zero (a hole in the file)
  const header = JSON.stringify({
    __metadata__: { format: 'pt' },
    hole: { dtype: 'U8', shape: [big], data_offsets: [0, big] },
    tail: { dtype: 'F32', shape: [3], data_offsets: [big, big + 12] },
  });
  const headerBytes = Buffer.from(header + ' '.repeat((8 - (header.length % 8)) % 8));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const dataStart = 8 + headerBytes.length;
  const fd = openSync(path, 'w');
  writeSync(fd, prefix);
  writeSync(fd, headerBytes);
  writeSync(fd, Buffer.from(Float32Array.from([1.5, -2, 3]).buffer), 0, 12, dataStart + big);
  closeSync(fd);
  const before = process.memoryUsage().rss;
  const f = readSafetensors(path);
  assert.deepEqual(f.names, ['hole', 'tail']);
  assert.deepEqual(f.info('hole').shape, [big]);
  assert.deepEqual([...f.getFloat32('tail')], [1.5, -2, 3]);
  assert.ok(process.memoryUsage().rss - before < 200 * 2 ** 20, 'the 4 GiB tensor was not read');
});

test('issue 19 defect 4: a file truncated after its header was read is reported, not read out of bounds', () => {
  const dir = tempDir('st-trunc');
  const path = join(dir, 'm.safetensors');
  writeFileSync(path, padded(0));
  const f = readSafetensors(path);
  const bytes = readFileSync(path);
  writeFileSync(path, bytes.subarray(0, bytes.length - 4));
  assert.throws(() => f.getFloat32('w'), (e: unknown) => e instanceof SafetensorsError && /changed|truncated/.test(e.message) && e.message.includes(path));
});
