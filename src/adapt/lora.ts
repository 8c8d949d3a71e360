/**
 * LoRA (Hu et al. 2021) adapters on chosen Linear layers, saved and loaded in the Hugging Face PEFT layout.
 *
 * For an adapted layer with frozen weight W (y₀ = x·W + b) and rank r:
 *   y = y₀ + s · (dropout(x) · Aᵀ) · Bᵀ,     s = alpha / r
 *   A [r, in]  ~ U(−1/√in, 1/√in)   (PEFT's kaiming_uniform_(a=√5))
 *   B [out, r] = 0                  so training starts exactly at the base model
 * Trainable parameters per layer: r·(in + out). Merging folds the update into W:
 *   'out_in' (torch Linear, W [out, in]; BERT, Llama/Qwen2):  W += s · B·A
 *   'in_out' (GPT-2 Conv1D, W [in, out]):  W += s · (B·A)ᵀ = s · Aᵀ·Bᵀ   (PEFT's fan_in_fan_out = true)
 *
 * Files (PEFT): adapter_config.json (peft_type "LORA", r, lora_alpha, …) and adapter_model.safetensors
 * with `base_model.model.<module path>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]. The config
 * also records `primer_base_fingerprint` (SHA-256 over the base weights) so an adapter is never applied
 * silently to a different base model; adapters made elsewhere (no fingerprint) are checked by shape.
 *
 * `modules_to_save` (PEFT's name): whole modules trained and saved alongside the adapters, e.g. a new
 * classification head (`score`, `classifier`); they are stored as `base_model.model.<path>.<param>`
 * (PEFT strips its `modules_to_save.default` wrapper when saving) and left out of the fingerprint,
 * because a fresh head is random.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../tensor/tensor.ts';
import { add, scale } from '../tensor/ops.ts';
import { dropout, linear } from '../tensor/nn-ops.ts';
import { Rng } from '../util/random.ts';
import { Module, ModuleDict, constantInit } from '../nn/module.ts';
import { modelFingerprint } from '../nn/fingerprint.ts';
import { Linear } from '../nn/layers.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { writeSafetensors } from '../io/safetensors-write.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { PrimerError } from '../io/errors.ts';
import { readJsonFile } from '../io/json.ts';

export class LoraError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LORA', message, options);
  }
}

/** The model families (load.ts's ModelKind; Qwen2 is a 'llama'). */
export type ModelKind = 'gpt2' | 'bert' | 'llama';
export type LoraTargetSet = 'attention' | 'mlp' | 'all';

/** What a user chooses for a LoRA run (the CLI flags --lora-r/--lora-alpha/--lora-dropout/--lora-targets). */
export interface LoraSettings {
  r: number;
  alpha: number;
  dropout?: number;
  targets?: LoraTargetSet | string[];
}

/** alpha defaults to 2·r (a common choice: s = 2 whatever the rank). */
export const LORA_DEFAULTS = { alphaPerRank: 2, dropout: 0.05, targets: 'attention' as LoraTargetSet };

/** The CLI's flat LoRA flags; loraR 0 or absent = no LoRA (full fine-tuning). */
export interface LoraFlags {
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: LoraTargetSet;
}

export function loraSettingsFromFlags(f: LoraFlags): LoraSettings | null {
  if (!f.loraR) return null;
  return { r: f.loraR, alpha: f.loraAlpha ?? LORA_DEFAULTS.alphaPerRank * f.loraR, dropout: f.loraDropout ?? LORA_DEFAULTS.dropout, targets: f.loraTargets ?? LORA_DEFAULTS.targets };
}

/** Module paths of targets given by name set or as explicit PEFT target_modules. */
export function resolveLoraTargets(kind: ModelKind, targets: LoraSettings['targets']): string[] {
  return Array.isArray(targets) ? targets : loraTargetModules(kind, targets ?? LORA_DEFAULTS.targets);
}

/**
 * PEFT target_modules (matched as a dotted-path suffix, as PEFT does) for each architecture. Llama's
 * 'attention' set is PEFT's own default for llama/qwen2 (q_proj, v_proj); 'all' adds k_proj, o_proj
 * and the SwiGLU projections.
 */
