/**
 * The web UI in a real browser: playwright-core driving Debian's chromium (.ci/run installs it with
 * apt-get). Missing chromium is a test failure, not a skip. Screenshots go to tmp/test-artifacts/
 * (gitignored).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildFixtures } from './fixtures.ts';
import { createServer, type PrimerServer } from '../../src/serve/server.ts';
import { DEFAULT_CHAT_TEMPLATE, writeChatTemplate } from '../../src/adapt/chat-template.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'tmp', 'test-artifacts');

let server: PrimerServer;
let base: string;
let context: BrowserContext;
let page: Page;
let runDir: string;
let profile: string;
let chatDir: string;

function metricsLines(from: number, to: number): string {
  let s = '';
  for (let step = from; step <= to; step++) {
    s += JSON.stringify({ step, loss: 6 - Math.log(step), lr: 1e-3 * Math.min(1, step / 3), grad_norm: 1 / step, tokens_per_s: 9000 + step, elapsed_s: step }) + '\n';
    if (step % 4 === 0) s += JSON.stringify({ step, val_loss: 6.2 - Math.log(step), val_ppl: Math.exp(6.2 - Math.log(step)) }) + '\n';
  }
  return s;
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\``);
  const fx = buildFixtures();
  runDir = mkdtempSync(join(tmpdir(), 'primer-ui-run-'));
  writeFileSync(join(runDir, 'metrics.jsonl'), metricsLines(1, 8) + JSON.stringify({ step: 8, samples: [{ prompt: 'Once', text: ' upon a time' }] }) + '\n');
  // A copy of the GPT with a chat template: the UI gains a chat tab for it.
  chatDir = join(mkdtempSync(join(tmpdir(), 'primer-ui-chat-')), 'tiny-chat');
  cpSync(fx.gpt, chatDir, { recursive: true });
  writeChatTemplate(chatDir, DEFAULT_CHAT_TEMPLATE);
  server = await createServer({ models: [fx.gpt, fx.bert, fx.classifier, chatDir], runDir, workers: 1 });
  base = await server.app.listen({ port: 0, host: '127.0.0.1' });
  profile = mkdtempSync(join(tmpdir(), 'primer-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 900 },
  });
  page = context.pages()[0] ?? await context.newPage();
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await context?.close();
  await server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (runDir) rmSync(runDir, { recursive: true, force: true });
  if (chatDir) rmSync(join(chatDir, '..'), { recursive: true, force: true });
});

/** Whether a canvas has drawn anything other than one flat colour. */
async function canvasHasInk(selector: string): Promise<boolean> {
  return page.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set<number>();
    for (let i = 0; i < data.length && colours.size < 3; i += 4 * 7) colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]! | (data[i + 3]! << 24));
    return colours.size >= 2;
  });
}

