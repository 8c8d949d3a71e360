/**
 * BERT learning parity and throughput (npm run bench:bert): Primer's BERT (models/bert.ts, the shared
 * trainer, mlm.ts masking) side by side with ../shared/bench/ref_bert.py (PyTorch) on the same
 * char-level corpus and recipe:
 *
 *   model   4 layers, 4 heads, 128 hidden, 512 intermediate, seq 128, batch 16, post-LN, GELU tanh,
 *           LayerNorm eps 1e-12, init N(0, 0.02), no dropout, MLM head tied to the token embedding
 *   data    vocab [PAD] [CLS] [SEP] [MASK] + sorted corpus chars; first 90% train, last 10% held out;
 *           rows [CLS] c_1 .. c_126 [SEP] from uniform random offsets
 *   masking 15% of the 126 chars, 80/10/10 [MASK]/random char/unchanged, loss on chosen positions only;
 *           Primer (mlm.ts, google-research/bert's rule) picks exactly round(0.15·126) = 19 positions per row,
 *           ref_bert.py picks each position independently with p = 0.15 (18.9 on average)
 *   optim   AdamW lr 2e-3 β=(0.9, 0.99) ε 1e-6, wd 0.01 on ≥2-D weights, warmup 200 then linear to 0, clip 1
 *   eval    20 fixed held-out batches (seed + 10 000), loss = Σ −log p / #predicted positions
 *
 * ref_bert.py only evaluates at the end, so the every-200-steps curve holds Primer's held-out loss and
 * both training losses; the parity check is the final held-out loss at the same step count.
 * Options: --steps N (default 2000), --no-torch, --nsp (adds next-sentence prediction, ref_bert.py --nsp 1),
 * --seed N (default 1337; both draw init, batches and masks from it, each with its own generator),
 * --no-report (print the results only; leave BENCHMARKS.md and bench/results alone), --no-same-start (skip the
 * third run, Primer from ref_bert.py's initial weights on ref_bert.py's batches; MLM only, needs PyTorch).
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bert, type BertConfig } from '../src/models/bert.ts';
import { maskTokens, type MaskingOptions } from '../src/data/mlm.ts';
import type { BertBatch } from '../src/data/bert-batches.ts';
import type { BatchSource } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { train } from '../src/train/trainer.ts';
import { bertInputs, evaluateBert } from '../src/train/bert-metrics.ts';
import { getNumThreads } from '../src/backend/index.ts';
import { repoRoot, writeResults, writeBenchmarkSection, machineDescription } from './report.ts';

const args = process.argv.slice(2);
const { values: options } = parseArgs({
  args, options: { 'steps': { type: 'string' }, 'seed': { type: 'string' }, 'nsp': { type: 'boolean' }, 'no-torch': { type: 'boolean' }, 'no-report': { type: 'boolean' }, 'no-same-start': { type: 'boolean' } },
});
const steps = Number(options.steps ?? 2000);
const nsp = options.nsp ?? false;
const refScript = join(repoRoot, '..', 'shared', 'bench', 'ref_bert.py');
const corpusPath = join(repoRoot, '..', 'shared', 'bench', 'data', 'shakespeare.txt');
const python = '/usr/bin/python3';
const SEED = Number(options.seed ?? 1337);
const BATCH = 16;
const SEQ = 128;
const [PAD, CLS, SEP, MASK] = [0, 1, 2, 3];
const EVAL_EVERY = 200;

/** Char-level ids exactly as ref_bert.py's load_corpus: 4 specials + sorted code points; 90/10 split. */
function charData(path: string) {
  const chars = [...readFileSync(path, 'utf8')];
  const alphabet = [...new Set(chars)].sort();
  const index = new Map(alphabet.map((c, i) => [c, i + 4]));
  const ids = Int32Array.from(chars, (c) => index.get(c)!);
  const n = Math.floor(0.9 * ids.length);
  return { vocab: alphabet.length + 4, train: ids.subarray(0, n), val: ids.subarray(n) };
}

