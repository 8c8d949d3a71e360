/**
 * `primer eval few-shot`, `primer embed`, `primer index build`, `primer search` and
 * `primer experiment label-efficiency`: option parsing and printing over src/tasks/{fewshot,embed,
 * retrieval,experiment}.ts.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadAnyModelDir } from '../models/load.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { loadBuiltinTask, BUILTIN_TASKS } from '../tasks/builtin.ts';
import { defaultTemplate, evaluateFewShot, fewShotTestSet, type PromptTemplate } from '../tasks/fewshot.ts';
import { EMBEDDING_POOLINGS, TextTooLongError, embedTexts, loadEmbedder, type EmbeddingPooling, type Embeddings } from '../tasks/embed.ts';
import { buildIndex, loadIndex, readDocuments, searchIndex } from '../tasks/retrieval.ts';
import { labelEfficiency } from '../tasks/experiment.ts';
import { prepareExperimentCorpus } from '../tasks/experiment-corpus.ts';
import { FEW_LABEL_METHODS, type FewLabelMethod } from '../tasks/fewlabel.ts';
import { evaluateTask } from '../tasks/finetune.ts';
import { loadTaskModelDir } from '../models/model-dir.ts';
import { SequenceClassifier, contextLength } from '../models/heads.ts';
import { action, choiceArg, floatArg, intArg } from './options.ts';
import { refuseOutputOverInput } from '../io/paths.ts';
import { inputTexts, percent } from './finetune-format.ts';

/** "0,4,16" → [0, 4, 16] (integers ≥ min). */
export function intListArg(min = 0) {
  return (value: string): number[] => {
    const xs = value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    if (xs.length === 0 || xs.some((n) => !Number.isInteger(n) || n < min)) throw new InvalidArgumentError(`expected comma-separated integers ≥ ${min}, got "${value}"`);
    return xs;
  };
}

interface FewShotFlags {
  model: string;
  task: string;
  shots: number[];
  limit?: number;
  seed: number;
  template?: string;
  verbalizers?: string;
  finetuned?: string;
  json?: boolean;
}

