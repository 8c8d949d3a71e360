// The package build, run by `npm pack`/`npm publish` (prepack): src/ → dist/ as JavaScript + .d.ts,
// the dashboard's static files beside them, and a portable linux-x64 prebuild of the native addon.
// Its own output goes to stderr: `npm pack --json` prints the tarball's description on stdout.
// Usage: node scripts/build-package.mjs [--no-prebuild]
import { rmSync, cpSync, readdirSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });

const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: ['ignore', 2, 2] });
if (tsc.status !== 0) {
  console.error('build-package: tsc failed');
  process.exit(1);
}

// tsc rewrites the ".ts" of relative imports in the emitted JavaScript but not in the .d.ts files;
// a consumer's TypeScript would then look for sources that are not shipped.
const relativeTs = /((?:from\s+|import\(\s*)['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;
const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
for (const file of walk(dist).filter((f) => f.endsWith('.d.ts'))) {
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(relativeTs, '$1$2.js$3');
  if (fixed !== text) writeFileSync(file, fixed);
}
cpSync(join(root, 'src', 'serve', 'ui'), join(dist, 'serve', 'ui'), { recursive: true });

// Prebuilds for linux-x64, so that an install from the registry needs no compiler: x86-64-v3 (AVX2 + FMA,
// not -march=native, so that it runs on any x86-64 CPU since about 2015 and not only on the machine that
// packed it), found by node-gyp-build where scripts/install-native.mjs saw a CPU that runs it (else it
// compiles from source); and x86-64-v4 with AVX512-BF16 (Zen 4/5: AVX-512 micro-kernels, VDPBF16PS),
// which src/backend/native.ts loads instead where the CPU has those features.
if (!process.argv.includes('--no-prebuild') && process.platform === 'linux' && process.arch === 'x64') {
  rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
  for (const [dir, flags] of [['linux-x64', ['x86-64-v3']], ['linux-x64-avx512bf16', ['x86-64-v4', '-mavx512bf16']]]) {
    mkdirSync(join(root, 'prebuilds', dir), { recursive: true });
    const out = join(root, 'prebuilds', dir, 'node.napi.node');
    const built = spawnSync(process.execPath, [join(root, 'scripts', 'build-variant.mjs'), flags[0], out, ...flags.slice(1)], { stdio: ['ignore', 2, 2], cwd: root });
    if (built.status !== 0) {
      console.error(`build-package: the ${dir} prebuild failed`);
      process.exit(1);
    }
  }
}