/**
 * ref_bert.py's MLMBatcher on Primer's masking: rows [CLS] window [SEP] (--nsp: [CLS] A [SEP] B [SEP] with
 * |A| + |B| = 125, |A| uniform in [16, 109], B the true continuation or a random window with p = ½).
 */
class CharBertBatches implements BatchSource<BertBatch> {
  private rng: Rng;
  private served = 0;
  constructor(private readonly data: Int32Array, private readonly masking: MaskingOptions, private readonly seed: number) {
    this.rng = new Rng(seed);
  }
  next(): BertBatch {
    this.served++;
    const r = this.rng;
    const ids = new Int32Array(BATCH * SEQ);
    const types = new Int32Array(BATCH * SEQ);
    const nspLabels = nsp ? new Int32Array(BATCH) : undefined;
    for (let b = 0; b < BATCH; b++) {
      const row = ids.subarray(b * SEQ, (b + 1) * SEQ);
      row[0] = CLS;
      row[SEQ - 1] = SEP;
      if (!nsp) {
        const n = SEQ - 2;
        const s = r.int(this.data.length - n);
        row.set(this.data.subarray(s, s + n), 1);
        continue;
      }
      const n = SEQ - 3;
      const la = 16 + r.int(n - 32 + 1);
      const s = r.int(this.data.length - n);
      const isNext = r.next() < 0.5;
      const bStart = isNext ? s + la : r.int(this.data.length - n);
      row.set(this.data.subarray(s, s + la), 1);
      row[la + 1] = SEP;
      row.set(this.data.subarray(bStart, bStart + n - la), la + 2);
      types.fill(1, b * SEQ + la + 2, (b + 1) * SEQ);
      nspLabels![b] = isNext ? 0 : 1; // Primer's convention: 0 = B follows A
    }
    const m = maskTokens(ids, BATCH, SEQ, r, this.masking);
    return {
      inputIds: m.inputIds, labels: m.labels, tokenTypeIds: types, attentionMask: new Uint8Array(BATCH * SEQ).fill(1),
      nspLabels, batch: BATCH, length: SEQ, tokens: BATCH * SEQ,
    };
  }
  state(): unknown {
    return { batches: this.served };
  }
  loadState(s: unknown): void {
    this.rng = new Rng(this.seed);
    this.served = 0;
    for (let i = 0; i < (s as { batches: number }).batches; i++) this.next();
  }
}

interface Curve { step: number; train_loss: number; heldout_mlm_loss?: number; heldout_mlm_acc?: number }

const config = (vocab: number): BertConfig => ({
  model_type: 'bert', vocab_size: vocab, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4,
  intermediate_size: 512, hidden_act: 'gelu_new', hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
  max_position_embeddings: SEQ, type_vocab_size: 2, initializer_range: 0.02, layer_norm_eps: 1e-12, pad_token_id: PAD,
});

