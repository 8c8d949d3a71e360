import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/util/random.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { pretrainBert, type BertPretrainOptions } from '../../src/train/bert-pretrain.ts';
import { fillMask, loadBert } from '../../src/infer/fill-mask.ts';
import { isNextProbability } from '../../src/infer/nsp.ts';
import { Command } from 'commander';
import { registerBertCommands, runBertPretrain } from '../../src/cli/bert.ts';
import { recordedObjective } from '../../src/train/checkpoint.ts';
import { PrimerError } from '../../src/io/errors.ts';

async function captureLog(fn: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (m: string) => lines.push(String(m));
  try {
    await fn();
  } finally {
    console.log = log;
  }
  return lines;
}

// Four "topics" with disjoint vocabularies, each a fixed cycle of sentences: which words can fill a
// mask, and whether B continues A, are visible from the words around it.
const TOPICS = [
  ['Cat sat on mat.', 'Dog ran in park.', 'Bird sang from tree.', 'Fish swam through pond.'],
  ['Car needs new tires.', 'Bus was very late.', 'Train left its station.', 'Plane flew over clouds.'],
  ['She plays old piano.', 'He sings sad song.', 'They dance all night.', 'We hear loud drums.'],
  ['Rain falls upon hills.', 'Snow covers cold mountain.', 'Wind blows across sea.', 'Sun warms dry desert.'],
];
const topicWords = TOPICS.map((t) => new Set(t.join(' ').toLowerCase().replace(/\./g, '').split(' ')));

const dir = mkdtempSync(join(tmpdir(), 'primer-bert-'));
const corpus = join(dir, 'corpus');
mkdirSync(corpus);
const rng = new Rng(4);
for (let d = 0; d < 48; d++) {
  const topic = TOPICS[d % 4]!;
  const start = rng.int(4);
  const sentences = Array.from({ length: 16 + rng.int(16) }, (_, i) => topic[(start + i) % 4]!);
  writeFileSync(join(corpus, `doc${String(d).padStart(2, '0')}.txt`), sentences.join(' ') + '\n');
}

const base: BertPretrainOptions = {
  corpus: [corpus], vocabSize: 300, preset: 'tiny', layers: 2, dims: 64, heads: 2, intermediate: 128, maxSeqLength: 64,
  batchSize: 16, lr: 3e-3, minLr: 3e-4, warmupSteps: 5, dropout: 0, evalBatches: 2, valFraction: 0.1, workers: 0,
  progress: false, log: () => {}, seed: 3,
};

