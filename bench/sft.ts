/**
 * `npm run bench:sft -- --base DIR`: the instruction-tuning demo, measured. From a pre-trained GPT
 * (e.g. the default `primer pretrain` mini model) it runs SFT on the built-in instruction set
 * (builtin:sentiment: "Is this review positive or negative? …" → "positive"/"negative") twice — full
 * fine-tuning and LoRA — and reports for each: trainable parameters, steps, wall time, held-out
 * response perplexity before → after (exp of the mean loss over answer tokens only), and held-out
 * answer accuracy by greedy chat replies (the reply starts with the right word). Then it chats with
 * the tuned models the way a user does: `primer chat` with the questions piped into stdin.
 *
 * Options: --base DIR (required), --out DIR (default tmp/sft-bench), --steps N (default 450), --lr X
 * (full fine-tuning, default 3e-4), --lora-lr X (default 2e-3),
 * --eval N (held-out conversations answered by generation, default 200), --no-report, --report-only
 * (rewrite the BENCHMARKS.md section from bench/results/sft.json).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runSft, type SftResult } from '../src/adapt/sft-run.ts';
import { ChatSession, loadChatModel } from '../src/adapt/chat.ts';
import type { ChatMessage } from '../src/adapt/chat-template.ts';
import { readCheckpoint } from '../src/train/checkpoint.ts';
import { repoRoot, writeBenchmarkSection, writeResults } from './report.ts';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' }, out: { type: 'string', default: join(repoRoot, 'tmp', 'sft-bench') },
    steps: { type: 'string' }, lr: { type: 'string' }, 'lora-lr': { type: 'string' }, eval: { type: 'string', default: '200' }, 'no-report': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
  },
});
if (!args.base && !args['report-only']) throw new Error('bench:sft needs --base DIR (a pre-trained GPT, e.g. from `primer pretrain --out DIR`)');
const base = resolve(args.base ?? '.');
// About 1.3 passes over the data; a mini model needs a higher rate than SFT_DEFAULTS (meant for larger models) to learn the task in that time.
const DEMO = { steps: 450, lr: 3e-4, loraLr: 2e-3 };
const steps = args.steps ? Number(args.steps) : DEMO.steps;
const nEval = Number(args.eval);
const fullLr = args.lr ? Number(args.lr) : DEMO.lr;
const loraLr = args['lora-lr'] ? Number(args['lora-lr']) : DEMO.loraLr;
const DATA = 'builtin:sentiment';
const LORA = { r: 8, alpha: 16, dropout: 0.05, targets: 'all' as const };
// Reviews written for this demo (not in the built-in set), asked the way the instruction set asks.
const CHAT_QUESTIONS = [
  'Is this review positive or negative? The food was cold and the waiter was rude.',
  'Is this review positive or negative? A wonderful film with a brilliant cast, I loved every minute.',
];

/** Share of held-out questions whose greedy reply starts with the reference answer (questions too long for the context are left out). */
function answerAccuracy(modelDir: string, adapterDir: string | undefined, heldOut: ChatMessage[][]): { accuracy: number; asked: number } {
  const { model, tokenizer, template } = loadChatModel(modelDir, adapterDir);
  model.eval();
  let correct = 0;
  let asked = 0;
  for (const conv of heldOut.slice(0, nEval)) {
    const session = new ChatSession(model, tokenizer, { template, temperature: 0, maxTokens: 4 });
    let reply: string;
    try {
      reply = session.reply(conv[0]!.content).toLowerCase();
    } catch (e) {
      if (e instanceof RangeError) continue;
      throw e;
    }
    asked++;
    if (reply.startsWith(conv[1]!.content.toLowerCase())) correct++;
  }
  return { accuracy: correct / Math.max(1, asked), asked };
}

/** `primer chat` as a user runs it, with the questions piped into stdin; returns the exchange (stdin is not echoed, so the questions are put back). */
function pipedChat(modelDir: string, adapterDir?: string): string {
  const argv = [join(repoRoot, 'bin', 'primer.js'), 'chat', '--model', modelDir, ...(adapterDir ? ['--adapter', adapterDir] : []), '--temperature', '0', '--max-tokens', '8'];
  const stdout = execFileSync(process.execPath, argv, { input: CHAT_QUESTIONS.join('\n') + '\n', encoding: 'utf8' });
  const replies = stdout.split('\n').filter((l) => l.startsWith('assistant>'));
  if (replies.length !== CHAT_QUESTIONS.length) throw new Error(`bench:sft: primer chat answered ${replies.length} of ${CHAT_QUESTIONS.length} questions:\n${stdout}`);
  return CHAT_QUESTIONS.map((q, i) => `you> ${q}\n${replies[i]}`).join('\n');
}

interface Row {
  method: string;
  trainable: number;
  steps: number;
  seconds: number;
  pplBefore: number;
  pplAfter: number;
  accBefore: number;
  accAfter: number;
  asked: number;
}

async function sft(method: 'full' | 'lora'): Promise<{ row: Row; result: SftResult }> {
  const out = join(resolve(args.out!), method);
  const t0 = performance.now();
  const lr = method === 'lora' ? loraLr : fullLr;
  const result = await runSft({ model: base, data: DATA, out, steps, lr, lora: method === 'lora' ? LORA : null, progress: false });
  const seconds = (performance.now() - t0) / 1000;
  if (!result.after) throw new Error('bench:sft: training was interrupted');
  const accBefore = answerAccuracy(base, undefined, result.heldOut);
  const accAfter = method === 'lora' ? answerAccuracy(base, out, result.heldOut) : answerAccuracy(out, undefined, result.heldOut);
  const row: Row = {
    method: method === 'lora' ? `LoRA r=${LORA.r}, α=${LORA.alpha}, all linear layers` : 'full fine-tuning',
    trainable: result.trainableParameters, steps: result.training.step, seconds, pplBefore: result.before.perplexity, pplAfter: result.after.perplexity,
    accBefore: accBefore.accuracy, accAfter: accAfter.accuracy, asked: accAfter.asked,
  };
  console.log(JSON.stringify(row));
  return { row, result };
}

