/**
 * Primer's side of `npm run bench:bert` (bench/bert.ts): the char-level corpus exactly as
 * ../shared/bench/ref_bert.py's load_corpus builds it, its batch layout on Primer's masking (mlm.ts), the
 * training run with the benchmark recipe, the "same start" run from ref_bert.py's initial weights and
 * batches, and the context-free plateau that defines the escape step.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bert, type BertConfig } from '../src/models/bert.ts';
import { maskTokens, type MaskingOptions } from '../src/data/mlm.ts';
import type { BertBatch } from '../src/data/bert-batches.ts';
import type { BatchSource } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { train } from '../src/train/trainer.ts';
import { bertInputs, evaluateBert } from '../src/train/bert-metrics.ts';
import { repoRoot } from './report.ts';

export const SCHEDULES = ['linear', 'cosine', 'constant'] as const;

/** One recipe, passed identically to Primer and to ref_bert.py (see bert.ts's refArgs). */
export interface Recipe {
  steps: number;
  lr: number;
  warmup: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maskProb: number;
  batch: number;
  seq: number;
  /** Max global gradient norm; ≤ 0 disables clipping (ref_bert.py's convention). */
  clip: number;
  schedule: (typeof SCHEDULES)[number];
  /** Held-out evaluation every this many steps (and at the end). */
  evalEvery: number;
  nsp: boolean;
  /** bf16 autocast in both arms (Primer's trainer `bf16`, ref_bert.py --dtype bf16); fp32 when absent. */
  bf16?: boolean;
}

export const [PAD, CLS, SEP, MASK] = [0, 1, 2, 3];
const EVAL_BATCHES = 20; // ref_bert.py's --eval_batches default

/** Char-level ids exactly as ref_bert.py's load_corpus: 4 specials + sorted code points; 90/10 split. */
export function charData(path: string) {
  const chars = [...readFileSync(path, 'utf8')];
  const alphabet = [...new Set(chars)].sort();
  const index = new Map(alphabet.map((c, i) => [c, i + 4]));
  const ids = Int32Array.from(chars, (c) => index.get(c)!);
  const n = Math.floor(0.9 * ids.length);
  return { vocab: alphabet.length + 4, train: ids.subarray(0, n), val: ids.subarray(n) };
}

/**
 * The held-out MLM loss of the best predictor that sees no context: for a chosen position it sees only
 * its own input, which is [MASK] (80%), the true character (10%) or a uniform random character (10%).
 * Fitted on the training characters' frequencies p, scored on the held-out frequencies q:
 *   0.8·H(q, p) + Σ_x Σ_y q(y)·[0.1·1(x=y) + 0.1/V] · −log post(y | x),  post(y | x) ∝ p(y)·[1(x=y) + 1/V].
 * This is the plateau a stuck run sits on (the plain unigram entropy is higher: it ignores the 10% of
 * positions that show their own character).
 */
export function contextFreePlateau(data: ReturnType<typeof charData>) {
  const count = (ids: Int32Array) => {
    const c = new Float64Array(data.vocab);
    for (const id of ids) c[id]!++;
    return c.map((v) => v / ids.length);
  };
  const p = count(data.train);
  const q = count(data.val);
  const chars = [...p.keys()].filter((id) => id >= 4);
  const V = chars.length; // replacement draws: every non-special id, in both ref_bert.py and mlm.ts
  let unigramEntropy = 0;
  for (const y of chars) if (p[y]! > 0) unigramEntropy -= p[y]! * Math.log(p[y]!);
  let loss = 0;
  for (const y of chars) if (q[y]! > 0) loss -= 0.8 * q[y]! * Math.log(p[y]!);
  for (const x of chars) {
    const z = 0.1 * p[x]! + 0.1 / V;
    for (const y of chars) {
      const w = q[y]! * (0.1 * (x === y ? 1 : 0) + 0.1 / V);
      if (w > 0) loss -= w * Math.log((p[y]! * (0.1 * (x === y ? 1 : 0) + 0.1 / V)) / z);
    }
  }
  return { unigramEntropy, plateau: loss };
}

/**
 * ref_bert.py's MLMBatcher on Primer's masking: rows [CLS] window [SEP] (nsp: [CLS] A [SEP] B [SEP] with
 * |A| + |B| = seq − 3, |A| uniform in [16, seq − 19], B the true continuation or a random window with p = ½).
 */