/** Trains `model` on `source` with ref_bert.py's recipe, evaluating on evalBatches every EVAL_EVERY steps. */
async function primerRun(label: string, model: Bert, source: BatchSource<BertBatch>, evalBatches: BertBatch[]) {
  const lossFn = (b: BertBatch) => model.forward(bertInputs(b), b.labels, b.nspLabels, { maskedOnly: true }).loss!;
  const runDir = mkdtempSync(join(tmpdir(), 'primer-bench-bert-'));
  const curve: Curve[] = [];
  let seconds = 0;
  let tokens = 0;
  let step = 0;
  let resume: string | undefined;
  const common = {
    model, lossFn, data: source, runDir, steps, lr: 2e-3, minLr: 0, warmupSteps: 200, decay: 'linear' as const,
    weightDecay: 0.01, betas: [0.9, 0.99] as [number, number], eps: 1e-6, gradClip: 1, bf16: false,
    checkpointEvery: 0, keepCheckpoints: 1, progress: false as const, handleSignals: false,
  };
  // Split at the evaluation points; resume is exact, so the segments equal one run.
  while (step < steps) {
    const stopAt = Math.min(steps, step + EVAL_EVERY);
    const r = await train({ ...common, stopAtStep: stopAt, resumeFrom: resume });
    const timed = stopAt - step - 1;
    seconds += r.tokensPerSecond > 0 ? (timed * BATCH * SEQ) / r.tokensPerSecond : 0;
    tokens += timed * BATCH * SEQ;
    step = r.step;
    resume = r.lastCheckpoint!;
    const m = evaluateBert(model, evalBatches);
    curve.push({ step, train_loss: +r.trainLoss.toFixed(4), heldout_mlm_loss: +m.mlmLoss.toFixed(4), heldout_mlm_acc: +m.mlmAccuracy.toFixed(4) });
    console.log(`  ${label} @ ${step}: train ${r.trainLoss.toFixed(4)}, held-out MLM ${m.mlmLoss.toFixed(4)} acc ${(100 * m.mlmAccuracy).toFixed(1)}%${m.nspAccuracy !== null ? ` NSP acc ${(100 * m.nspAccuracy).toFixed(1)}%` : ''}`);
  }
  const final = evaluateBert(model, evalBatches);
  rmSync(runDir, { recursive: true, force: true });
  return {
    params: model.numParameters(), tokens_per_sec: Math.round(tokens / seconds), seconds: +seconds.toFixed(1),
    heldout_mlm_loss: +final.mlmLoss.toFixed(4), heldout_mlm_acc: +final.mlmAccuracy.toFixed(4),
    heldout_nsp_acc: final.nspAccuracy === null ? undefined : +final.nspAccuracy.toFixed(4), curve,
  };
}

/** Primer's own run: its initialisation (Rng(seed)), its batches and masking. */
async function ownRun() {
  const data = charData(corpusPath);
  const model = new Bert(config(data.vocab), SEED);
  const special = new Uint8Array(data.vocab);
  for (const id of [PAD, CLS, SEP, MASK]) special[id] = 1;
  const masking: MaskingOptions = { maskId: MASK, vocabSize: data.vocab, special, probability: 0.15 };
  const held = new CharBertBatches(data.val, masking, SEED + 10_000);
  const evalBatches = Array.from({ length: 20 }, () => held.next());
  // seed + 1: the model's Rng(seed) drew the initial weights from the same counter-based stream.
  return { vocab: data.vocab, ...(await primerRun('primer', model, new CharBertBatches(data.train, masking, SEED + 1), evalBatches)) };
}

/** ref_bert.py's parameter names → Primer's (HF) names; its fused qkv weight is split into query/key/value rows. */
function refToPrimer(name: string): Array<[string, number, number]> {
  const direct: Record<string, string> = {
    'tok.weight': 'bert.embeddings.word_embeddings.weight', 'pos.weight': 'bert.embeddings.position_embeddings.weight',
    'seg.weight': 'bert.embeddings.token_type_embeddings.weight', 'emb_ln.weight': 'bert.embeddings.LayerNorm.weight',
    'emb_ln.bias': 'bert.embeddings.LayerNorm.bias', 'mlm_dense.weight': 'cls.predictions.transform.dense.weight',
    'mlm_dense.bias': 'cls.predictions.transform.dense.bias', 'mlm_ln.weight': 'cls.predictions.transform.LayerNorm.weight',
    'mlm_ln.bias': 'cls.predictions.transform.LayerNorm.bias', 'mlm_bias': 'cls.predictions.bias',
  };
  if (direct[name]) return [[direct[name]!, 0, 1]];
  const m = /^layers\.(\d+)\.(\w+)\.(weight|bias)$/.exec(name);
  if (!m) throw new Error(`ref_bert.py parameter ${name} has no Primer counterpart`);
  const layer = `bert.encoder.layer.${m[1]}.`;
  if (m[2] === 'qkv') return ['query', 'key', 'value'].map((q, i) => [`${layer}attention.self.${q}.${m[3]}`, i, 3]);
  const sub: Record<string, string> = { attn_out: 'attention.output.dense', ln1: 'attention.output.LayerNorm', fc1: 'intermediate.dense', fc2: 'output.dense', ln2: 'output.LayerNorm' };
  return [[`${layer}${sub[m[2]!]}.${m[3]}`, 0, 1]];
}