function fewShot(f: FewShotFlags): void {
  const loaded = loadAnyModelDir(f.model);
  if (loaded.kind === 'bert') throw new RangeError(`eval few-shot: ${f.model} is a bert model; few-shot prompting needs a causal LM (GPT-2, Llama, Qwen2)`);
  const tokenizer = loadTokenizer(f.model);
  const task = loadBuiltinTask(f.task);
  if (task.kind !== 'classification') throw new RangeError(`eval few-shot: task "${f.task}" is token classification; few-shot needs a text classification task`);
  const base = defaultTemplate(f.task, task.labels.labels);
  let verbalizers = base.verbalizers;
  if (f.verbalizers) {
    try {
      verbalizers = JSON.parse(f.verbalizers) as Record<string, string>;
    } catch (e) {
      throw new RangeError(`--verbalizers: not a JSON object of label → text (${(e as Error).message})`);
    }
  }
  const template: PromptTemplate = { ...base, input: f.template?.replaceAll('\\n', '\n') ?? base.input, verbalizers };
  const t = performance.now();
  const r = evaluateFewShot({
    model: loaded.model, tokenizer, train: task.train, test: task.test, shots: f.shots, template, seed: f.seed, limit: f.limit,
    onProgress: (done, total, k) => {
      if (process.stderr.isTTY && (done % 10 === 0 || done === total)) process.stderr.write(`\r${k}-shot: ${done}/${total}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  let finetuned: { accuracy: number; macroF1: number } | null = null;
  if (f.finetuned) {
    const model = loadTaskModelDir(f.finetuned);
    if (!(model instanceof SequenceClassifier)) throw new RangeError(`--finetuned: ${f.finetuned} is not a sequence classifier`);
    const rep = evaluateTask(model, loadTokenizer(f.finetuned), fewShotTestSet(task.test, f.limit, f.seed), { maxLength: Math.min(128, contextLength(model.backbone)) });
    finetuned = { accuracy: rep.accuracy, macroF1: rep.macroF1 };
  }
  if (f.json) {
    console.log(JSON.stringify({ task: f.task, count: r.count, majority: r.majority, finetuned, results: r.results.map(({ report, ...x }) => ({ ...x, confusion: report.confusion })) }, null, 2));
    return;
  }
  console.log(`few-shot ${f.task} with ${f.model} (${r.count} test examples, template ${JSON.stringify(template.input)}, ${((performance.now() - t) / 1000).toFixed(0)}s)`);
  console.log('shots  used   accuracy  macro-F1');
  for (const x of r.results) console.log(`${String(x.shots).padStart(5)}  ${x.meanShotsUsed.toFixed(1).padStart(4)}  ${percent(x.accuracy).padStart(9)}  ${percent(x.macroF1).padStart(8)}`);
  console.log(`majority-class baseline ("${r.majority.label}"): ${percent(r.majority.accuracy)}`);
  if (finetuned) console.log(`fine-tuned (${f.finetuned}): accuracy ${percent(finetuned.accuracy)}, macro-F1 ${percent(finetuned.macroF1)}`);
  if (r.results.some((x) => x.meanShotsUsed < x.shots)) console.log('(fewer shots than asked where the prompt did not fit the model\'s context)');
}

function embed(o: { model: string; text?: string[]; pooling: EmbeddingPooling; maxLength?: number }): void {
  const { backbone, tokenizer } = loadEmbedder(o.model);
  const texts = inputTexts(o.text, { aligned: 'embed' });
  // As /v1/embeddings: a text the model cannot read whole is refused, unless --max-length asks for a cut.
  const limit = o.maxLength !== undefined ? { maxLength: o.maxLength } : { maxLength: contextLength(backbone), overflow: 'error' as const };
  let e: Embeddings;
  try {
    e = embedTexts(backbone, tokenizer, texts, { pooling: o.pooling, ...limit });
  } catch (err) {
    if (err instanceof TextTooLongError) err.message += '; --max-length N embeds each text\'s first N tokens';
    throw err;
  }
  for (let i = 0; i < e.count; i++) console.log(JSON.stringify(Array.from(e.vectors.subarray(i * e.dim, (i + 1) * e.dim), (v) => Number(v.toPrecision(6)))));
}

function indexBuild(o: { model: string; docs: string; out: string; pooling: EmbeddingPooling; maxLength?: number; textColumn?: string }): void {
  refuseOutputOverInput(o.out, { '--model': o.model, '--docs': o.docs });
  const documents = readDocuments(o.docs, { textColumn: o.textColumn });
  const t = performance.now();
  const info = buildIndex({ modelDir: o.model, documents, out: o.out, pooling: o.pooling, maxLength: o.maxLength });
  console.log(`indexed ${info.count} documents (${info.dim}-dim ${info.pooling}-pooled embeddings) in ${((performance.now() - t) / 1000).toFixed(1)}s → ${o.out}`);
  if (o.maxLength !== undefined && o.maxLength > info.maxLength) console.log(`(--max-length ${o.maxLength} is more than the model's context: documents were cut at ${info.maxLength} tokens)`);
}

function search(o: { index: string; query: string; k: number; json?: boolean }): void {
  const index = loadIndex(o.index);
  const hits = searchIndex(index, o.query, o.k);
  if (o.json) {
    console.log(JSON.stringify(hits, null, 2));
    return;
  }
  for (const h of hits) {
    const text = h.text.replace(/\s+/g, ' ');
    console.log(`${h.rank}. ${h.score.toFixed(4)}  ${h.id}  ${text.length > 100 ? `${text.slice(0, 100)}…` : text}`);
  }
}

interface ExperimentFlags {
  task?: string;
  data?: string;
  valData?: string;
  testData?: string;
  textColumn?: string;
  labelColumn?: string;
  labels: number[];
  seeds: number;
  model?: string;
  backbone?: 'gpt' | 'bert';
  methods?: string;
  template?: string;
  verbalizer?: string;
  out?: string;
  epochs?: number;
  lr?: number;
  promptLr?: number;
  batchSize?: number;
  pretrainMinutes?: number;
  pretrainSteps?: number;
  testExamples?: number;
  scoreSplit?: 'test' | 'val';
  freezeEmbeddings?: boolean;
  patience?: number;
  minSteps?: number;
  maxEpochs?: number;
  headEpochs?: number;
  headLr?: number;
  domainText?: boolean;
}

async function experiment(f: ExperimentFlags): Promise<void> {
  if (f.task && f.data) throw new InvalidArgumentError('give --task or --data, not both');
  const task = f.data ? undefined : (f.task ?? 'sentiment');
  const name = task ?? basename(f.data!).replace(/\.[^.]+$/, '');
  const out = resolve(f.out ?? join('runs', `label-efficiency-${name}`));
  const methods = f.methods?.split(',').map((m) => m.trim()).filter(Boolean);
  for (const m of methods ?? []) if (!(FEW_LABEL_METHODS as readonly string[]).includes(m)) throw new InvalidArgumentError(`--methods: unknown method "${m}" (choose from ${FEW_LABEL_METHODS.join(', ')})`);
  const r = await labelEfficiency({
    task, data: f.data, valData: f.valData, testData: f.testData, textColumn: f.textColumn, labelColumn: f.labelColumn,
    labels: f.labels, seeds: f.seeds, model: f.model, backbone: f.backbone, out, testExamples: f.testExamples, scoreSplit: f.scoreSplit, domainText: f.domainText,
    methods: methods as FewLabelMethod[] | undefined, template: f.template?.replace(/\\n/g, '\n'), verbalizer: f.verbalizer,
    recipe: { epochs: f.epochs, lr: f.lr, promptLr: f.promptLr, batchSize: f.batchSize, freezeEmbeddings: f.freezeEmbeddings, patience: f.patience, minSteps: f.minSteps, maxEpochs: f.maxEpochs, headEpochs: f.headEpochs, headLr: f.headLr },
    pretrainMinutes: f.pretrainMinutes,
    pretrain: f.model || f.pretrainSteps === undefined ? undefined : { steps: f.pretrainSteps },
  });
  console.log(`\n${readFileSync(r.files.table, 'utf8')}`);
  console.log(`total ${(r.seconds / 60).toFixed(1)} minutes; wrote ${r.files.results}, ${r.files.table}, ${r.files.plot}, ${r.files.probabilities}`);
}

export function registerFinetuneToolCommands(program: Command): void {
  const evalGroup = program.command('eval').description('evaluate models without fine-tuning');
  evalGroup.command('few-shot').description('zero/few-shot classification by prompting a causal LM (GPT-2, Llama, Qwen2): the verbalizer with the highest log-likelihood wins')
    .requiredOption('--model <dir>', 'causal LM directory (GPT-2, Llama, Qwen2)')
    .option('--task <name>', `built-in classification task (${BUILTIN_TASKS.filter((t) => t !== 'pos').join(', ')})`, 'sentiment')
    .option('--shots <list>', 'numbers of demonstrations, e.g. 0,4,16', intListArg(0), [0, 4, 16])
    .option('--limit <n>', 'score a stratified subset of N test examples (default: all)', intArg(1))
    .option('--seed <n>', 'seed of the demonstration draws', intArg(0), 0)
    .option('--template <text>', 'input template with {text} (\\n for newlines), default "Review: {text}\\nSentiment:" for sentiment')
    .option('--verbalizers <json>', 'label → continuation, e.g. \'{"positive":" good","negative":" bad"}\'')
    .option('--finetuned <dir>', 'also report this fine-tuned classifier on the same test examples')
    .option('--json', 'JSON output')
    .action(action(fewShot));

  program.command('embed').description('L2-normalised sentence embeddings (one JSON array per text)')
    .requiredOption('--model <dir>', 'GPT-2, BERT or Llama-family model directory').option('--text <texts...>', 'texts (default: one per stdin line, none empty)')
    .option('--pooling <mode>', 'mean, cls (BERT) or last (GPT)', choiceArg(EMBEDDING_POOLINGS), 'mean')
    .option('--max-length <n>', 'embed each text\'s first n tokens (default: a text longer than the model\'s context is refused)', intArg(1))
    .action(action(embed));

  const indexGroup = program.command('index').description('dense retrieval indexes');
  indexGroup.command('build').description('embed a document collection into an index directory (sentence-transformers layout)')
    .requiredOption('--model <dir>', 'GPT-2, BERT or Llama-family model directory')
    .requiredOption('--docs <path>', 'a directory of .txt/.md files, a .jsonl ("text", "id"), a .csv/.tsv or a text file with one document per line')
    .requiredOption('--out <dir>', 'index directory')
    .option('--pooling <mode>', 'mean, cls (BERT) or last (GPT)', choiceArg(EMBEDDING_POOLINGS), 'mean')
    .option('--max-length <n>', 'tokens per document (longer ones are truncated)', intArg(1))
    .option('--text-column <name>', 'JSONL key / CSV column with the text (default "text")')
    .action(action(indexBuild));

  program.command('search').description('cosine top-k search over an index')
    .requiredOption('--index <dir>', 'index directory (primer index build)').requiredOption('--query <text>', 'the query')
    .option('-k, --k <n>', 'results', intArg(1), 5).option('--json', 'JSON output')
    .action(action(search));

  const exp = program.command('experiment').description('reproducible experiments');
  exp.command('label-efficiency').description('for each label budget and seed: TF-IDF + logistic regression, a from-scratch model and the pre-trained model\'s few-label methods on the same labels; writes results.json, a table and an SVG plot')
    .option('--task <name>', 'built-in classification task (default sentiment)')
    .option('--data <file>', 'your labelled data instead: .csv, .tsv or .jsonl (split 70/10/20, stratified, unless --val-data/--test-data are given)')
    .option('--val-data <file>', 'validation file for --data').option('--test-data <file>', 'test file for --data')
    .option('--text-column <name>', 'text column/key of --data (default "text")').option('--label-column <name>', 'label column/key of --data (default "label")')
    .option('--labels <list>', 'label budgets', intListArg(1), [16, 64, 256, 1024])
    .option('--seeds <n>', 'seeds per budget', intArg(1), 3)
    .option('--model <dir>', 'pre-trained model directory (default: pre-train a GPT on the built-in corpus first, see --pretrain-minutes)')
    .option('--backbone <kind>', 'what to pre-train without --model: gpt (default) or bert (MLM)', choiceArg(['gpt', 'bert'] as const))
    .option('--methods <list>', `few-label methods tried on the pre-trained model (default all: ${FEW_LABEL_METHODS.join(',')})`)
    .option('--template <text>', 'prompt template with {text} (\\n for newlines); default per task, e.g. "{text} It was"')
    .option('--verbalizer <spec>', 'label words, e.g. "positive=great|good,negative=terrible|bad" (default per task, else the label names)')
    .option('--out <dir>', 'output directory (default runs/label-efficiency-<task>)')
    .option('--epochs <n>', 'fine-tuning epochs (small budgets get more, see --min-steps)', intArg(1))
    .option('--lr <x>', 'fine-tuning learning rate (default 3e-4)', floatArg(0))
    .option('--prompt-lr <x>', 'learning rate of prompt-based fine-tuning (default 1e-4)', floatArg(0))
    .option('--batch-size <n>', 'fine-tuning batch size (default 16)', intArg(1))
    .option('--pretrain-minutes <m>', 'minutes of pre-training without --model; the model size and steps are chosen for it on this machine (default 25: the whole experiment within 45 minutes on 2 cores)', floatArg(0))
    .option('--pretrain-steps <n>', 'override the chosen number of pre-training steps', intArg(1))
    .option('--domain-text', 'domain-adaptive pre-training: add the task\'s train-split texts (no labels, never val/test) to the pre-training corpus (not with --model)')
    .option('--test-examples <n>', 'score a stratified subset of the test split (default: all)', intArg(1))
    .option('--score-split <split>', 'test (default), or val: the selection examples, to compare recipes without the test split', choiceArg(['test', 'val'] as const))
    .option('--freeze-embeddings', 'freeze the token and position embeddings while fine-tuning (both initialisations)')
    .option('--patience <n>', 'epochs without a better validation accuracy before stopping (default 4)', intArg(1))
    .option('--min-steps <n>', 'small budgets get more epochs, up to at least this many optimizer steps (default 40)', intArg(1))
    .option('--max-epochs <n>', 'upper bound on those epochs (default 30)', intArg(1))
    .option('--head-epochs <n>', 'LP-FT: first train only the new head on the frozen body for up to N epochs (0 = off)', intArg(0))
    .option('--head-lr <x>', 'learning rate of that head-only stage (default 10 × --lr)', floatArg(0))
    .action(action(experiment));
  exp.command('corpus').description('write the label-efficiency pre-training corpus (built-in English text without the evaluation documents of the task and of every built-in task) for `primer pretrain --corpus`, e.g. a long-budget model passed back with --model')
    .requiredOption('--out <dir>', 'directory for the text files')
    .option('--task <name>', 'built-in classification task whose val/test documents are left out (default sentiment; spam and genre are always left out too)')
    .option('--data <file>', 'or your labelled data (.csv, .tsv, .jsonl): its val/test texts are left out (same split as the experiment)')
    .option('--val-data <file>', 'validation file for --data').option('--test-data <file>', 'test file for --data')
    .option('--text-column <name>', 'text column/key of --data (default "text")').option('--label-column <name>', 'label column/key of --data (default "label")')
    .option('--domain-text', 'add the task\'s train-split texts (no labels) as in the experiment\'s --domain-text')
    .action(action((f: { out: string; task?: string; data?: string; valData?: string; testData?: string; textColumn?: string; labelColumn?: string; domainText?: boolean }) => {
      if (f.task && f.data) throw new InvalidArgumentError('give --task or --data, not both');
      const out = resolve(f.out);
      const c = prepareExperimentCorpus({ ...f, task: f.data ? undefined : (f.task ?? 'sentiment'), out });
      console.log(`wrote ${c.files.filter((p) => p !== 'builtin').length} files to ${out} (${c.excludedDocuments} evaluation documents left out${c.corpusArgs[0] === 'builtin' ? '; Gutenberg + State of the Union are read by name' : ''})`);
      console.log(`pre-train on it with: primer pretrain --corpus ${c.corpusArgs.join(' ')} …`);
    }));
}