export function loraTargetModules(kind: ModelKind, which: LoraTargetSet): string[] {
  if (kind === 'llama') {
    const mlp = ['gate_proj', 'up_proj', 'down_proj'];
    return which === 'attention' ? ['q_proj', 'v_proj'] : which === 'mlp' ? mlp : ['q_proj', 'k_proj', 'v_proj', 'o_proj', ...mlp];
  }
  const sets = kind === 'gpt2'
    ? { attention: ['c_attn', 'attn.c_proj'], mlp: ['c_fc', 'mlp.c_proj'] }
    : { attention: ['query', 'key', 'value', 'attention.output.dense'], mlp: ['intermediate.dense', 'layer.*.output.dense'] };
  return which === 'all' ? [...sets.attention, ...sets.mlp] : [...sets[which]];
}

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  targetModules: readonly string[];
  seed?: number;
  baseModelNameOrPath?: string;
  /** PEFT task_type: CAUSAL_LM for GPT SFT, SEQ_CLS for classification. */
  taskType?: string;
  /** Modules of the base trained in full and saved with the adapter (e.g. ['score']). */
  modulesToSave?: readonly string[];
}

/** The adapter_config.json fields we read and write (PEFT names). */
export interface AdapterConfig {
  peft_type: 'LORA';
  task_type: string;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  fan_in_fan_out: boolean;
  bias: 'none';
  base_model_name_or_path: string;
  inference_mode: boolean;
  init_lora_weights: boolean;
  modules_to_save?: string[] | null;
  primer_base_fingerprint?: string;
}

/** Every Linear in the tree with its dotted path. */
export function namedLinears(root: Module): Array<[string, Linear]> {
  return root.namedModules().filter((e): e is [string, Linear] => e[1] instanceof Linear);
}

/** PEFT's rule: exact name or a dotted suffix; `*` matches one path component. */
export function matchesTarget(path: string, target: string): boolean {
  const pattern = new RegExp(`(^|\\.)${target.split('.').map((p) => (p === '*' ? '[^.]+' : p.replace(/[^\w]/g, '\\$&'))).join('\\.')}$`);
  return pattern.test(path);
}

/** The modules of base named by modules_to_save, and whether a parameter (or module path + '.') lies inside one. */
function modulesToSave(base: Module, toSave: readonly string[]) {
  const saved = base.namedModules().filter(([path]) => toSave.some((t) => matchesTarget(path, t)));
  return { saved, isSaved: (name: string) => saved.some(([path]) => name.startsWith(`${path}.`)) };
}

/** Linears that currently carry an adapter: a second adapter on top would silently compose. */
const adapted = new WeakSet<Linear>();

/** The adapter of one Linear: lora_A / lora_B sub-modules so parameter names match PEFT. */
export class LoraLayer extends Module {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly scaling: number;
  private readonly baseForward: (x: Tensor) => Tensor;
  constructor(readonly base: Linear, readonly r: number, alpha: number, readonly dropoutP: number, private readonly rng: Rng) {
    super();
    if (adapted.has(base)) throw new LoraError('LoRA: this layer already has an adapter; merge or unload it first');
    adapted.add(base);
    const inF = base.inFeatures;
    this.scaling = alpha / r;
    const bound = 1 / Math.sqrt(inF);
    const a = constantInit([r, inF], 0);
    for (let i = 0; i < a.size; i++) a.data[i] = (2 * rng.next() - 1) * bound;
    this.A = this.module('lora_A', new ModuleDict()).addParam('weight', a);
    this.B = this.module('lora_B', new ModuleDict()).addParam('weight', constantInit([base.outFeatures, r], 0));
    this.baseForward = base.forward.bind(base);
    // The model calls base.forward(x); routing it here adapts the layer without touching the model code.
    base.forward = (x: Tensor) => this.forward(x);
  }

  forward(x: Tensor): Tensor {
    const y = this.baseForward(x);
    // The base layer's flag, not ours: eval() on the model (e.g. a task model's prediction) must turn the adapter's dropout off too.
    const h = linear(dropout(x, this.dropoutP, this.base.training, this.rng), this.A, null, 'out_in'); // [.., r]
    return add(y, scale(linear(h, this.B, null, 'out_in'), this.scaling)); // [.., out]
  }

  /** W += s·B·A in the base layout, then the layer is a plain Linear again. */
  mergeAndDetach(): void {
    const { base, r } = this;
    const inF = base.inFeatures;
    const outF = base.outFeatures;
    const W = base.weight.data;
    const A = this.A.data;
    const B = this.B.data;
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let d = 0;
        for (let k = 0; k < r; k++) d += B[o * r + k]! * A[k * inF + i]!;
        const idx = base.layout === 'out_in' ? o * inF + i : i * outF + o;
        W[idx] = W[idx]! + this.scaling * d;
      }
    }
    this.detach();
  }

  /** Restores the base layer's own forward (drops the adapter without merging). */
  detach(): void {
    this.base.forward = this.baseForward;
    adapted.delete(this.base);
  }
}

const PREFIX = 'base_model.model.';

