// Runs every test/**/*.test.ts with Node's built-in test runner (TypeScript through tsx), then the
// native-kernel tests again against portable builds (AVX2-only and SSE2-only) of the addon, and
// cross-compiles it for arm64 where aarch64-linux-gnu-gcc is installed.
// Arguments filter files by substring: `node scripts/run-tests.mjs tokenizer` (skips the variants).
import { readdirSync, statSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const all = walk('test').sort();
const files = all.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const run = (list, env = {}) =>
  spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--test', '--test-reporter=spec', ...list], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  }).status ?? 1;

let status = run(files);
if (filters.length === 0 && process.arch === 'x64') {
  const dir = mkdtempSync(join(tmpdir(), 'primer-variants-'));
  const backendTests = all.filter((f) => f.startsWith(join('test', 'backend')));
  for (const march of ['x86-64-v3', 'x86-64']) {
    const out = join(dir, `primer_${march}.node`);
    const built = spawnSync(process.execPath, ['scripts/build-variant.mjs', march, out], { stdio: 'inherit' }).status;
    console.log(`\n# native kernel tests with the -march=${march} build`);
    if (built !== 0) status = 1;
    else if (run(backendTests, { PRIMER_NATIVE_PATH: out }) !== 0) status = 1;
  }
  // arm64 (the generic vector code on NEON): the addon must cross-compile; the kernel tests themselves
  // run under qemu with `node scripts/check-arm64.mjs --node …` (see that script).
  if (spawnSync('aarch64-linux-gnu-gcc', ['--version']).status === 0) {
    console.log('\n# native addon cross-compiled for arm64 (aarch64-linux-gnu-gcc -march=armv8-a)');
    if (spawnSync(process.execPath, ['scripts/check-arm64.mjs'], { stdio: 'inherit' }).status !== 0) status = 1;
  } else {
    console.log('\n# arm64 cross-compile not checked here: aarch64-linux-gnu-gcc is not installed (.ci/run installs it)');
  }
}
process.exit(status);
