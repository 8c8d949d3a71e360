// Every package a user installs with Primer (the lock's non-development entries) must accept the
// oldest Node that package.json's engines allow: otherwise npm prints EBADENGINE on a supported Node
// (as fastify → light-my-request@6.8 → cookie@2, which wants Node ≥ 22, did) and engine-strict installs fail.
// package.json therefore lists light-my-request@6.6.0 (cookie@1) itself: npm hoists it and fastify's
// ^6.0.0 takes it, for a user's install too (an npm "overrides" entry would apply to this checkout only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';

const repo = join(import.meta.dirname, '..', '..');
const readJson = (name: string) => JSON.parse(readFileSync(join(repo, name), 'utf8'));

interface LockEntry { version?: string; dev?: boolean; devOptional?: boolean; engines?: { node?: string } }

test('runtime dependencies accept the oldest supported Node', () => {
  const range = (readJson('package.json') as { engines: { node: string } }).engines.node;
  const oldest = semver.minVersion(range);
  assert.ok(oldest, `package.json engines.node "${range}" has no minimum`);
  const lock = readJson('package-lock.json') as { packages: Record<string, LockEntry> };
  const runtime = Object.entries(lock.packages).filter(([path, e]) => path.startsWith('node_modules/') && !e.dev && !e.devOptional);
  assert.ok(runtime.some(([path]) => path === 'node_modules/fastify'), 'the lock lists fastify as a runtime dependency');
  const refused = runtime
    .filter(([, e]) => e.engines?.node && !semver.satisfies(oldest, e.engines.node))
    .map(([path, e]) => `${path.replace(/^.*node_modules\//, '')}@${e.version} wants node ${e.engines!.node}`);
  assert.deepEqual(refused, [], `Node ${oldest.version} (package.json: ${range}) is refused by`);
});

test('fastify.inject works with the pinned light-my-request (cookies included)', async () => {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  app.get('/', async (req) => ({ cookie: req.headers.cookie }));
  const res = await app.inject({ method: 'GET', url: '/', cookies: { a: '1', b: 'x y' } });
  assert.deepEqual(res.json(), { cookie: 'a=1; b=x%20y' });
  await app.close();
});