/**
 * A base model with LoRA adapters. Its own parameters are only the adapters (PEFT names), so the
 * generic trainer, optimizer and checkpoints see exactly the trainable part; the base is frozen.
 */
export class LoraModel extends Module {
  readonly layers = new Map<string, LoraLayer>();
  readonly rng: Rng;
  readonly config: AdapterConfig;
  /** The modules_to_save by path: trainable, and part of this module's parameters. */
  readonly savedModules = new Map<string, Module>();
  constructor(readonly base: Module, readonly kind: ModelKind, o: LoraOptions) {
    super();
    if (!(Number.isInteger(o.r) && o.r > 0)) throw new RangeError(`LoRA: rank r must be a positive integer, got ${o.r}`);
    if (!(o.alpha > 0)) throw new RangeError(`LoRA: alpha must be > 0, got ${o.alpha}`);
    const p = o.dropout ?? 0;
    if (!(p >= 0 && p < 1)) throw new RangeError(`LoRA: dropout must be in [0, 1), got ${p}`);
    if (!o.targetModules.length) throw new RangeError('LoRA: no target modules given');
    const toSave = o.modulesToSave ?? [];
    const { saved, isSaved } = modulesToSave(base, toSave);
    const missingSaved = toSave.filter((t) => !saved.some(([path]) => matchesTarget(path, t)));
    if (missingSaved.length) throw new LoraError(`LoRA: modules_to_save ${JSON.stringify(missingSaved)} match no module of this ${kind} model`);
    const fingerprint = modelFingerprint(base, isSaved);
    this.rng = new Rng(o.seed ?? 0);
    try {
      for (const [path, lin] of namedLinears(base)) {
        if (!o.targetModules.some((t) => matchesTarget(path, t)) || isSaved(`${path}.`)) continue;
        this.layers.set(path, this.module(PREFIX + path, new LoraLayer(lin, o.r, o.alpha, p, this.rng)));
      }
    } catch (e) {
      for (const l of this.layers.values()) l.detach(); // leave the base model as it was
      throw e;
    }
    if (this.layers.size === 0) {
      throw new LoraError(`LoRA: no Linear layer matches target_modules ${JSON.stringify(o.targetModules)} in this ${kind} model`);
    }
    for (const [, param] of base.namedParameters()) param.requiresGrad = false;
    for (const [path, m] of saved) {
      this.savedModules.set(path, this.module(PREFIX + path, m));
      for (const param of m.parameters()) param.requiresGrad = true;
    }
    this.config = {
      peft_type: 'LORA', task_type: o.taskType ?? (kind === 'bert' ? 'SEQ_CLS' : 'CAUSAL_LM'),
      r: o.r, lora_alpha: o.alpha, lora_dropout: p, target_modules: [...o.targetModules],
      fan_in_fan_out: kind === 'gpt2', bias: 'none', base_model_name_or_path: o.baseModelNameOrPath ?? '',
      inference_mode: false, init_lora_weights: true, modules_to_save: toSave.length ? [...toSave] : null, primer_base_fingerprint: fingerprint,
    };
    this.base.train(this.training);
  }

  override train(on = true): this {
    super.train(on);
    this.base?.train(on);
    return this;
  }

  /** r·(in + out) summed over the adapted layers (modules_to_save not included). */
  expectedTrainableParameters(): number {
    let n = 0;
    for (const l of this.layers.values()) n += l.r * (l.base.inFeatures + l.base.outFeatures);
    return n;
  }

  /** Writes adapter_config.json + adapter_model.safetensors (PEFT layout) into dir. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, 'adapter_model.safetensors'), this.namedParameters().map(([name, t]) => ({
      name, shape: [...t.shape], data: t.data instanceof Float32Array ? t.data : new Float32Array(t.data),
    })), { format: 'pt' });
    writeJsonAtomic(join(dir, 'adapter_config.json'), this.config);
  }

  /** Folds every adapter into the base weights and returns the base model (no adapters left). */
  merge(): Module {
    for (const l of this.layers.values()) l.mergeAndDetach();
    this.layers.clear();
    for (const [, param] of this.base.namedParameters()) param.requiresGrad = true;
    return this.base;
  }

  /** Removes the adapters without merging: the base model behaves as before. */
  unload(): Module {
    for (const l of this.layers.values()) l.detach();
    this.layers.clear();
    for (const [, param] of this.base.namedParameters()) param.requiresGrad = true;
    return this.base;
  }
}

function isNonEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && Object.keys(v).length > 0;
}