interface Results {
  base: string;
  out: string;
  data: string;
  steps: number;
  lr: { full: number; lora: number };
  lora: typeof LORA;
  train: number;
  heldOut: number;
  rows: Row[];
  chats: { base: string; full: string; lora: string };
  loadAverage: [number, number];
}

/** What the base run's metrics.jsonl says: steps trained and the last validation perplexity. */
function baseModelSummary(dir: string): string {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return '';
  const recs = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; val_ppl?: number });
  const lastVal = recs.filter((r) => r.val_ppl !== undefined).pop();
  const step = recs[recs.length - 1]!.step;
  const total = existsSync(join(dir, 'checkpoints')) ? readCheckpoint(dir).state.totalSteps : step;
  const steps = step < total ? `${step} of ${total} steps (stopped by its time limit on the shared machine)` : `${step} steps`;
  return `, ${steps}${lastVal ? `, validation perplexity ${lastVal.val_ppl!.toFixed(1)}` : ''}`;
}

function report(r: Results): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const rel = (p: string) => relative(repoRoot, p) || '.';
  const table = [
    '| method | trainable parameters | steps | time | held-out response perplexity | held-out answer accuracy (greedy) |',
    '|---|---:|---:|---:|---|---|',
    ...r.rows.map((x) => `| ${x.method} | ${x.trainable.toLocaleString('en-US')} | ${x.steps} | ${x.seconds.toFixed(0)} s | ${x.pplBefore.toFixed(2)} → **${x.pplAfter.toFixed(2)}** | ${pct(x.accBefore)} → **${pct(x.accAfter)}** |`),
  ].join('\n');
  const transcript = (t: string) => t.trim().split('\n').map((l) => `    ${l}`).join('\n');
  const flags = `${r.steps !== DEMO.steps ? ` --steps ${r.steps}` : ''}${r.lr.full !== DEMO.lr ? ` --lr ${r.lr.full}` : ''}${r.lr.lora !== DEMO.loraLr ? ` --lora-lr ${r.lr.lora}` : ''}`;
  writeBenchmarkSection('Instruction tuning (SFT)', `npm run bench:sft -- --base ${rel(r.base)}${flags}`, `
Base model: \`${rel(r.base)}\`, a \`primer pretrain\` with default settings (mini preset: 4 layers, 256 dims, 5.3M parameters, built-in corpus${baseModelSummary(r.base)}).
Data: the built-in instruction set \`${r.data}\` (each labelled review becomes "Is this review positive or negative? …" → "positive"/"negative"):
${r.train} training and ${r.heldOut} held-out conversations (a seeded 10% split), batch 8, ${r.steps} steps each, peak learning rate ${r.lr.full} (full) and ${r.lr.lora} (LoRA), warmup then cosine decay to a tenth.
Response perplexity is exp of the mean loss over the held-out answer tokens only (the answer word and end-of-text);
answer accuracy asks the first ${r.rows[0]!.asked} held-out questions through the chat template and counts greedy replies that start with the right word
(the data set is balanced, 1,500 positive and 1,500 negative reviews, so always giving the same answer scores about 50%).

${table}

LoRA trains ${(100 * r.rows[1]!.trainable / r.rows[0]!.trainable).toFixed(1)}% of the parameters and leaves the embeddings (tied to the output layer) frozen.

Times are wall-clock on a shared machine (1-minute load average ${r.loadAverage[0].toFixed(1)} at the start, ${r.loadAverage[1].toFixed(1)} at the end, on ${cpus().length} cores),
including the held-out evaluations during training.

Before SFT the base model continues text rather than answering; after SFT it answers in the trained format. Chat with the tuned models, questions piped into stdin
(reviews written for this demo, not from the data set; \`--temperature 0\`):

\`primer chat --model ${rel(r.base)}\` (base, before SFT):

${transcript(r.chats.base)}

\`primer chat --model ${rel(join(r.out, 'full'))}\` (full fine-tuning):

${transcript(r.chats.full)}

\`primer chat --model ${rel(r.base)} --adapter ${rel(join(r.out, 'lora'))}\` (LoRA):

${transcript(r.chats.lora)}
`);
}

if (args['report-only']) {
  report(JSON.parse(readFileSync(join(repoRoot, 'bench', 'results', 'sft.json'), 'utf8')) as Results);
} else {
  const loadBefore = loadavg()[0]!;
  const full = await sft('full');
  const lora = await sft('lora');
  const out = resolve(args.out!);
  const chats = { base: pipedChat(base), full: pipedChat(join(out, 'full')), lora: pipedChat(base, join(out, 'lora')) };
  for (const [k, v] of Object.entries(chats)) console.log(`--- ${k}\n${v}`);
  const results: Results = {
    base, out, data: DATA, steps, lr: { full: fullLr, lora: loraLr }, lora: LORA, train: full.result.trainExamples, heldOut: full.result.valExamples,
    rows: [full.row, lora.row], chats, loadAverage: [loadBefore, loadavg()[0]!],
  };
  writeResults('sft', results);
  if (!args['no-report']) report(results);
}