/**
 * The same-start run: Primer trains from ref_bert.py's initial weights on ref_bert.py's own batches
 * (bench/ref_bert_start.py dumps them with ref_bert.py's classes), so any gap left is the implementation's.
 */
async function sameStartRun() {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bench-bert-start-'));
  const r = spawnSync(python, [join(repoRoot, 'bench', 'ref_bert_start.py'), refScript, corpusPath, String(SEED), String(steps), dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ref_bert_start.py failed: ${r.stderr}`);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { vocab: number; weights: Array<{ name: string; shape: number[]; offset: number }> };
  const model = new Bert(config(manifest.vocab), SEED);
  const params = new Map(model.namedParameters());
  const weights = new Float32Array(readFileSync(join(dir, 'weights.bin')).buffer.slice(0));
  const loaded = new Set<string>();
  for (const w of manifest.weights) {
    const size = w.shape.reduce((x, y) => x * y, 1);
    for (const [name, part, parts] of refToPrimer(w.name)) {
      const p = params.get(name)!;
      p.data.set(weights.subarray(w.offset + (part * size) / parts, w.offset + ((part + 1) * size) / parts));
      loaded.add(name);
    }
  }
  const unused = [...params.keys()].filter((n) => !loaded.has(n) && !/pooler|seq_relationship/.test(n));
  if (unused.length) throw new Error(`same-start: no ref_bert.py weights for ${unused.join(', ')}`);
  const batches = (file: string): BertBatch[] => {
    const all = new Int32Array(readFileSync(join(dir, file)).buffer.slice(0));
    const n = BATCH * SEQ;
    return Array.from({ length: all.length / (3 * n) }, (_, i) => ({
      inputIds: all.slice(3 * i * n, (3 * i + 1) * n), tokenTypeIds: all.slice((3 * i + 1) * n, (3 * i + 2) * n),
      labels: all.slice((3 * i + 2) * n, (3 * i + 3) * n), attentionMask: new Uint8Array(n).fill(1), batch: BATCH, length: SEQ, tokens: n,
    }));
  };
  const trainBatches = batches('train.bin');
  const evalBatches = batches('eval.bin');
  rmSync(dir, { recursive: true, force: true });
  let next = 0;
  const source: BatchSource<BertBatch> = { next: () => trainBatches[next++]!, state: () => ({ next }), loadState: (s) => void (next = (s as { next: number }).next) };
  return primerRun('primer (ref start)', model, source, evalBatches);
}

function hasTorch(): boolean {
  if (options['no-torch'] || !existsSync(python) || !existsSync(refScript)) return false;
  return spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

interface TorchResult {
  torch: string;
  tokens_per_sec: number;
  heldout_mlm_loss: number;
  heldout_mlm_acc: number;
  heldout_nsp_acc?: number;
  train_wall_s: number;
  [key: string]: unknown;
}

function torchRun(): TorchResult & { train_curve: Array<[number, number]> } {
  // fp32 PyTorch is fastest with 1 OpenMP + N OpenBLAS threads here (as in bench/train.ts).
  const n = getNumThreads();
  const r = spawnSync(python, [refScript, '--corpus', corpusPath, '--iters', String(steps), '--threads', '1', '--blas_threads', String(n),
    '--dtype', 'fp32', '--nsp', nsp ? '1' : '0', '--log_every', '50', '--seed', String(SEED)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`ref_bert.py failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const res = JSON.parse(lines.at(-1)!) as TorchResult;
  // Training loss near the curve's steps: "iter k: mlm L ..." is the loss of batch k + 1 (logged every 50; the last one is k = steps − 1).
  const trainAt = new Map<number, number>();
  for (const l of lines) {
    const m = /^iter (\d+): mlm ([\d.]+)/.exec(l);
    if (!m) continue;
    const k = Number(m[1]);
    trainAt.set(k + 1 === steps ? steps : k, Number(m[2]));
  }
  return { ...res, train_curve: [...trainAt].filter(([s]) => s % EVAL_EVERY === 0 || s === steps) };
}

const withTorch = hasTorch();
const sameStart = withTorch && !nsp && !options['no-same-start'];
const loadAtStart = loadavg()[0]!;
console.log(`bench:bert on ${machineDescription()}, ${getNumThreads()} threads, ${steps} steps${nsp ? ', MLM + NSP' : ''}; PyTorch baseline: ${withTorch ? 'yes' : 'no'}`);
const primer = await ownRun();
console.log(`primer: held-out MLM ${primer.heldout_mlm_loss} acc ${primer.heldout_mlm_acc}, ${primer.tokens_per_sec} tok/s`);
const torch = withTorch ? torchRun() : null;
if (torch) console.log(`torch:  held-out MLM ${torch.heldout_mlm_loss} acc ${torch.heldout_mlm_acc}, ${torch.tokens_per_sec} tok/s`);
const loadAtEnd = loadavg()[0]!;
const same = sameStart ? await sameStartRun() : null;
if (same) console.log(`primer from ref_bert.py's start: held-out MLM ${same.heldout_mlm_loss} acc ${same.heldout_mlm_acc}`);
const gapOf = (x: { heldout_mlm_loss: number } | null) => (x && torch ? (x.heldout_mlm_loss - torch.heldout_mlm_loss) / torch.heldout_mlm_loss : null);
const gap = gapOf(primer);
const sameGap = gapOf(same);
const speedup = torch ? primer.tokens_per_sec / torch.tokens_per_sec : null;
const strip = <T extends { curve: unknown }>(x: T | null) => x && { ...x, curve: undefined };
if (options['no-report']) {
  console.log(JSON.stringify({ primer: strip(primer), same_start: strip(same), torch: torch && { ...torch, train_curve: undefined }, relative_gap: gap, same_start_gap: sameGap, speedup }));
  process.exit(0);
}
writeResults(nsp ? 'bert-nsp' : 'bert', {
  date: new Date().toISOString(), machine: machineDescription(), threads: getNumThreads(), load_average: [loadAtStart, loadAtEnd],
  steps, nsp, batch: BATCH, seq_len: SEQ, primer, same_start: same, torch, relative_gap: gap, same_start_gap: sameGap, speedup,
});

const fmt = (x: number | undefined) => (x === undefined ? '' : String(x));
const pct = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(1)}%`);
const torchTrain = new Map(torch?.train_curve ?? []);
const sameAt = new Map(same?.curve.map((c) => [c.step, c]) ?? []);
const rows = primer.curve.map((c) => {
  const r = sameAt.get(c.step);
  const last = c.step === steps && torch;
  return `| ${c.step} | ${c.train_loss} | ${fmt(c.heldout_mlm_loss)} | ${pct(c.heldout_mlm_acc)} |${same ? ` ${fmt(r?.train_loss)} | ${fmt(r?.heldout_mlm_loss)} | ${pct(r?.heldout_mlm_acc)} |` : ''} ${fmt(torchTrain.get(c.step))} | ${last ? torch.heldout_mlm_loss : ''} | ${last ? pct(torch.heldout_mlm_acc) : ''} |`;
});
const loaded = loadAtStart > 1.5; // the load at the end includes this benchmark's own two threads
const nspCell = (x: { heldout_nsp_acc?: number } | null) => (nsp ? ` | ${x ? pct(x.heldout_nsp_acc) : 'n/a'}` : '');
const body = `Load average ${loadAtStart.toFixed(1)} at the start, ${loadAtEnd.toFixed(1)} at the end${loaded ? ' (a machine shared with other jobs: tokens/s are depressed and noisy)' : ''}.

Char-level BERT${nsp ? ' MLM + NSP' : ' MLM'} on Shakespeare (vocab ${primer.vocab}, ${primer.params.toLocaleString('en-US')} Primer parameters incl. the unused pooler/NSP head), 4 layers, 4 heads, 128 hidden, 512 intermediate, seq 128, batch 16, ${steps} steps, fp32, ${getNumThreads()} threads; recipe of ../shared/bench/ref_bert.py (AdamW 2e-3, β=(0.9, 0.99), ε 1e-6, wd 0.01, warmup 200 + linear decay to 0, clip 1, GELU tanh). Held-out = 20 fixed batches of the last 10%. Masking: Primer picks exactly 19 of the 126 characters per row (google-research/bert's rule, src/data/mlm.ts), ref_bert.py each one independently with p = 0.15; Primer's MLM head runs on the masked rows only during training, as ref_bert.py's.

Rows: **Primer** = Primer's own initialisation (Rng(seed)), batches and masking; **Primer, ref_bert.py's start** = Primer's model and trainer started from ref_bert.py's initial weights and trained on ref_bert.py's own training batches, evaluated on its held-out batches (bench/ref_bert_start.py writes them with ref_bert.py's classes): the same computation from the same starting point, so its gap is the implementation's; **PyTorch** = ref_bert.py itself. Tokens/s come from the first and the last row, run back to back.

| | held-out MLM loss | held-out MLM accuracy${nsp ? ' | held-out NSP accuracy' : ''} | tokens/s |
|---|---|---|${nsp ? '---|' : ''}---|
| Primer | ${primer.heldout_mlm_loss} | ${pct(primer.heldout_mlm_acc)}${nspCell(primer)} | ${primer.tokens_per_sec.toLocaleString('en-US')} |
${same ? `| Primer, ref_bert.py's start | ${same.heldout_mlm_loss} | ${pct(same.heldout_mlm_acc)} | |\n` : ''}| PyTorch ${torch ? `${torch.torch} (ref_bert.py, 1 OpenMP + ${getNumThreads()} BLAS threads)` : '(not installed)'} | ${torch ? torch.heldout_mlm_loss : 'n/a'} | ${torch ? pct(torch.heldout_mlm_acc) : 'n/a'}${nspCell(torch)} | ${torch ? torch.tokens_per_sec.toLocaleString('en-US') : 'n/a'} |

${torch ? `Relative gap of the held-out MLM loss (Primer − PyTorch) / PyTorch: ${(100 * gap!).toFixed(2)}% with Primer's own start${sameGap !== null ? `, ${(100 * sameGap).toFixed(3)}% from ref_bert.py's start` : ''} (target within ±3%). Primer / PyTorch tokens/s: ${speedup!.toFixed(2)}× (goal ≥ 1.5×).` : ''}

Curve (ref_bert.py evaluates held-out only at the end; its training loss is the logged single-batch loss):

| step | Primer train | Primer held-out MLM | Primer held-out acc |${same ? ' ref start: train | ref start: held-out MLM | ref start: held-out acc |' : ''} PyTorch train | PyTorch held-out MLM | PyTorch held-out acc |
|---|---|---|---|${same ? '---|---|---|' : ''}---|---|---|
${rows.join('\n')}
`;
writeBenchmarkSection(nsp ? 'BERT pre-training (MLM + NSP)' : 'BERT pre-training', `npm run bench:bert${args.length ? ' -- ' + args.join(' ') : ''}`, body);
console.log(`wrote bench/results/${nsp ? 'bert-nsp' : 'bert'}.json and the BERT section of BENCHMARKS.md`);