export function readAdapterConfig(dir: string): AdapterConfig {
  const path = join(dir, 'adapter_config.json');
  if (!existsSync(path)) throw new LoraError(`${dir}: no adapter_config.json (expected a PEFT LoRA adapter directory)`);
  const raw = readJsonFile(path, (message, cause) => new LoraError(message, { cause })) as Record<string, unknown>;
  if (raw.peft_type !== 'LORA') throw new LoraError(`${path}: field "peft_type" is ${JSON.stringify(raw.peft_type)}; only "LORA" is supported`);
  if (!(Number.isInteger(raw.r) && (raw.r as number) > 0)) throw new LoraError(`${path}: field "r" must be a positive integer`);
  if (typeof raw.lora_alpha !== 'number') throw new LoraError(`${path}: field "lora_alpha" must be a number`);
  const targets = typeof raw.target_modules === 'string' ? [raw.target_modules] : raw.target_modules;
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) throw new LoraError(`${path}: field "target_modules" must be a list of module names`);
  // PEFT variants that change the update itself: loading them as plain LoRA would silently merge wrong weights.
  const variant = raw.use_rslora === true ? 'use_rslora (scaling alpha/√r)' : raw.use_dora === true ? 'use_dora (weight-decomposed LoRA)'
    : isNonEmptyObject(raw.rank_pattern) ? 'rank_pattern (per-layer ranks)' : isNonEmptyObject(raw.alpha_pattern) ? 'alpha_pattern (per-layer alphas)'
      : raw.bias !== undefined && raw.bias !== 'none' ? `bias ${JSON.stringify(raw.bias)} (trained biases)` : null;
  if (variant) throw new LoraError(`${path}: ${variant} is not supported; Primer applies plain LoRA (bias "none", one r and lora_alpha for every layer)`);
  const toSave = raw.modules_to_save ?? null;
  if (toSave !== null && !(Array.isArray(toSave) && toSave.every((t) => typeof t === 'string'))) throw new LoraError(`${path}: field "modules_to_save" must be null or a list of module names`);
  return {
    ...(raw as unknown as AdapterConfig), target_modules: targets as string[], modules_to_save: toSave as string[] | null,
    lora_dropout: typeof raw.lora_dropout === 'number' ? raw.lora_dropout : 0,
  };
}

/**
 * Puts a saved adapter on top of a base model. Refuses a base whose weights differ from the one the
 * adapter was trained on (fingerprint), or whose layer shapes do not fit the adapter tensors.
 */
export function loadLoraAdapter(base: Module, kind: ModelKind, dir: string, o: { allowDifferentBase?: boolean } = {}): LoraModel {
  const config = readAdapterConfig(dir);
  const expected = config.primer_base_fingerprint;
  const toSave = config.modules_to_save ?? [];
  if (expected && !o.allowDifferentBase) {
    const actual = modelFingerprint(base, modulesToSave(base, toSave).isSaved);
    if (actual !== expected) {
      throw new LoraError(`the LoRA adapter in ${dir} was trained on a different base model`
        + `${config.base_model_name_or_path ? ` (${config.base_model_name_or_path})` : ''}: base weights fingerprint ${actual.slice(0, 12)}… ≠ ${expected.slice(0, 12)}… recorded in adapter_config.json`);
    }
  }
  const weightsPath = join(dir, 'adapter_model.safetensors');
  if (!existsSync(weightsPath)) throw new LoraError(`${dir}: no adapter_model.safetensors`);
  const file = readSafetensors(weightsPath);
  const lora = new LoraModel(base, kind, {
    r: config.r, alpha: config.lora_alpha, dropout: config.lora_dropout, targetModules: config.target_modules,
    baseModelNameOrPath: config.base_model_name_or_path, taskType: config.task_type, modulesToSave: toSave,
  });
  lora.config.primer_base_fingerprint = expected ?? lora.config.primer_base_fingerprint;
  const own = new Map(lora.namedParameters());
  const missing = [...own.keys()].filter((n) => !file.names.includes(n));
  const unexpected = file.names.filter((n) => !own.has(n));
  if (missing.length || unexpected.length) {
    lora.unload();
    throw new LoraError(`${weightsPath} does not fit this base model: ${missing.length ? `missing ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', …' : ''}` : ''}`
      + `${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${unexpected.slice(0, 4).join(', ')}${unexpected.length > 4 ? ', …' : ''}` : ''}`);
  }
  for (const [name, p] of own) {
    const shape = file.info(name).shape;
    if (shape.join() !== p.shape.join()) {
      lora.unload();
      throw new LoraError(`${weightsPath}: ${name} has shape [${shape.join(', ')}] but this base model needs [${p.shape.join(', ')}] — the adapter was made for a different base model`);
    }
    p.data.set(file.getFloat32(name));
  }
  return lora;
}
