import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildFixtures } from './fixtures.ts';
import { parseSse } from './helpers.ts';

const MAIN = fileURLToPath(new URL('./serve-main.ts', import.meta.url));

function startCli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed; stderr: ${stderr}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`exited early; stderr: ${stderr}`)); });
  });
  url.catch(() => undefined); // awaited only by the tests that expect a running server
  // The server listens while the workers load the models (/health 503); `ready` waits for 200.
  const ready = url.then(async (base) => {
    for (;;) {
      if ((await fetch(`${base}/health`)).status === 200) return base;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  ready.catch(() => undefined);
  return { child, exited, url, ready, output: () => ({ stdout, stderr }) };
}

test('serve: a nonexistent model directory fails at startup with one clear line', async () => {
  const run = startCli(['serve', '--model', '/nonexistent/primer-model', '--port', '0']);
  assert.equal(await run.exited, 1);
  assert.match(run.output().stderr, /^primer: error: model directory \/nonexistent\/primer-model does not exist/m);
  assert.doesNotMatch(run.output().stderr, /\n\s+at /, 'no stack trace');
});

test('serve: SIGTERM lets a running streamed request finish, then exits 0', async () => {
  const fx = buildFixtures();
  const run = startCli(['serve', '--model', fx.gpt, '--port', '0', '--workers', '1']);
  const base = await run.ready;
  assert.match(run.output().stdout, /primer serve: http:\/\/127\.0\.0\.1:\d+\/ui\/ {2}\(models: tiny-gpt \[gpt2\]\)/);
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'the cat', max_tokens: 300, temperature: 0, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = await reader.read(); // the request is running on the worker now
  run.child.kill('SIGTERM');
  let text = new TextDecoder().decode(first.value);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const parsed = parseSse(text);
  assert.equal(parsed.done, true);
  assert.deepEqual(parsed.finish, ['length']);
  assert.equal(await run.exited, 0);
  assert.match(run.output().stderr, /SIGTERM, finishing running requests/);
});

test('dashboard: serves the metrics of a run directory', async () => {
  const fx = buildFixtures();
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const runDir = `${fx.root}/run-cli`;
  mkdirSync(runDir, { recursive: true });
  writeFileSync(`${runDir}/metrics.jsonl`, '{"step":1,"loss":5.5,"lr":0.001}\n{"step":2,"loss":5.1,"lr":0.002}\n{"step":3,"lo');
  const run = startCli(['dashboard', '--run', runDir, '--port', '0']);
  try {
    const base = await run.url;
    assert.match(run.output().stdout, /\/ui\/#dashboard/);
    const first = await (await fetch(`${base}/v1/run/metrics`)).json();
    assert.deepEqual(first.records, [{ step: 1, loss: 5.5, lr: 0.001 }, { step: 2, loss: 5.1, lr: 0.002 }]);
    const again = await (await fetch(`${base}/v1/run/metrics?offset=${first.offset}`)).json();
    assert.deepEqual(again.records, [], 'the partial last line waits');
    const bad = await fetch(`${base}/v1/run/metrics?offset=-3`);
    assert.equal(bad.status, 400);
    assert.doesNotMatch(run.output().stderr, /no metrics\.jsonl/);
  } finally {
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0);
  }
  // A directory without metrics.jsonl (a mistyped path, a run not started yet) is followed, with a note.
  const empty = `${fx.root}/run-empty`;
  mkdirSync(empty, { recursive: true });
  const quiet = startCli(['dashboard', '--run', empty, '--port', '0']);
  try {
    await quiet.url;
    assert.match(quiet.output().stderr, new RegExp(`primer dashboard: note: ${empty} has no metrics\\.jsonl yet; the charts fill in once a run writes it`));
  } finally {
    quiet.child.kill('SIGTERM');
    assert.equal(await quiet.exited, 0);
  }
});

test('serve: --port 70000, a port in use, a bad --host and an empty --api-key exit 1 with one line, before loading models', async () => {
  const fx = buildFixtures();
  const bad = startCli(['serve', '--model', fx.gpt, '--port', '70000']);
  assert.equal(await bad.exited, 1);
  assert.deepEqual(bad.output().stderr.trim().split('\n'), ['primer: error: --port 70000: expected a port number from 0 to 65535']);
  const host = startCli(['serve', '--model', fx.gpt, '--host', '999.1.1.1']);
  assert.equal(await host.exited, 1);
  assert.match(host.output().stderr.trim(), /^primer: error: --host 999\.1\.1\.1: not an IP address or a name this machine resolves \([A-Z_]+\)$/);
  const emptyKey = startCli(['serve', '--model', fx.gpt, '--port', '0', '--api-key', '']);
  assert.equal(await emptyKey.exited, 1);
  assert.deepEqual(emptyKey.output().stderr.trim().split('\n'), ['primer: error: --api-key is empty: give the key clients must send, or leave the option out for an open server']);
  const { createServer: netServer } = await import('node:net');
  const blocker = netServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const busy = startCli(['serve', '--model', fx.gpt, '--port', String(port)]);
    assert.equal(await busy.exited, 1);
    assert.deepEqual(busy.output().stderr.trim().split('\n'), [`primer: error: cannot listen on 127.0.0.1:${port}: the address is already in use (another server on this port?)`]);
    assert.equal(busy.output().stdout, '');
  } finally {
    blocker.close();
  }
});

test('serve: SIGTERM with open streams exits within the grace period, cutting them', async () => {
  const fx = buildFixtures();
  const run = startCli(['serve', '--model', fx.gpt, '--port', '0', '--workers', '1', '--grace', '1', '--max-tokens', '100000']);
  const base = await run.ready;
  const streams = await Promise.all([0, 1, 2].map(async () => {
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'the cat', max_tokens: 100000, temperature: 0, stream: true }), // greedy: this prompt never hits end-of-text
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    return reader;
  }));
  run.child.kill('SIGTERM');
  const ends = await Promise.all(streams.map(async (reader) => {
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += new TextDecoder().decode(value);
    }
  }));
  for (const text of ends) assert.match(text, /"message":"server is shutting down: the request was cut after the grace period"/);
  assert.equal(await run.exited, 0);
});

test('serve: beyond loopback without a key a loud warning; the banner shows the bound address', async () => {
  const fx = buildFixtures();
  const run = startCli(['serve', '--model', fx.gpt, '--port', '0', '--host', '0.0.0.0']);
  try {
    for (let i = 0; i < 600 && !/primer serve: http/.test(run.output().stdout); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(run.output().stdout, /^primer serve: http:\/\/0\.0\.0\.0:\d+\/ui\//);
    assert.match(run.output().stderr, /WARNING: listening on 0\.0\.0\.0, beyond this machine, with no API key/);
  } finally {
    run.child.kill('SIGTERM');
    await run.exited;
  }
});