test('BERT MLM+NSP pre-training through the shared trainer: losses fall, metrics, HF layout, fill-mask and nsp', async () => {
  const runDir = join(dir, 'run-nsp');
  const r = await pretrainBert({ ...base, objective: 'mlm+nsp', steps: 60, evalEvery: 30, checkpointEvery: 30, out: runDir });
  assert.equal(r.training.status, 'completed');
  assert.deepEqual(r.history.map((h) => h.step), [0, 30, 60]);
  const first = r.history[0]!;
  const last = r.history[r.history.length - 1]!;
  assert.ok(first.mlmLoss > Math.log(100), `untrained MLM loss ${first.mlmLoss} ≈ ln(vocabulary)`);
  assert.ok(last.mlmLoss < first.mlmLoss * 0.8, `MLM loss ${first.mlmLoss} → ${last.mlmLoss}`);
  assert.ok(last.mlmAccuracy > first.mlmAccuracy + 0.1, `MLM accuracy ${first.mlmAccuracy} → ${last.mlmAccuracy}`);
  assert.ok(last.nspAccuracy !== null && last.nspAccuracy >= 0 && last.nspAccuracy <= 1);
  assert.ok(last.predictions > 50 && last.pairs === 32);
  // HF BertForPreTraining layout, in the run directory and in each checkpoint.
  const weights = readSafetensors(join(runDir, 'model.safetensors'));
  for (const name of ['bert.embeddings.word_embeddings.weight', 'bert.encoder.layer.1.attention.self.query.weight', 'bert.pooler.dense.weight',
    'cls.predictions.bias', 'cls.predictions.transform.dense.weight', 'cls.seq_relationship.weight',
    'bert.encoder.layer.1.attention.self.distance_embedding.weight']) assert.ok(weights.has(name), name);
  // The default: relative_key distances (HF's key and table shape [2·max_position_embeddings − 1, head size]).
  const saved = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
  assert.equal(saved.position_embedding_type, 'relative_key');
  assert.deepEqual(weights.info('bert.encoder.layer.1.attention.self.distance_embedding.weight').shape, [2 * saved.max_position_embeddings - 1, 32]);
  assert.ok(existsSync(join(runDir, 'checkpoints', 'step-0000060', 'config.json')));
  assert.ok(existsSync(join(runDir, 'data', 'manifest.json')), 'the corpus was prepared into the run');

  const { model, tokenizer } = loadBert(runDir);
  assert.throws(() => fillMask(model, tokenizer, 'no mask here'), /no \[MASK\]/);
  // nsp: softmax of the seq_relationship logits of [CLS] A [SEP] B [SEP] with token types 0/1, index 0 = is next.
  const a = 'Cat sat on mat. Dog ran in park.';
  const b = 'Snow covers cold mountain.';
  const p = isNextProbability(model, tokenizer, a, b);
  const enc = tokenizer.encode(a, b);
  assert.equal(enc.typeIds.filter((t) => t === 1).length, tokenizer.encode(b, null, { addSpecialTokens: false }).ids.length + 1);
  const logits = model.forward({ inputIds: Int32Array.from(enc.ids), tokenTypeIds: Int32Array.from(enc.typeIds), batch: 1, length: enc.ids.length }).seqRelationshipLogits.data;
  assert.ok(Math.abs(p - 1 / (1 + Math.exp(logits[1]! - logits[0]!))) < 1e-6 && p > 0 && p < 1, `p ${p}`);
  assert.notEqual(isNextProbability(model, tokenizer, a, 'Bird sang from tree.'), p, 'B changes the answer');
  // The CLI commands print the same numbers.
  const program = new Command().exitOverride();
  registerBertCommands(program);
  const filled = await captureLog(() => program.parseAsync(['node', 'primer', 'fill-mask', '--model', runDir, '--text', 'Snow covers [MASK] mountain.', '--json', '--top-k', '2']));
  assert.deepEqual(JSON.parse(filled.join('\n')), fillMask(model, tokenizer, 'Snow covers [MASK] mountain.', { topK: 2 }));
  const nsp = await captureLog(() => program.parseAsync(['node', 'primer', 'nsp', '--model', runDir, '--a', a, '--b', b]));
  assert.equal(nsp[0], `is next: ${(100 * p).toFixed(2)}% (random: ${(100 * (1 - p)).toFixed(2)}%)`);
  assert.equal(recordedObjective(runDir), 'mlm+nsp', 'a run that trained its NSP head: nsp prints no warning');

  // The library refuses what the CLI refuses: a resume that would change the run, one with nothing left
  // to train, and a time limit of 0 — each before anything is written.
  const before = readFileSync(join(runDir, 'checkpoints', 'step-0000060', 'trainer_state.json'), 'utf8');
  await assert.rejects(pretrainBert({ ...base, resume: runDir, lr: 0.5, maskProbability: 0.15 }),
    (e: unknown) => e instanceof PrimerError && e.code === 'RESUME_CONFLICT' && e.message.includes('--lr 0.5 differs from the run\'s 0.003')
      && e.message.includes('--mask-prob 0.15 differs from the run\'s 0.4'));
  await assert.rejects(pretrainBert({ resume: runDir, out: join(dir, 'elsewhere'), log: () => {}, progress: false }),
    (e: unknown) => e instanceof PrimerError && e.code === 'RESUME_CONFLICT' && e.message.includes(`differs from the run's directory ${runDir}`));
  await assert.rejects(pretrainBert({ resume: runDir, log: () => {}, progress: false }),
    (e: unknown) => e instanceof PrimerError && e.code === 'NOTHING_TO_TRAIN' && e.message === 'already at step 60 of 60; nothing to train (raise --steps to continue)');
  await assert.rejects(pretrainBert({ resume: runDir, steps: 61, maxMinutes: 0, log: () => {}, progress: false }), /maxMinutes must be > 0, got 0/);
  assert.equal(readFileSync(join(runDir, 'checkpoints', 'step-0000060', 'trainer_state.json'), 'utf8'), before);
});