test('playground: streams a generation into the page', async () => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/ui/`);
  await page.waitForFunction(() => document.getElementById('models')!.textContent!.includes('tiny-gpt'));
  await page.fill('#gen-max', '24');
  // A fixed seed: with a random one, about 1 draw in 1000 from this random-weight model streams its
  // whole text in one chunk (an early end-of-text after bytes that only form characters together).
  await page.fill('#gen-seed', '1');
  const run = async () => {
    await page.click('#gen-run');
    await page.waitForFunction(() => document.getElementById('gen-status')!.textContent!.startsWith('done'), undefined, { timeout: 30_000 });
    return { status: (await page.textContent('#gen-status'))!, text: (await page.textContent('#gen-output .completion'))! };
  };
  const first = await run();
  const status = first.status;
  const chunks = Number(/(\d+) chunks/.exec(status)![1]);
  assert.ok(chunks >= 2, `streamed in ${chunks} chunks: ${status}`);
  assert.match(status, /done \((length|stop)\)/);
  assert.ok(first.text.length > 0);
  assert.equal((await run()).text, first.text, 'the same seed gives the same text');
  assert.equal(await page.textContent('#gen-output .prompt'), 'Once upon a time');
  assert.deepEqual(errors, []);
  await page.screenshot({ path: join(ARTIFACTS, 'serve-playground-generate.png') });
});

test('playground: fill-mask and classification draw probability bars', async () => {
  await page.click('#mask-run');
  await page.waitForSelector('#mask-results .bar:nth-child(5)');
  const widths = await page.$$eval('#mask-results .fill', (els) => els.map((e) => parseFloat((e as HTMLElement).style.width)));
  assert.equal(widths.length, 5);
  for (let i = 1; i < widths.length; i++) assert.ok(widths[i - 1]! >= widths[i]!, 'sorted by probability');
  await page.click('#cls-run');
  await page.waitForSelector('#cls-results .bar:nth-child(2)');
  const labels = await page.$$eval('#cls-results .bar span:first-child', (els) => els.map((e) => e.textContent));
  assert.deepEqual([...labels].sort(), ['negative', 'positive']);
  await page.screenshot({ path: join(ARTIFACTS, 'serve-playground.png'), fullPage: true });
});

test('dashboard: charts render from metrics.jsonl and follow new lines live', async () => {
  await page.goto(`${base}/ui/#dashboard`);
  await page.waitForFunction(() => /8 steps logged/.test(document.getElementById('dash-status')!.textContent!));
  assert.equal(await page.locator('#dash-charts .uplot').count(), 4);
  assert.ok(await canvasHasInk('#dash-charts .chart[data-metric="loss"] canvas'), 'the loss chart drew a curve');
  assert.match((await page.textContent('#dash-evals'))!, /val_ppl/);
  assert.match((await page.textContent('#dash-samples'))!, /\[step 8\] Once▸ upon a time/);
  appendFileSync(join(runDir, 'metrics.jsonl'), metricsLines(9, 12));
  await page.waitForFunction(() => /12 steps logged, last step 12/.test(document.getElementById('dash-status')!.textContent!), undefined, { timeout: 15_000 });
  await page.screenshot({ path: join(ARTIFACTS, 'serve-dashboard.png'), fullPage: true });
});

test('attention view: draws a heatmap per layer and head', async () => {
  await page.goto(`${base}/ui/#attention`);
  await page.click('#attn-run');
  await page.waitForFunction(() => /2 layers × 2 heads/.test(document.getElementById('attn-status')!.textContent!));
  assert.ok(await canvasHasInk('#attn-canvas'));
  await page.selectOption('#attn-layer', '1');
  await page.selectOption('#attn-head', '1');
  assert.ok(await canvasHasInk('#attn-canvas'));
  await page.screenshot({ path: join(ARTIFACTS, 'serve-attention.png') });
});

test('chat tab: a model with a chat template gets a chat that streams its reply', async () => {
  await page.goto(`${base}/ui/#chat`);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.isVisible('nav a[data-tab="chat"]'), true);
  assert.match((await page.textContent('#chat-model'))!, /tiny-chat/);
  await page.fill('#chat-input', 'the cat sat on');
  await page.fill('#chat-max', '12');
  await page.click('#chat-send');
  await page.waitForFunction(() => /^done \((length|stop)\)$/.test(document.getElementById('chat-status')!.textContent!), undefined, { timeout: 30_000 });
  assert.equal(await page.textContent('#chat-log .msg.user'), 'the cat sat on');
  assert.equal(await page.locator('#chat-log .msg.assistant').count(), 1);
});

test('the UI shows only what the served models can answer, and follows a served run directory', async () => {
  const fx = buildFixtures();
  // A GPT model directory that is also a training run (metrics.jsonl), served without --run.
  const runModel = join(mkdtempSync(join(tmpdir(), 'primer-ui-runmodel-')), 'gpt-run');
  cpSync(fx.gpt, runModel, { recursive: true });
  writeFileSync(join(runModel, 'metrics.jsonl'), metricsLines(1, 4));
  const own = await createServer({ models: [runModel], workers: 1 });
  const url = await own.app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await page.goto(`${url}/ui/`);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.isVisible('#gen-run'), true);
    assert.equal(await page.isVisible('#mask-run'), false, 'no BERT: no fill-mask panel');
    assert.equal(await page.isVisible('#cls-run'), false, 'no classifier: no classify panel');
    assert.equal(await page.isVisible('nav a[data-tab="chat"]'), false, 'no chat template: no chat tab');
    assert.equal(await page.isVisible('nav a[data-tab="dashboard"]'), true);
    await page.click('nav a[data-tab="dashboard"]');
    await page.waitForFunction(() => /4 steps logged/.test(document.getElementById('dash-status')!.textContent!));
  } finally {
    await own.close();
    rmSync(join(runModel, '..'), { recursive: true, force: true });
  }
});
