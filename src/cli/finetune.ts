/**
 * `primer finetune` and task inference (`classify`, `tag`, `answer`); the few-shot, embedding,
 * retrieval and experiment commands are in finetune-tools.ts and registered from here too.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Command } from 'commander';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { loadBuiltinTask, BUILTIN_TASKS } from '../tasks/builtin.ts';
import { readSquad, readTextExamples, readTokenTagged, type QAExample, type TextExample, type TokenExample } from '../tasks/data.ts';
import { LabelMap, shuffled, splitDataset, stratifiedSample } from '../tasks/labels.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, type Pooling, type TaskModel } from '../tasks/heads.ts';
import { evaluateQA, evaluateTask, finetune, predictTags } from '../tasks/finetune.ts';
import { loadBackbone, loadTaskModelDir, saveTaskModelDir } from '../tasks/model-dir.ts';
import { collate, padTokenId } from '../tasks/encode.ts';
import { bestSpans, prepareQAFeatures, collateFeatures } from '../tasks/qa.ts';
import type { ClassificationReport } from '../tasks/metrics.ts';
import { action, choiceArg, floatArg, intArg } from './options.ts';
import { contextOf, formatClassificationReport, formatQA, inputTexts } from './finetune-format.ts';
import { registerFinetuneToolCommands } from './finetune-tools.ts';
import { addSftOptions, runSftCommand, type SftCommandOptions } from './adapt.ts';
import { loraSettingsFromFlags, type LoraFlags } from '../adapt/lora.ts';
import { addTaskLora, loadTaskAdapter, saveTaskAdapter } from '../adapt/lora-task.ts';

type TaskType = 'classify' | 'tag' | 'qa';

interface FinetuneFlags {
  model: string;
  task?: string;
  data?: string;
  valData?: string;
  testData?: string;
  textColumn?: string;
  pairColumn?: string;
  labelColumn?: string;
  type?: TaskType;
  labels?: number;
  epochs: number;
  lr: number;
  batchSize: number;
  maxLength?: number;
  stride?: number;
  freezeLayers?: number;
  freezeEmbeddings?: boolean;
  patience?: number;
  pooling?: Pooling;
  seed: number;
  out: string;
}

type AnyExamples = TextExample[] | TokenExample[] | QAExample[];

function typeOfData(path: string): TaskType {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'qa';
  if (['.conll', '.conllu', '.iob', '.bio', '.tags'].includes(ext)) return 'tag';
  return 'classify';
}

function readData(path: string, type: TaskType, f: FinetuneFlags): AnyExamples {
  if (!existsSync(path)) throw new RangeError(`--data: ${path} does not exist`);
  if (type === 'qa') return readSquad(path);
  if (type === 'tag') return readTokenTagged(path);
  return readTextExamples(path, { textColumn: f.textColumn, textPairColumn: f.pairColumn, labelColumn: f.labelColumn });
}

/** train/val/test: the built-in task's canonical split, given files, or a seeded 80/10/10 split of --data. */
function loadSplits(f: FinetuneFlags): { type: TaskType; train: AnyExamples; val: AnyExamples; test: AnyExamples; name: string } {
  if (f.task) {
    if (f.data) throw new RangeError('--task and --data are exclusive: a built-in task or your own file');
    const t = loadBuiltinTask(f.task);
    return { type: t.kind === 'classification' ? 'classify' : 'tag', train: t.train, val: t.val, test: t.test, name: f.task };
  }
  if (!f.data) throw new RangeError(`--task NAME (${BUILTIN_TASKS.join(', ')}) or --data FILE is required`);
  const type = f.type ?? typeOfData(f.data);
  const all = readData(f.data, type, f);
  if (f.valData || f.testData) {
    return { type, train: all, val: f.valData ? readData(f.valData, type, f) : [], test: f.testData ? readData(f.testData, type, f) : [], name: f.data };
  }
  const stratifyBy = type === 'classify' ? (x: TextExample) => x.label ?? '' : undefined;
  const s = splitDataset(all as TextExample[], { val: 0.1, test: 0.1, seed: 0, stratifyBy });
  return { type, ...(s as { train: AnyExamples; val: AnyExamples; test: AnyExamples }), name: f.data };
}

function evaluate(model: TaskModel, tokenizer: Tokenizer, examples: AnyExamples, f: FinetuneFlags): ClassificationReport | { exactMatch: number; f1: number; count: number } {
  if (model instanceof QuestionAnswering) {
    const r = evaluateQA(model, tokenizer, examples as QAExample[], { maxLength: f.maxLength, stride: f.stride });
    return { exactMatch: r.exactMatch, f1: r.f1, count: r.count };
  }
  return evaluateTask(model, tokenizer, examples as TextExample[], { maxLength: f.maxLength });
}

