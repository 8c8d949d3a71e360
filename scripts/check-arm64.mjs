// The native addon on arm64 (aarch64, NEON through GCC's generic vector extensions), from an x86-64
// machine: cross-compiles it with aarch64-linux-gnu-gcc and, given an arm64 Node, runs the native
// kernel tests (test/backend) under qemu-aarch64 user-mode emulation against that build.
//
//   node scripts/check-arm64.mjs                 compile only (also part of `npm test` when the cross
//                                                compiler is installed: apt-get install gcc-aarch64-linux-gnu)
//   node scripts/check-arm64.mjs --node ROOT/usr/bin/node [test-name-substring …]
//                                                compile, then run the kernel tests under emulation
//
// An arm64 Node for qemu (Debian 12; any arm64 Node ≥ 18.19 with its shared libraries under ROOT works):
//   apt-get install qemu-user gcc-aarch64-linux-gnu && dpkg --add-architecture arm64 && apt-get update
//   apt-get install --download-only -o Dir::Cache::archives=/tmp/arm64-debs nodejs:arm64 libgomp1:arm64
//   for f in /tmp/arm64-debs/*_arm64.deb /tmp/arm64-debs/*_all.deb; do dpkg-deb -x "$f" /opt/arm64root; done
//   node scripts/check-arm64.mjs --node /opt/arm64root/usr/bin/node
// The tests are bundled to JavaScript first (esbuild, the x86-64 binary tsx brings), because tsx
// itself would need esbuild's arm64 binary inside the emulated process; they run one file at a time
// in-process (node:test's runner would start its children without qemu).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

const args = process.argv.slice(2);
const nodeAt = args.indexOf('--node');
const arm64Node = nodeAt >= 0 ? resolve(args[nodeAt + 1] ?? '') : null;
const filters = args.filter((_, i) => nodeAt < 0 || (i !== nodeAt && i !== nodeAt + 1));
const cc = process.env.CC_ARM64 ?? 'aarch64-linux-gnu-gcc';
const dir = mkdtempSync(join(tmpdir(), 'primer-arm64-'));
const addon = join(dir, 'primer_arm64.node');
const done = (code) => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
};

const built = spawnSync(process.execPath, ['scripts/build-variant.mjs', 'armv8-a', addon], {
  stdio: 'inherit',
  env: { ...process.env, CC: cc },
});
if (built.error || built.status !== 0) {
  console.error(`arm64: the native addon did not compile with ${cc}${built.error ? ` (${built.error.message})` : ''}`);
  done(1);
}
// ELF e_machine (bytes 18–19, little-endian) 183 = EM_AARCH64: a cross-compiler on PATH under that name could still target something else.
const machine = readFileSync(addon).readUInt16LE(18);
if (machine !== 183) {
  console.error(`arm64: ${cc} produced an ELF for machine ${machine}, not AArch64 (183)`);
  done(1);
}
if (!arm64Node) done(0);

const { build } = await import('esbuild');
const tests = readdirSync(join('test', 'backend'))
  .filter((f) => f.endsWith('.test.ts') && (filters.length === 0 || filters.some((s) => f.includes(s))))
  .sort();
// The arm64 Node's shared libraries: ROOT/usr/bin/node → ROOT.
const root = process.env.QEMU_LD_PREFIX ?? dirname(dirname(dirname(arm64Node)));
let failed = 0;
for (const file of tests) {
  const bundle = join(dir, file.replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [join('test', 'backend', file)], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'error',
    banner: { js: "import { createRequire as primerCreateRequire } from 'node:module'; const require = primerCreateRequire(import.meta.url);" },
  });
  const t0 = Date.now();
  const r = spawnSync('qemu-aarch64', [arm64Node, '--expose-gc', bundle], {
    encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, QEMU_LD_PREFIX: root, PRIMER_NATIVE_PATH: addon },
  });
  const count = (what) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(r.stdout ?? '')?.[1] ?? NaN);
  const pass = count('pass'), fail = count('fail');
  const ok = !r.error && r.status === 0 && fail === 0 && pass > 0;
  console.log(`${ok ? 'ok' : 'FAIL'} ${file}: ${pass} passed, ${fail} failed (${((Date.now() - t0) / 1000).toFixed(0)} s under qemu)`);
  if (!ok) {
    failed++;
    console.log(r.error ? String(r.error) : `${(r.stdout ?? '').split('\n').filter((l) => /^\s*not ok|Error|expected|actual/.test(l)).slice(0, 40).join('\n')}\n${r.stderr ?? ''}`);
  }
}
console.log(failed ? `arm64: ${failed} of ${tests.length} test files failed` : `arm64: all ${tests.length} native kernel test files passed under qemu-aarch64`);
done(failed ? 1 : 0);
