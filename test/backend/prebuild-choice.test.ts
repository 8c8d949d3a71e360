// Which native addon loads on which CPU (src/backend/native.ts choosePrebuild): a from-source build is
// always kept; the x86-64-v3 prebuild is swapped for the AVX-512 + BF16 one only where the CPU has every
// feature that build was compiled for and the file is there, and refused on a CPU without x86-64-v3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, sep } from 'node:path';
import { choosePrebuild } from '../../src/backend/native.ts';

const pkg = join(sep, 'app', 'node_modules', 'primer');
const v3 = join(pkg, 'prebuilds', 'linux-x64', 'node.napi.node');
const wide = join(pkg, 'prebuilds', 'linux-x64-avx512bf16', 'node.napi.node');
const fromSource = join(pkg, 'build', 'Release', 'primer_native.node');
const V3 = ['fpu', 'sse2', 'avx', 'avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm'];
const ZEN4 = [...V3, 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl', 'avx512_bf16', 'avx512_vnni'];
const both = (p: string) => p === v3 || p === wide;

test('a from-source build is kept on any CPU', () => {
  assert.equal(choosePrebuild(fromSource, new Set(ZEN4), both), fromSource);
  assert.equal(choosePrebuild(fromSource, new Set(), both), fromSource);
});

test('Zen 4 / Zen 5 flags load the AVX-512 BF16 prebuild when it is there', () => {
  assert.equal(choosePrebuild(v3, new Set(ZEN4), both), wide);
  assert.equal(choosePrebuild(v3, new Set(ZEN4), (p) => p === v3), v3, 'an older package without it keeps the x86-64-v3 prebuild');
});

test('AVX-512 without BF16 (Skylake-X, Ice Lake) and AVX2-only CPUs keep the x86-64-v3 prebuild', () => {
  assert.equal(choosePrebuild(v3, new Set(ZEN4.filter((f) => f !== 'avx512_bf16')), both), v3);
  assert.equal(choosePrebuild(v3, new Set(ZEN4.filter((f) => f !== 'avx512vl')), both), v3);
  assert.equal(choosePrebuild(v3, new Set(V3), both), v3);
});

test('a CPU without x86-64-v3 gets no prebuild (the JavaScript backend instead of a crash)', () => {
  assert.equal(choosePrebuild(v3, new Set(V3.filter((f) => f !== 'avx2')), both), null);
  assert.equal(choosePrebuild(v3, new Set(['fpu', 'sse2', 'avx512f', 'avx512_bf16']), both), null);
});
