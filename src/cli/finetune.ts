/**
 * `primer finetune` and task inference (`classify`, `tag`, `answer`); the few-shot, embedding,
 * retrieval and experiment commands are in finetune-tools.ts and registered from here too.
 */
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { BUILTIN_TASKS } from '../tasks/builtin.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, type Pooling } from '../models/heads.ts';
import { DATA_EXTENSIONS, TASK_FINETUNE_KEYS, finetuneTask, testSplitName, type TaskType } from '../tasks/task-run.ts';
import { answerQuestion, classifyTexts, tagTexts } from '../tasks/task-infer.ts';
import type { ClassificationReport } from '../tasks/metrics.ts';
import { action, choiceArg, floatArg, intArg } from './options.ts';
import { refuseOutputOverInput } from '../io/paths.ts';
import { formatClassificationReport, formatQA, inputTexts } from './finetune-format.ts';
import { registerFinetuneToolCommands } from './finetune-tools.ts';
import { addSftOptions, runSftCommand, type SftCommandOptions } from './adapt.ts';
import { loraSettingsFromFlags, type LoraFlags } from '../adapt/lora.ts';
import { loadTaskModelForInference, taskLoraAdapter } from '../adapt/lora-task.ts';

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

const WANTED: Record<TaskType | 'any', string> = {
  any: '.csv, .tsv, .jsonl, .conll, or SQuAD .json', classify: '.csv, .tsv or .jsonl', tag: '.conll: token<TAB>tag lines', qa: 'SQuAD .json',
};

/**
 * The data flags, checked by name before any model loads: the readers only see a path, and reported
 * a directory as the unknown extension "" with advice meant for library callers ("pass format").
 */
export function checkDataFlags(f: Pick<FinetuneFlags, 'task' | 'data' | 'valData' | 'testData' | 'type'>): void {
  const ext = f.data === undefined ? '' : extname(f.data).toLowerCase();
  const byExt = (Object.keys(DATA_EXTENSIONS) as TaskType[]).find((t) => DATA_EXTENSIONS[t].exts.includes(ext));
  for (const [flag, path] of [['--data', f.data], ['--val-data', f.valData], ['--test-data', f.testData]] as const) {
    if (path === undefined) continue;
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) throw new RangeError(`${flag} ${path} does not exist`);
    // --val-data and --test-data are read as the type --data implies.
    const type = f.type ?? (flag === '--data' ? undefined : byExt);
    if (st.isDirectory()) throw new RangeError(`${flag} ${path} is a directory; give a file (${WANTED[type ?? 'any']})`);
  }
  if (!f.data || f.type || f.task || byExt) return;
  const known = Object.values(DATA_EXTENSIONS).map((k) => `${k.exts.join(' ')} (${k.what})`);
  throw new RangeError(`--data ${f.data}: cannot tell the format from ${ext ? `the extension "${ext}"` : 'a name without an extension'}; supported: ${known.slice(0, -1).join(', ')} and ${known.at(-1)}; for a CoNLL or SQuAD file named otherwise add --type tag or --type qa`);
}

async function runFinetune(f: FinetuneFlags & LoraFlags): Promise<void> {
  checkDataFlags(f);
  const lora = loraSettingsFromFlags(f);
  // Only finetuneTask's own options: the command's SFT and LoRA flags are not options of it (it refuses unknown ones).
  const task = Object.fromEntries(Object.entries(f).filter(([k]) => Object.hasOwn(TASK_FINETUNE_KEYS, k))) as unknown as FinetuneFlags;
  const r = await finetuneTask({
    ...task, adapter: lora ? taskLoraAdapter(lora, { seed: f.seed, baseModel: f.model }) : undefined,
    onEpoch: (e) => {
      const v = e.val as (ClassificationReport & { exactMatch?: number; f1?: number }) | null;
      const score = !v ? '' : 'exactMatch' in v && v.exactMatch !== undefined ? `, val EM ${(100 * v.exactMatch).toFixed(1)}% F1 ${(100 * v.f1!).toFixed(1)}%` : `, val accuracy ${(100 * v.accuracy).toFixed(1)}% macro-F1 ${(100 * v.macroF1).toFixed(1)}%`;
      console.log(`epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}${score}`);
    },
  });
  if (r.interrupted) {
    // Like `primer pretrain`: 130 for Ctrl-C, 143 for SIGTERM, once the best finished epoch is on disk (finetuneTask said what was saved).
    process.exitCode = r.signal === 'SIGTERM' ? 143 : 130;
    return;
  }
  if (r.test) {
    console.log(`\ntest (${testSplitName(f)}):`);
    console.log('exactMatch' in r.test ? formatQA(r.test) : formatClassificationReport(r.test, { tokens: r.type === 'tag' }));
  }
  console.log(`\nmodel saved to ${f.out}`);
}

