/** `primer pretrain`: option parsing only; the work is done by pretrain() in src/train/pretrain.ts. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CLM_RESUME_DEFAULTS, DEFAULT_SAMPLE_PROMPTS_ZH, pretrain, PRETRAIN_DEFAULTS as D } from '../train/pretrain.ts';
import { checkResumeSettings, nothingToTrain } from '../train/resume-settings.ts';
import { TrainingDivergedError } from '../train/trainer.ts';
import { recoverCheckpoints, resolveCheckpointDir, runDirOf, trainerStateSchema, type TrainerState } from '../train/checkpoint.ts';
import { readAnyModelConfig, type AnyModelConfig } from '../models/load.ts';
import { PRESET_NAMES } from '../models/presets.ts';
import { action, choiceArg, commonPretrainOptions, floatArg, intArg, positiveFloatArg } from './options.ts';
import { runBertPretrain, type BertPretrainFlags } from './bert.ts';
import { BERT_PRETRAIN_DEFAULTS as BD } from '../train/bert-pretrain.ts';

/** The BERT flags plus the GPT-only ones. */
interface PretrainFlags extends Omit<BertPretrainFlags, 'objective'> {
  objective?: 'clm' | 'mlm' | 'mlm+nsp';
  arch?: 'gpt' | 'llama';
  name?: string;
  initFrom?: string;
  embeddingInit?: 'random' | 'ppmi';
  freezeEmbeddings?: boolean;
  samples?: boolean;
  sampleTokens?: number;
}

type Objective = NonNullable<PretrainFlags['objective']>;