test('BERT position embeddings: absolute (BERT\'s original) trains with random attention; local attention needs relative_key', async () => {
  const r = await pretrainBert({ ...base, objective: 'mlm', steps: 2, evalEvery: 2, out: join(dir, 'run-absolute'), positionEmbedding: 'absolute' });
  assert.equal(r.modelConfig.position_embedding_type, undefined);
  assert.equal(r.config.attentionInit, 'random');
  assert.ok(!readSafetensors(join(dir, 'run-absolute', 'model.safetensors')).names.some((n) => n.includes('distance_embedding')));
  await assert.rejects(pretrainBert({ ...base, objective: 'mlm', steps: 2, out: join(dir, 'run-absolute-local'), positionEmbedding: 'absolute', attentionInit: 'local' }),
    /attention init "local" needs position embedding "relative_key"/);
  // An MLM-only run never trained its next-sentence head: `primer nsp` says so.
  assert.equal(recordedObjective(join(dir, 'run-absolute')), 'mlm');
  const program = new Command().exitOverride();
  registerBertCommands(program);
  const warnings: string[] = [];
  const error = console.error;
  console.error = (m: string) => warnings.push(String(m));
  try {
    await captureLog(() => program.parseAsync(['node', 'primer', 'nsp', '--model', join(dir, 'run-absolute'), '--a', 'Cat sat.', '--b', 'Dog ran.']));
  } finally {
    console.error = error;
  }
  assert.match(warnings.join('\n'), /was pre-trained with --objective mlm, so its next-sentence head was never trained/);
});

test('BERT pre-training splits train/validation by parts of long documents: the held-out share follows valFraction', async () => {
  const whole = await pretrainBert({ ...base, objective: 'mlm', steps: 1, evalEvery: 1, out: join(dir, 'run-whole-documents'), maxDocumentChars: 1 << 20 });
  const parts = await pretrainBert({ ...base, objective: 'mlm', steps: 1, evalEvery: 1, out: join(dir, 'run-parts'), maxDocumentChars: 120, valFraction: 0.25 });
  const manifest = (run: string) => JSON.parse(readFileSync(join(dir, run, 'data', 'manifest.json'), 'utf8'));
  const w = manifest('run-whole-documents');
  const p = manifest('run-parts');
  assert.equal(w.counts.splitLong, 0);
  assert.equal(w.counts.trainDocuments + w.counts.valDocuments + w.counts.duplicates, 48);
  assert.equal(p.options.maxDocumentChars, 120);
  assert.equal(parts.config.maxDocumentChars, 120);
  assert.equal(whole.config.maxDocumentChars, 1 << 20);
  // 48 documents of 300–600 characters become more than 150 parts (many repeat and are dropped as
  // duplicates: the topics cycle); about a quarter of the tokens is held out.
  assert.ok(p.counts.documentsRead > 150 && p.counts.splitLong > 100, JSON.stringify(p.counts));
  const share = p.counts.valTokens / (p.counts.trainTokens + p.counts.valTokens);
  assert.ok(share > 0.15 && share < 0.35, `held-out share ${share}`);
});

test('BERT MLM-only pre-training on packed blocks: the MLM loss falls, fill-mask predicts words of the right topic', async () => {
  const runDir = join(dir, 'run-mlm');
  const r = await pretrainBert({ ...base, objective: 'mlm', steps: 300, evalEvery: 150, out: runDir });
  const losses = r.history.map((h) => h.mlmLoss);
  assert.deepEqual(r.history.map((h) => h.step), [0, 150, 300]);
  assert.ok(losses[1]! < losses[0]! * 0.8 && losses[2]! < losses[1]!, `MLM loss ${losses.join(' → ')}`);
  assert.equal(r.metrics.nspAccuracy, null);
  // The final figures come from a larger held-out sample (finalEvalBatches) than the periodic ones.
  assert.ok(r.metrics.predictions > r.history[2]!.predictions, `final ${r.metrics.predictions} vs periodic ${r.history[2]!.predictions} predictions`);
  assert.ok(Math.abs(r.metrics.mlmLoss - losses[2]!) < 0.5, `final MLM loss ${r.metrics.mlmLoss} vs ${losses[2]}`);
  const { model, tokenizer } = loadBert(runDir);
  for (const [topic, text] of [[0, 'Cat sat on [MASK]. Dog ran in park.'], [2, 'She plays old piano. He [MASK] sad song.'], [3, 'Snow covers cold mountain. Wind [MASK] across sea.']] as const) {
    const [mask] = fillMask(model, tokenizer, text, { topK: tokenizer.vocabSize });
    const ranked = mask!.predictions;
    assert.equal(ranked.length, tokenizer.vocabSize);
    assert.ok(ranked.every((p, i) => i === 0 || p.probability <= ranked[i - 1]!.probability), 'most likely first');
    assert.ok(Math.abs(ranked.reduce((s, p) => s + p.probability, 0) - 1) < 1e-6, 'probabilities sum to 1');
    // The words the model expects come from the topic of the sentence around the mask.
    const words = ranked.filter((p) => /^[a-z]+$/.test(p.token));
    assert.ok(topicWords[topic]!.has(words[0]!.token), `"${text}": the most likely word "${words[0]!.token}" is not a topic-${topic} word`);
    const mass = (k: number) => ranked.filter((p) => topicWords[k]!.has(p.token)).reduce((s, p) => s + p.probability, 0);
    for (let other = 0; other < 4; other++) if (other !== topic) assert.ok(mass(topic) > 2 * mass(other), `topic ${topic} mass ${mass(topic)} vs topic ${other} ${mass(other)}`);
  }
});

