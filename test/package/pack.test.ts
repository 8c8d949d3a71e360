// The package as a user gets it: `npm pack` (whose prepack emits dist/ and the linux-x64 prebuilds),
// the tarball installed into an empty project from npm's local cache, the API imported
// by plain Node from a .mjs file (no tsx), 5 training steps of a tiny model, `npx primer --help`, and
// the shipped .d.ts files checked by TypeScript from a consumer's .ts file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'primer-pack-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

// npm passes its settings to scripts as npm_* variables; a nested npm must not inherit them (under
// `npm test` they would point it at this checkout as the project).
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: { ...env, npm_config_update_notifier: 'false' }, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A consumer's package-lock.json: the tarball plus the non-development packages of this checkout's lock. */
function consumerLock(tarball: string, bytes: Buffer): unknown {
  const ours = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as Record<string, unknown>;
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { primer: `file:${tarball}` } },
    'node_modules/primer': {
      version: pkg.version, resolved: `file:${tarball}`, integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`, hasInstallScript: true,
      license: pkg.license, dependencies: pkg.dependencies, optionalDependencies: pkg.optionalDependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(ours.packages)) {
    if (path.startsWith('node_modules/') && !entry.dev && !entry.devOptional) packages[path] = entry;
  }
  return { name: 'app', lockfileVersion: 3, requires: true, packages };
}

test('npm pack → install into an empty project → import, train 5 steps, npx primer --help', () => {
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], repo).stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = new Set(packed[0]!.files.map((f) => f.path));
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/index.js', 'dist/serve/worker.js', 'dist/serve/ui/index.html', 'bin/primer.js',
    'binding.gyp', 'native/addon.c', 'scripts/install-native.mjs']) {
    assert.ok(files.has(f), `the tarball lacks ${f}`);
  }
  if (process.platform === 'linux' && process.arch === 'x64') {
    assert.ok(files.has('prebuilds/linux-x64/node.napi.node'), 'no linux-x64 prebuild');
    assert.ok(files.has('prebuilds/linux-x64-avx512bf16/node.napi.node'), 'no linux-x64-avx512bf16 prebuild');
  }
  assert.ok(![...files].some((f) => f.startsWith('src/') || f.startsWith('test/')), 'sources or tests were packed');

  const app = join(work, 'app');
  mkdirSync(app);
  const tarball = packed[0]!.filename;
  renameSync(join(work, tarball), join(app, tarball));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { primer: `file:${tarball}` } }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify(consumerLock(tarball, readFileSync(join(app, tarball)))));
  // The lockfile pins Primer's dependencies to the versions this checkout installed, which are in npm's
  // cache after `npm ci`: nothing is downloaded when the cache is warm. The optional Chinese corpus
  // (350 MB) is left out.
  run('npm', ['ci', '--prefer-offline', '--omit=optional', '--no-audit', '--no-fund'], app);
  assert.ok(!existsSync(join(app, 'node_modules', 'primer', 'src')));
  assert.ok(!existsSync(join(app, 'node_modules', 'tsx')), 'tsx is a development dependency only');

  const corpus = join(app, 'corpus.txt');
  writeFileSync(corpus, 'The cat sat on the mat. The dog sat on the log. A bird sang in the tree.\n'.repeat(200));
  writeFileSync(join(app, 'train.mjs'), `
import { pretrain, GPT, finetune, serve, backend, loadModelDir } from 'primer';
for (const [name, f] of Object.entries({ GPT, finetune, serve })) if (typeof f !== 'function') throw new Error(name + ' is not exported');
const r = await pretrain({ corpus: [${JSON.stringify(corpus)}], out: ${JSON.stringify(join(app, 'run'))}, vocabSize: 300, layers: 1, dims: 32, heads: 2,
  blockSize: 16, batchSize: 4, steps: 5, warmupSteps: 1, evalEvery: 5, evalBatches: 1, checkpointEvery: 5, samplePrompts: [], log: () => {}, progress: false });
const m = loadModelDir(r.runDir);
console.log(JSON.stringify({ backend: backend().name, steps: r.training.step, loss: r.training.trainLoss, status: r.training.status, kind: m.kind }));
`);
  const out = JSON.parse(run(process.execPath, ['train.mjs'], app).stdout.trim().split('\n').at(-1)!) as { backend: string; steps: number; loss: number; kind: string };
  assert.equal(out.steps, 5);
  assert.equal(out.kind, 'gpt2');
  assert.ok(Number.isFinite(out.loss) && out.loss > 0 && out.loss < 7, `loss ${out.loss}`);
  // The prebuild (or a from-source build) was found: the native backend, not the JavaScript fallback.
  if (process.platform === 'linux' && process.arch === 'x64') assert.equal(out.backend, 'native');

  const help = run('npx', ['--offline', 'primer', '--help'], app);
  assert.match(help.stdout, /^Usage: primer/m);
  assert.match(help.stdout, /pretrain/);
  assert.equal(help.stderr, '');

  // Types: a consumer's TypeScript resolves 'primer' through the exports map to the emitted .d.ts.
  writeFileSync(join(app, 'use.ts'), `
import { pretrain, GPT, type PretrainOptions, type FinetuneOptions } from 'primer';
const o: PretrainOptions = { steps: 5 };
const f: Partial<FinetuneOptions> = {};
export const p: Promise<{ runDir: string }> = pretrain(o);
export const model: GPT = new GPT({ vocab_size: 10, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 } as never);
export { f };
`);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], typeRoots: [join(repo, 'node_modules', '@types')] }, files: ['use.ts'] }));
  run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
  assert.match(readFileSync(join(app, 'node_modules', 'primer', 'dist', 'index.d.ts'), 'utf8'), /from '\.\/train\/pretrain\.js'/);
});