class CharBertBatches implements BatchSource<BertBatch> {
  private rng: Rng;
  private served = 0;
  constructor(private readonly data: Int32Array, private readonly masking: MaskingOptions, private readonly seed: number, private readonly r: Recipe) {
    this.rng = new Rng(seed);
  }
  next(): BertBatch {
    this.served++;
    const r = this.rng;
    const { batch: B, seq: L, nsp } = this.r;
    const ids = new Int32Array(B * L);
    const types = new Int32Array(B * L);
    const nspLabels = nsp ? new Int32Array(B) : undefined;
    for (let b = 0; b < B; b++) {
      const row = ids.subarray(b * L, (b + 1) * L);
      row[0] = CLS;
      row[L - 1] = SEP;
      if (!nsp) {
        const n = L - 2;
        const s = r.int(this.data.length - n);
        row.set(this.data.subarray(s, s + n), 1);
        continue;
      }
      const n = L - 3;
      const la = 16 + r.int(n - 32 + 1);
      const s = r.int(this.data.length - n);
      const isNext = r.next() < 0.5;
      const bStart = isNext ? s + la : r.int(this.data.length - n);
      row.set(this.data.subarray(s, s + la), 1);
      row[la + 1] = SEP;
      row.set(this.data.subarray(bStart, bStart + n - la), la + 2);
      types.fill(1, b * L + la + 2, (b + 1) * L);
      nspLabels![b] = isNext ? 0 : 1; // Primer's convention: 0 = B follows A
    }
    const m = maskTokens(ids, B, L, r, this.masking);
    return {
      inputIds: m.inputIds, labels: m.labels, tokenTypeIds: types, attentionMask: new Uint8Array(B * L).fill(1),
      nspLabels, batch: B, length: L, tokens: B * L,
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

export interface CurvePoint { step: number; train_loss?: number; heldout_mlm_loss: number; heldout_mlm_acc: number; heldout_nsp_acc?: number }

export interface ArmRun {
  params: number;
  tokens_per_sec: number;
  seconds: number;
  heldout_mlm_loss: number;
  heldout_mlm_acc: number;
  heldout_nsp_acc?: number;
  curve: CurvePoint[];
}

const bertConfig = (vocab: number, seq: number): BertConfig => ({
  model_type: 'bert', vocab_size: vocab, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4,
  intermediate_size: 512, hidden_act: 'gelu_new', hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
  max_position_embeddings: seq, type_vocab_size: 2, initializer_range: 0.02, layer_norm_eps: 1e-12, pad_token_id: PAD,
});

/** Trains `model` on `source` with the recipe, evaluating on evalBatches every recipe.evalEvery steps. */
async function primerRun(label: string, model: Bert, source: BatchSource<BertBatch>, evalBatches: BertBatch[], rc: Recipe): Promise<ArmRun> {
  const lossFn = (b: BertBatch) => model.forward(bertInputs(b), b.labels, b.nspLabels, { maskedOnly: true }).loss!;
  const runDir = mkdtempSync(join(tmpdir(), 'primer-bench-bert-'));
  const curve: CurvePoint[] = [];
  const tokensPerStep = rc.batch * rc.seq;
  let seconds = 0;
  let tokens = 0;
  let step = 0;
  let resume: string | undefined;
  const common = {
    model, lossFn, data: source, runDir, steps: rc.steps, lr: rc.lr, minLr: 0, warmupSteps: rc.warmup, decay: rc.schedule,
    weightDecay: rc.weightDecay, betas: [rc.beta1, rc.beta2] as [number, number], eps: rc.eps, gradClip: rc.clip > 0 ? rc.clip : Infinity,
    bf16: rc.bf16 ?? false, checkpointEvery: 0, keepCheckpoints: 1, progress: false as const, handleSignals: false,
  };
  try {
    // Split at the evaluation points; resume is exact, so the segments equal one run.
    while (step < rc.steps) {
      const stopAt = Math.min(rc.steps, step + rc.evalEvery);
      const r = await train({ ...common, stopAtStep: stopAt, resumeFrom: resume });
      const timed = stopAt - step - 1; // the trainer's tokens/s leaves out each segment's first step
      seconds += r.tokensPerSecond > 0 ? (timed * tokensPerStep) / r.tokensPerSecond : 0;
      tokens += timed * tokensPerStep;
      step = r.step;
      resume = r.lastCheckpoint!;
      const m = evaluateBert(model, evalBatches);
      curve.push({
        step, train_loss: +r.trainLoss.toFixed(4), heldout_mlm_loss: +m.mlmLoss.toFixed(4), heldout_mlm_acc: +m.mlmAccuracy.toFixed(4),
        heldout_nsp_acc: m.nspAccuracy === null ? undefined : +m.nspAccuracy.toFixed(4),
      });
      console.log(`  ${label} @ ${step}: train ${r.trainLoss.toFixed(4)}, held-out MLM ${m.mlmLoss.toFixed(4)} acc ${(100 * m.mlmAccuracy).toFixed(1)}%${m.nspAccuracy !== null ? ` NSP acc ${(100 * m.nspAccuracy).toFixed(1)}%` : ''}`);
    }
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  const last = curve.at(-1)!;
  return {
    params: model.numParameters(), tokens_per_sec: seconds > 0 ? Math.round(tokens / seconds) : 0, seconds: +seconds.toFixed(1),
    heldout_mlm_loss: last.heldout_mlm_loss, heldout_mlm_acc: last.heldout_mlm_acc, heldout_nsp_acc: last.heldout_nsp_acc, curve,
  };
}

/** Primer's own run: its initialisation (Rng(seed)), its batches (seed + 1) and masking; held-out batches from seed + 10 000. */
export async function ownRun(seed: number, rc: Recipe, corpusPath: string): Promise<ArmRun> {
  const data = charData(corpusPath);
  const model = new Bert(bertConfig(data.vocab, rc.seq), seed);
  const special = new Uint8Array(data.vocab);
  for (const id of [PAD, CLS, SEP, MASK]) special[id] = 1;
  const masking: MaskingOptions = { maskId: MASK, vocabSize: data.vocab, special, probability: rc.maskProb };
  const held = new CharBertBatches(data.val, masking, seed + 10_000, rc);
  const evalBatches = Array.from({ length: EVAL_BATCHES }, () => held.next());
  // seed + 1: the model's Rng(seed) drew the initial weights from the same counter-based stream.
  return primerRun(`primer s${seed}`, model, new CharBertBatches(data.train, masking, seed + 1, rc), evalBatches, rc);
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
export async function sameStartRun(seed: number, rc: Recipe, paths: { python: string; refScript: string; corpus: string }): Promise<ArmRun> {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bench-bert-start-'));
  let manifest: { vocab: number; weights: Array<{ name: string; shape: number[]; offset: number }> };
  let weights: Float32Array;
  let trainBatches: BertBatch[];
  let evalBatches: BertBatch[];
  const n = rc.batch * rc.seq;
  const batches = (file: string): BertBatch[] => {
    const all = new Int32Array(readFileSync(join(dir, file)).buffer.slice(0));
    return Array.from({ length: all.length / (3 * n) }, (_, i) => ({
      inputIds: all.slice(3 * i * n, (3 * i + 1) * n), tokenTypeIds: all.slice((3 * i + 1) * n, (3 * i + 2) * n),
      labels: all.slice((3 * i + 2) * n, (3 * i + 3) * n), attentionMask: new Uint8Array(n).fill(1), batch: rc.batch, length: rc.seq, tokens: n,
    }));
  };
  try {
    const args = [join(repoRoot, 'bench', 'ref_bert_start.py'), paths.refScript, paths.corpus, String(seed), String(rc.steps), dir,
      '--seq_len', String(rc.seq), '--batch_size', String(rc.batch), '--mask_prob', String(rc.maskProb)];
    const r = spawnSync(paths.python, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ref_bert_start.py failed: ${r.stderr}`);
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    weights = new Float32Array(readFileSync(join(dir, 'weights.bin')).buffer.slice(0));
    trainBatches = batches('train.bin');
    evalBatches = batches('eval.bin');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const model = new Bert(bertConfig(manifest.vocab, rc.seq), seed);
  const params = new Map(model.namedParameters());
  const loaded = new Set<string>();
  for (const w of manifest.weights) {
    const size = w.shape.reduce((x, y) => x * y, 1);
    for (const [name, part, parts] of refToPrimer(w.name)) {
      params.get(name)!.data.set(weights.subarray(w.offset + (part * size) / parts, w.offset + ((part + 1) * size) / parts));
      loaded.add(name);
    }
  }
  const unused = [...params.keys()].filter((k) => !loaded.has(k) && !/pooler|seq_relationship/.test(k));
  if (unused.length) throw new Error(`same-start: no ref_bert.py weights for ${unused.join(', ')}`);
  let next = 0;
  const source: BatchSource<BertBatch> = { next: () => trainBatches[next++]!, state: () => ({ next }), loadState: (s) => void (next = (s as { next: number }).next) };
  return primerRun(`same-start s${seed}`, model, source, evalBatches, rc);
}