test('BERT with --embedding-init ppmi: word embeddings start with the topics\' geometry (same topic closer than across)', async () => {
  const runDir = join(dir, 'run-ppmi');
  const lines: string[] = [];
  await pretrainBert({ ...base, objective: 'mlm+nsp', steps: 1, evalEvery: 1, out: runDir, embeddingInit: 'ppmi', log: (m) => lines.push(m) });
  assert.match(lines.join('\n'), /init: word embeddings from co-occurrence \(PPMI-SVD, \d+ of \d+ tokens\)/);
  const { model, tokenizer } = loadBert(runDir);
  const table = model.bert.embeddings.word_embeddings.weight;
  const d = table.shape[1]!;
  const vec = (w: string) => table.data.subarray(tokenizer.tokenToId(w)! * d, (tokenizer.tokenToId(w)! + 1) * d);
  const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let [ab, aa, bb] = [0, 0, 0];
    for (let i = 0; i < d; i++) [ab, aa, bb] = [ab + a[i]! * b[i]!, aa + a[i]! ** 2, bb + b[i]! ** 2];
    return ab / Math.sqrt(aa * bb);
  };
  const words = topicWords.map((t) => [...t].filter((w) => tokenizer.tokenToId(w) !== undefined));
  let [within, across, nw, na] = [0, 0, 0, 0];
  for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) for (const x of words[a]!) for (const y of words[b]!) {
    if (x === y) continue;
    if (a === b) [within, nw] = [within + cos(vec(x), vec(y)), nw + 1];
    else [across, na] = [across + cos(vec(x), vec(y)), na + 1];
  }
  assert.ok(nw > 50 && na > 200, `${nw} / ${na} word pairs`);
  assert.ok(within / nw > across / na + 0.1, `mean cosine within topics ${within / nw} vs across ${across / na}`);
});

test('runBertPretrain (the CLI path of primer pretrain --objective mlm) trains and saves a model', async () => {
  const out = join(dir, 'run-cli');
  const lines = await captureLog(() => runBertPretrain({
    objective: 'mlm', corpus: [corpus], vocabSize: 150, preset: 'tiny', layers: 1, dims: 32, heads: 2, blockSize: 32, batchSize: 4,
    steps: 3, evalEvery: 3, evalBatches: 1, workers: 0, out,
  }));
  assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'tokenizer.json')));
  assert.match(lines.join('\n'), /finished at step 3: MLM loss \d+\.\d+, MLM accuracy/);
  assert.match(lines[lines.length - 1]!, /Try: primer fill-mask --model /);
});

test('Chinese: sentences split at 。！？, a WordPiece BERT trains, and fill-mask runs on the seed example', async () => {
  const poems = [
    '床前明月光，疑是地上霜。举头望明月，低头思故乡。',
    '春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。',
    '白日依山尽，黄河入海流。欲穷千里目，更上一层楼。',
    '红豆生南国，春来发几枝。愿君多采撷，此物最相思。',
    '千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。',
    '今天天气真好，我们去公园吧！公园里有很多花。你想去吗？',
  ];
  const file = join(dir, 'poems.txt');
  writeFileSync(file, Array.from({ length: 8 }, () => poems.join('\n\n')).join('\n\n') + '\n');
  const out = join(dir, 'run-zh');
  const r = await pretrainBert({
    ...base, objective: 'mlm+nsp', corpus: [file], documents: 'blank-line', vocabSize: 200, steps: 10, evalEvery: 10, valFraction: 0, out,
  });
  const data = (await import('../../src/data/shards.ts')).openShards(join(out, 'data'));
  assert.equal(data.train.count, poems.length, 'duplicate poems removed, one document per poem');
  assert.equal(data.train.segments(0).length, 2, 'two sentences per poem');
  assert.ok(r.metrics.mlmLoss > 0 && Number.isFinite(r.metrics.mlmLoss));
  const { model, tokenizer } = loadBert(out);
  for (const text of ['今天天气真[MASK]，我们去公园吧。', '床前明月[MASK]']) {
    const [mask] = fillMask(model, tokenizer, text, { topK: 5 });
    assert.equal(mask!.predictions.length, 5);
    assert.ok(mask!.predictions.every((p) => p.probability > 0 && p.probability < 1 && tokenizer.tokenToId(p.token) === p.id));
  }
});