/** The checkpoint's state and model config, or null where unreadable: the library then reports what is wrong with it. */
function peekCheckpoint(path: string): { dir: string; state: TrainerState; modelConfig?: AnyModelConfig } | null {
  if (!existsSync(join(path, 'trainer_state.json'))) recoverCheckpoints(path); // as pretrain() does: undo a swap cut short by a kill
  const dir = resolveCheckpointDir(path);
  try {
    const state = trainerStateSchema.parse(JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')));
    let modelConfig: AnyModelConfig | undefined;
    try {
      modelConfig = readAnyModelConfig(dir);
    } catch { /* the library's resume reports it */ }
    return { dir, state, modelConfig };
  } catch {
    return null;
  }
}

/**
 * --resume: the run's objective (from its checkpoint, so a BERT run needs no --objective), after refusing
 * every option given that the run cannot change; null when the run is already as long as asked.
 */
function resumeObjective(f: PretrainFlags): Objective | null {
  const peek = peekCheckpoint(f.resume!);
  if (!peek) return f.objective ?? 'clm';
  const { run, step } = peek.state;
  const saved = typeof run.objective === 'string' ? (run.objective as Objective) : peek.modelConfig?.model_type === 'bert' ? undefined : 'clm';
  const objective = saved ?? f.objective ?? 'mlm+nsp';
  const bert = objective !== 'clm';
  // Every option in its library name, whatever the objective, so that one the run has not is refused too.
  const { out: _o, resume: _r, maxMinutes: _m, ...common } = commonPretrainOptions(f);
  const given = {
    ...common, corpus: f.corpus, objective: f.objective, arch: f.arch, initFrom: f.initFrom, embeddingInit: f.embeddingInit, freezeEmbeddings: f.freezeEmbeddings,
    data: f.data, documents: f.documents, maskProbability: f.maskProb, wholeWordMask: f.wholeWordMask, positionEmbedding: f.positionEmbedding,
    attentionInit: f.attentionInit, maxDocumentChars: f.maxDocumentChars,
    ...(bert ? { maxSeqLength: f.maxSeqLength ?? f.blockSize } : { blockSize: f.blockSize, maxSeqLength: f.maxSeqLength }),
  };
  const labels: Record<string, string> = { ...(bert && f.maxSeqLength === undefined ? { maxSeqLength: '--block-size' } : {}), ...(f.out ? {} : { out: '--name' }) };
  checkResumeSettings({ resume: f.resume!, runDir: runDirOf(peek.dir), run, defaults: bert ? BD : CLM_RESUME_DEFAULTS, modelConfig: peek.modelConfig, given, out: f.out ?? (f.name ? join('runs', f.name) : undefined), labels });
  const idle = nothingToTrain(step, f.steps ?? (typeof run.steps === 'number' ? run.steps : peek.state.totalSteps));
  if (idle) console.log(idle);
  return idle ? null : objective;
}

export function registerPretrainCommand(program: Command): void {
  program
    .command('pretrain')
    .description('pre-train a GPT (clm) or a BERT (mlm, mlm+nsp) from scratch; with no options: BPE tokenizer + mini GPT on the built-in corpus, < 10 minutes')
    .option('--objective <name>', 'clm (GPT, default), mlm or mlm+nsp (BERT)', choiceArg(['clm', 'mlm', 'mlm+nsp'] as const))
    .option('--arch <name>', 'clm model family: gpt (GPT-2, default) or llama (RMSNorm, RoPE, SwiGLU; same preset sizes)', choiceArg(['gpt', 'llama'] as const))
    .option('--corpus <paths...>', 'text files or directories (.txt, .md, .jsonl, .gz), or builtin:zh (Chinese poetry, optional packages); default: the built-in English corpus')
    .option('--jsonl-field <name>', `JSONL field holding the text (default "${D.jsonlField}")`)
    .option('--preset <name>', `model size: ${PRESET_NAMES.join(', ')} (default ${D.preset}; BERT ${BD.preset})`, choiceArg(PRESET_NAMES))
    .option('--layers <n>', 'override the preset\'s number of layers', intArg(1))
    .option('--dims <n>', 'override the preset\'s embedding size', intArg(1))
    .option('--heads <n>', 'override the preset\'s number of heads', intArg(1))
    .option('--vocab-size <n>', `tokenizer vocabulary size: byte-level BPE, or WordPiece for --objective mlm/mlm+nsp, which keeps every character of the corpus even past this size, with a warning (default ${D.vocabSize})`, intArg(258))
    .option('--tokenizer <path>', 'use this tokenizer.json (or directory) instead of training a BPE')
    .option('--block-size <n>', `tokens per training sequence (default ${D.blockSize})`, intArg(2))
    .option('--batch-size <n>', `sequences per micro-batch (default ${D.batchSize})`, intArg(1))
    .option('--grad-accum <n>', 'micro-batches per optimizer step (default 1)', intArg(1))
    .option('--steps <n>', `optimizer steps (default ${D.steps}; BERT ${BD.steps})`, intArg(1))
    .option('--lr <x>', `peak learning rate (default ${D.lr})`, floatArg(0))
    .option('--min-lr <x>', `learning-rate floor (default ${D.minLr})`, floatArg(0))
    .option('--warmup <n>', `linear warmup steps (default ${D.warmupSteps})`, intArg(0))
    .option('--decay <kind>', `cosine, linear or constant (default ${D.decay})`, choiceArg(['cosine', 'linear', 'constant'] as const))
    .option('--weight-decay <x>', `AdamW weight decay on ≥2-D weights (default ${D.weightDecay})`, floatArg(0))
    .option('--grad-clip <x>', `max gradient norm, 0 = off (default ${D.gradClip})`, floatArg(0))
    .option('--dropout <p>', `dropout probability (default ${D.dropout})`, floatArg(0, 0.99))
    .option('--bf16', 'bf16 autocast for matrix products (fp32 accumulation and master weights)')
    .option('--eval-every <n>', `evaluate every N steps (default ${D.evalEvery})`, intArg(0))
    .option('--eval-batches <n>', `validation batches per evaluation (default ${D.evalBatches})`, intArg(1))
    .option('--checkpoint-every <n>', `checkpoint every N steps (default ${D.checkpointEvery})`, intArg(0))
    .option('--keep <n>', `checkpoints to keep (default ${D.keepCheckpoints})`, intArg(1))
    .option('--seed <n>', `random seed (default ${D.seed})`, intArg(0))
    .option('--out <dir>', 'run directory (default runs/<preset>-<date>)')
    .option('--name <name>', 'run name: the run directory becomes runs/<name>')
    .option('--resume <dir>', 'continue from a checkpoint or run directory with its settings (--steps may extend it)')
    .option('--init-from <dir>', 'continued pre-training: start from this model directory (its weights, config and tokenizer) with a fresh optimizer and schedule')
    .option('--embedding-init <how>', 'token embeddings start random (GPT default) or from co-occurrence counts of the corpus (ppmi; BERT default: tied and trained)', choiceArg(['random', 'ppmi'] as const))
    .option('--freeze-embeddings', 'clm: keep the token embeddings fixed (with an untied LM head of its own)')
    .option('--max-minutes <m>', 'stop (with a checkpoint) after this many minutes of training (> 0)', positiveFloatArg)
    .option('--no-samples', 'do not print sample continuations at the end')
    .option('--sample-tokens <n>', 'tokens per sample continuation (default 40)', intArg(1))
    .option('--data <dir>', 'BERT: prepared shards from `primer data prepare` instead of --corpus')
    .option('--documents <how>', 'BERT: a document is a "file" or a "blank-line"-separated paragraph', choiceArg(['file', 'blank-line'] as const))
    .option('--max-seq-length <n>', 'BERT: tokens per sequence (default: --block-size)', intArg(8))
    .option('--mask-prob <p>', `BERT: training masking probability (default ${BD.maskProbability}; held-out metrics always mask 15%)`, floatArg(0, 1))
    .option('--whole-word-mask', 'BERT: mask whole words')
    .option('--position-embedding <type>', 'BERT: relative_key (default: a learned vector per distance in each layer) or absolute (BERT\'s original)', choiceArg(['relative_key', 'absolute'] as const))
    .option('--attention-init <how>', 'BERT: local (default with relative_key: heads start on the neighbouring tokens) or random', choiceArg(['local', 'random'] as const))
    .option('--max-document-chars <n>', `BERT: documents longer than this are cut into parts before the train/validation split (default ${BD.maxDocumentChars})`, intArg(1024))
    .option('--workers <n>', 'BERT: data-preparation worker threads', intArg(1))
    .action(action(async (flags: PretrainFlags, cmd: Command) => {
      let f = flags;
      if (f.resume) {
        // Only what the user typed counts as asking for a change, never a default.
        f = Object.fromEntries(Object.entries(flags).filter(([k]) => cmd.getOptionValueSource(k) === 'cli')) as PretrainFlags;
        const objective = resumeObjective(f);
        if (!objective) return; // nothing to train: the run is left as it is
        f = { ...f, objective };
      }
      if (f.objective === 'mlm' || f.objective === 'mlm+nsp') {
        if (f.arch) throw new Error('--arch applies to --objective clm only (BERT pre-training has one architecture)');
        if (f.freezeEmbeddings) throw new Error('--freeze-embeddings applies to --objective clm only (BERT\'s MLM decoder is tied to its word embeddings)');
        await runBertPretrain({ ...f, objective: f.objective, out: f.out ?? (f.name ? join('runs', f.name) : undefined) });
        return;
      }
      const result = await pretrain({
        ...commonPretrainOptions(f), objective: 'clm', arch: f.arch, blockSize: f.blockSize, initFrom: f.initFrom, embeddingInit: f.embeddingInit, freezeEmbeddings: f.freezeEmbeddings,
        out: f.out ?? (f.name ? join('runs', f.name) : undefined), samplePrompts: f.samples === false ? [] : undefined, sampleTokens: f.sampleTokens,
      }).catch((e: unknown) => {
        if (e instanceof TrainingDivergedError) {
          console.error(`primer: ${e.message}`);
          process.exit(1);
        }
        throw e;
      });
      const { training } = result;
      if (result.samples.length) {
        console.log('\nsample continuations:');
        for (const s of result.samples) console.log(`\n> ${s.prompt}${s.text}`);
        console.log('');
      }
      // Llama models cannot be sampled by `primer generate` yet (no KV-cache decoder for them).
      const chinese = f.corpus?.includes('builtin:zh') || result.samples.some((x) => x.prompt === DEFAULT_SAMPLE_PROMPTS_ZH[0]);
      const example = chinese ? DEFAULT_SAMPLE_PROMPTS_ZH[0] : 'Once upon a time';
      const hint = result.config.arch === 'llama' ? '' : ` Try: primer generate --model ${result.runDir} --prompt "${example}"`;
      console.log(`total time ${result.seconds.total.toFixed(0)}s.${hint}`);
      if (training.status === 'interrupted') {
        console.log(`interrupted: resume with primer pretrain --resume ${result.runDir}`);
        process.exitCode = training.signal === 'SIGTERM' ? 143 : 130;
      }
    }));
}