function printReport(r: ReturnType<typeof evaluate>, type: TaskType): void {
  console.log('exactMatch' in r ? formatQA(r) : formatClassificationReport(r, { tokens: type === 'tag' }));
}

async function runFinetune(f: FinetuneFlags & LoraFlags): Promise<void> {
  const { type, train: fullTrain, val, test, name } = loadSplits(f);
  if (fullTrain.length === 0) throw new RangeError(`${name}: no training examples`);
  const backbone = loadBackbone(f.model);
  const tokenizer = loadTokenizer(f.model);
  f = { ...f, maxLength: Math.min(f.maxLength ?? (type === 'qa' ? 384 : 128), contextOf(backbone)) };
  let model: TaskModel;
  let train: AnyExamples;
  if (type === 'classify') {
    const ex = fullTrain as TextExample[];
    const unlabelled = ex.find((x) => x.label === undefined);
    if (unlabelled) throw new RangeError(`${name}: an example has no label${unlabelled.where ? ` (${unlabelled.where.file}:${unlabelled.where.line})` : ''}`);
    model = new SequenceClassifier(backbone, LabelMap.fromLabels(ex.map((x) => x.label)), { seed: f.seed, pooling: f.pooling });
    train = f.labels ? stratifiedSample(ex, f.labels, (x) => x.label!, f.seed) : ex;
  } else if (type === 'tag') {
    const ex = fullTrain as TokenExample[];
    model = new TokenClassifier(backbone, LabelMap.fromLabels(ex.flatMap((x) => x.tags)), { seed: f.seed });
    train = f.labels ? shuffled(ex, f.seed).slice(0, f.labels) : ex;
  } else {
    model = new QuestionAnswering(backbone, { seed: f.seed });
    train = f.labels ? shuffled(fullTrain as QAExample[], f.seed).slice(0, f.labels) : (fullTrain as QAExample[]);
  }
  // Unknown labels in val/test fail now (naming file, line and column), not after training.
  if (model instanceof SequenceClassifier) for (const split of [val, test]) model.labels.encode(split as TextExample[]);
  if (model instanceof TokenClassifier) for (const split of [val, test]) for (const ex of split as TokenExample[]) model.labels.encodeTags(ex);
  console.log(`fine-tuning ${model.architecture} (${f.model}) on ${name}: ${train.length} training examples${f.labels ? ` (--labels ${f.labels}, seed ${f.seed})` : ''}, ${val.length} validation, ${test.length} test`);
  const loraSettings = loraSettingsFromFlags(f);
  const peft = loraSettings ? addTaskLora(model, loraSettings, { seed: f.seed, baseModel: f.model }) : null;
  if (peft) console.log(`LoRA r=${loraSettings!.r} on ${peft.layers.size} layers + head ${[...peft.savedModules.keys()].join(', ')}: ${peft.numParameters().toLocaleString('en-US')} trainable parameters`);
  const r = await finetune({
    model: model as SequenceClassifier, tokenizer, train: train as TextExample[], val: val as TextExample[], runDir: f.out,
    epochs: f.epochs, lr: f.lr, batchSize: f.batchSize, maxLength: f.maxLength, stride: f.stride, seed: f.seed, patience: f.patience,
    freeze: f.freezeLayers || f.freezeEmbeddings ? { layers: f.freezeLayers, embeddings: f.freezeEmbeddings } : undefined,
    trainable: peft ?? undefined,
    onEpoch: (e) => {
      const v = e.val as (ClassificationReport & { exactMatch?: number; f1?: number }) | null;
      const score = !v ? '' : 'exactMatch' in v && v.exactMatch !== undefined ? `, val EM ${(100 * v.exactMatch).toFixed(1)}% F1 ${(100 * v.f1!).toFixed(1)}%` : `, val accuracy ${(100 * v.accuracy).toFixed(1)}% macro-F1 ${(100 * v.macroF1).toFixed(1)}%`;
      console.log(`epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}${score}`);
    },
  });
  if (r.stoppedEarly) console.log(`stopped early: no better validation score for ${f.patience} epochs`);
  if (r.bestMetric !== null) console.log(`best epoch ${r.bestEpoch} (its weights are kept)`);
  // The per-epoch checkpoint only served the epoch loop; the saved model is the best epoch.
  rmSync(join(f.out, 'checkpoints'), { recursive: true, force: true });
  if (peft) saveTaskAdapter(f.out, peft, model, tokenizer);
  else saveTaskModelDir(f.out, model, tokenizer);
  const results: Record<string, unknown> = { task: name, type, trainExamples: train.length, bestEpoch: r.bestEpoch, history: r.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss })) };
  if (test.length) {
    const report = evaluate(model, tokenizer, test, f);
    console.log(`\ntest (${name}):`);
    printReport(report, type);
    results.test = report;
  }
  writeFileSync(join(f.out, 'eval_results.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(`\nmodel saved to ${f.out}`);
}

/** A task model directory, a LoRA task adapter directory, or a base model directory plus `adapter`. */
function loadTask<T extends TaskModel>(dir: string, kind: new (...a: never[]) => T, what: string, adapter?: string): { model: T; tokenizer: Tokenizer } {
  const adapterDir = adapter ?? (existsSync(join(dir, 'adapter_config.json')) ? dir : undefined);
  const model = adapterDir ? loadTaskAdapter(adapterDir, adapter ? dir : undefined) : loadTaskModelDir(dir);
  if (!(model instanceof kind)) throw new RangeError(`${adapterDir ?? dir} holds a ${model.architecture}, not a ${what} model`);
  const tokDir = adapterDir && ['tokenizer.json', 'vocab.txt'].some((f) => existsSync(join(adapterDir, f))) ? adapterDir : dir;
  return { model, tokenizer: loadTokenizer(tokDir) };
}

function classify(o: { model: string; adapter?: string; text?: string[]; json?: boolean }): void {
  const { model, tokenizer } = loadTask(o.model, SequenceClassifier, 'sequence classification', o.adapter);
  const texts = inputTexts(o.text);
  model.eval();
  for (const text of texts) {
    const batch = collate([tokenizer.encode(text, null, { maxLength: Math.min(128, contextOf(model.backbone)) })], padTokenId(tokenizer));
    // p_k = exp(z_k − max z) / Σ_j exp(z_j − max z)
    const probs = noGrad(() => withScope(() => {
      const z = Array.from(model.forward(batch).logits.data);
      const max = Math.max(...z);
      const e = z.map((v) => Math.exp(v - max));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    }));
    const best = probs.indexOf(Math.max(...probs));
    const label = model.labels.label(best);
    if (o.json) console.log(JSON.stringify({ text, label, score: probs[best], scores: Object.fromEntries(model.labels.labels.map((l, i) => [l, probs[i]])) }));
    else console.log(`${label}\t${probs[best]!.toFixed(4)}\t${text}`);
  }
}

/** Words as the tagger sees them: letter/digit runs (with inner apostrophes) and single punctuation marks. */
export function splitWords(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+(?:['’][\p{L}]+)*|[^\s\p{L}\p{N}]/gu) ?? [];
}

function tag(o: { model: string; text?: string[]; json?: boolean }): void {
  const { model, tokenizer } = loadTask(o.model, TokenClassifier, 'token classification');
  for (const text of inputTexts(o.text)) {
    const words = splitWords(text);
    if (words.length === 0) throw new RangeError('tag: the text has no words');
    const [tags] = predictTags(model, tokenizer, [words]);
    const named = [...tags!].map((t) => (t < 0 ? null : model.labels.label(t)));
    if (o.json) console.log(JSON.stringify(words.map((w, i) => ({ word: w, tag: named[i] }))));
    else console.log(words.map((w, i) => `${w}/${named[i] ?? '?'}`).join(' '));
  }
}

function answer(o: { model: string; question: string; context?: string; contextFile?: string; maxLength?: number; stride?: number; json?: boolean }): void {
  const { model, tokenizer } = loadTask(o.model, QuestionAnswering, 'question answering');
  const context = o.context ?? (o.contextFile ? readFileSync(o.contextFile, 'utf8') : undefined);
  if (!context?.trim()) throw new RangeError('--context TEXT or --context-file FILE is required (and must not be empty)');
  if (!o.question.trim()) throw new RangeError('--question must not be empty');
  const maxLength = Math.min(o.maxLength ?? 384, contextOf(model.backbone));
  const examples: QAExample[] = [{ id: 'q', question: o.question, context, answers: [] }];
  const features = prepareQAFeatures(tokenizer, examples, { maxLength, stride: o.stride ?? Math.floor(maxLength / 4) });
  model.eval();
  const starts: Float64Array[] = [];
  const ends: Float64Array[] = [];
  noGrad(() => withScope(() => {
    const batch = collateFeatures(tokenizer, features);
    const out = model.forward(batch);
    for (let r = 0; r < batch.batch; r++) {
      starts.push(Float64Array.from(out.startLogits.data.subarray(r * batch.length, (r + 1) * batch.length)));
      ends.push(Float64Array.from(out.endLogits.data.subarray(r * batch.length, (r + 1) * batch.length)));
    }
  }));
  const [span] = bestSpans(examples, features, starts, ends);
  if (!span) throw new RangeError('answer: the context has no tokens');
  if (o.json) console.log(JSON.stringify({ answer: span.text, start: span.start, end: span.end, score: span.score }));
  else console.log(`${span.text}\t(characters ${span.start}–${span.end}, score ${span.score.toFixed(3)})`);
}

/** `--objective sft`: generative fine-tuning (src/adapt); the flags keep their finetune meaning. */
async function runFinetuneOrSft(f: FinetuneFlags & Omit<SftCommandOptions, 'model' | 'data' | 'out'> & { objective?: 'task' | 'sft' }, cmd: Command): Promise<void> {
  if (f.objective !== 'sft') return runFinetune(f);
  const given = (name: string) => cmd.getOptionValueSource(name) !== 'default';
  await runSftCommand({
    ...f, data: f.data ?? (f.task ? `builtin:${f.task}` : (() => { throw new RangeError('--objective sft needs --data FILE.jsonl (or --task sentiment)'); })()),
    lr: given('lr') ? f.lr : undefined, batchSize: given('batchSize') ? f.batchSize : undefined,
    epochs: given('epochs') ? f.epochs : undefined,
  });
}

export function registerFinetuneCommands(program: Command): void {
  addSftOptions(program
    .command('finetune'))
    .description('fine-tune a pre-trained GPT or BERT on a labelled task (classification, tagging or extractive QA) and report test metrics')
    .requiredOption('--model <dir>', 'pre-trained model directory (config.json, model.safetensors, tokenizer)')
    .option('--task <name>', `built-in task: ${BUILTIN_TASKS.join(', ')}`)
    .option('--data <file>', 'your data: .csv/.tsv/.jsonl (classification), .conll (token tags), .json (SQuAD QA)')
    .option('--val-data <file>', 'validation file (default: 10% of --data)')
    .option('--test-data <file>', 'test file (default: 10% of --data)')
    .option('--text-column <name>', 'column/key holding the text (default "text")')
    .option('--pair-column <name>', 'column/key holding the second text of a pair')
    .option('--label-column <name>', 'column/key holding the label (default "label")')
    .option('--type <type>', 'classify, tag or qa (default: from the task or the file extension)', choiceArg(['classify', 'tag', 'qa'] as const))
    .option('--labels <n>', 'use only N labelled training examples (stratified by class, drawn with --seed)', intArg(1))
    .option('--epochs <n>', 'epochs', intArg(1), 3)
    .option('--lr <x>', 'peak learning rate (AdamW, 10% warmup, linear decay)', floatArg(0), 5e-5)
    .option('--batch-size <n>', 'examples per batch', intArg(1), 16)
    .option('--max-length <n>', 'tokens per example (QA: per window; default 128, QA 384, at most the model context)', intArg(8))
    .option('--stride <n>', 'QA: tokens shared by consecutive context windows', intArg(1))
    .option('--freeze-layers <n>', 'freeze the first N transformer layers', intArg(0))
    .option('--freeze-embeddings', 'freeze the embeddings')
    .option('--patience <n>', 'stop after N epochs without a better validation score', intArg(1))
    .option('--pooling <mode>', 'classification pooling: GPT last|mean, BERT pooler|cls|mean', choiceArg(['pooler', 'cls', 'last', 'mean'] as const))
    .option('--seed <n>', 'random seed (label sample, head init, batch order)', intArg(0), 0)
    .requiredOption('--out <dir>', 'output directory for the fine-tuned model (Hugging Face layout)')
    .action(action(runFinetuneOrSft));

  program.command('classify').description('classify texts with a fine-tuned sequence classifier')
    .requiredOption('--model <dir>', 'fine-tuned model directory').option('--text <texts...>', 'texts (default: one per stdin line)')
    .option('--json', 'one JSON object per text with all class probabilities')
    .option('--adapter <dir>', 'a LoRA classification adapter (PEFT layout) trained on --model')
    .action(action(classify));
  program.command('tag').description('tag the words of texts with a fine-tuned token classifier')
    .requiredOption('--model <dir>', 'fine-tuned model directory').option('--text <texts...>', 'texts (default: one per stdin line)')
    .option('--json', 'JSON output')
    .action(action(tag));
  program.command('answer').description('extract the answer to a question from a context with a fine-tuned QA model')
    .requiredOption('--model <dir>', 'fine-tuned model directory').requiredOption('--question <text>', 'the question')
    .option('--context <text>', 'the context').option('--context-file <file>', 'read the context from a file')
    .option('--max-length <n>', 'tokens per window (default 384)', intArg(8)).option('--stride <n>', 'tokens shared by windows', intArg(1))
    .option('--json', 'JSON output')
    .action(action(answer));
  registerFinetuneToolCommands(program);
}