function classify(o: { model: string; adapter?: string; text?: string[]; json?: boolean }): void {
  const { model, tokenizer } = loadTaskModelForInference(o.model, SequenceClassifier, 'sequence classification', o.adapter);
  for (const c of classifyTexts(model, tokenizer, inputTexts(o.text))) {
    if (o.json) console.log(JSON.stringify({ text: c.text, label: c.label, score: c.score, scores: c.scores }));
    else console.log(`${c.label}\t${c.score.toFixed(4)}\t${c.text}`);
  }
}

function tag(o: { model: string; text?: string[]; json?: boolean }): void {
  const { model, tokenizer } = loadTaskModelForInference(o.model, TokenClassifier, 'token classification');
  for (const tagged of tagTexts(model, tokenizer, inputTexts(o.text))) {
    if (o.json) console.log(JSON.stringify(tagged));
    else console.log(tagged.map((t) => `${t.word}/${t.tag ?? '?'}`).join(' '));
  }
}

function answer(o: { model: string; question: string; context?: string; contextFile?: string; maxLength?: number; stride?: number; json?: boolean }): void {
  const { model, tokenizer } = loadTaskModelForInference(o.model, QuestionAnswering, 'question answering');
  if (o.context !== undefined && o.contextFile !== undefined) throw new RangeError('give --context or --context-file, not both');
  if (o.contextFile !== undefined && !statSync(o.contextFile, { throwIfNoEntry: false })?.isFile()) throw new RangeError(`--context-file ${o.contextFile} is not a readable file`);
  const context = o.context ?? (o.contextFile ? readFileSync(o.contextFile, 'utf8') : undefined);
  if (!context?.trim()) throw new RangeError('--context TEXT or --context-file FILE is required (and must not be empty)');
  if (!o.question.trim()) throw new RangeError('--question must not be empty');
  const span = answerQuestion(model, tokenizer, o.question, context, { maxLength: o.maxLength, stride: o.stride });
  if (o.json) console.log(JSON.stringify({ answer: span.text, start: span.start, end: span.end, score: span.score }));
  else console.log(`${span.text}\t(characters ${span.start}–${span.end}, score ${span.score.toFixed(3)})`);
}

type FinetuneOrSftFlags = Omit<FinetuneFlags, 'model' | 'out'> & Omit<SftCommandOptions, 'data'> & { model?: string; out?: string; objective?: 'task' | 'sft' };

/** `--objective sft`: generative fine-tuning (src/adapt); the flags keep their finetune meaning. */
async function runFinetuneOrSft(f: FinetuneOrSftFlags, cmd: Command): Promise<void> {
  const sftData = (d: { data?: string; task?: string }) => d.data ?? (d.task ? `builtin:${d.task}` : undefined);
  if (f.resume) {
    // The run's settings come from its checkpoint, so only what the user typed is checked against
    // them, never a default (finetune's own --lr 5e-5 or --seed 0 would conflict with most runs).
    const typed = Object.fromEntries(Object.entries(f).filter(([k]) => cmd.getOptionValueSource(k) === 'cli')) as FinetuneOrSftFlags;
    if (typed.objective === 'task') throw new RangeError('--resume continues an SFT run (--objective sft); task fine-tuning cannot be resumed');
    await runSftCommand({ ...typed, data: sftData(typed), resume: f.resume });
    return;
  }
  const { model, out } = f;
  if (model === undefined || out === undefined) {
    throw new RangeError(`required option '${model === undefined ? '--model' : '--out'} <dir>' not specified (--resume DIR continues an SFT run without it)`);
  }
  refuseOutputOverInput(out, { '--model': model });
  if (f.objective !== 'sft') return runFinetune({ ...f, model, out });
  const given = (name: string) => cmd.getOptionValueSource(name) !== 'default';
  await runSftCommand({
    ...f, data: sftData(f) ?? (() => { throw new RangeError('--objective sft needs --data FILE.jsonl (or --task sentiment)'); })(),
    lr: given('lr') ? f.lr : undefined, batchSize: given('batchSize') ? f.batchSize : undefined,
    epochs: given('epochs') ? f.epochs : undefined,
  });
}

export function registerFinetuneCommands(program: Command): void {
  addSftOptions(program
    .command('finetune'))
    .description('fine-tune a pre-trained GPT-2, BERT or Llama-family model on a labelled task (classification, tagging; extractive QA: GPT-2 or BERT) and report test metrics; '
      + '--objective sft: instruction tuning, which --resume continues')
    .option('--model <dir>', 'pre-trained model directory (config.json, model.safetensors, tokenizer); required unless --resume')
    .option('--task <name>', `built-in task: ${BUILTIN_TASKS.join(', ')}`)
    .option('--data <file>', 'your data: .csv/.tsv/.jsonl (classification), .conll (token tags), .json (SQuAD QA)')
    .option('--val-data <file>', 'validation file (default: 10% of --data, held out from training)')
    .option('--test-data <file>', 'test file (default: 10% of --data, held out from training)')
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
    .option('--out <dir>', 'output directory for the fine-tuned model (Hugging Face layout); required unless --resume')
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
