/**
 * `primer verify`: runs a model directory (HF layout) forward and backward on given inputs and
 * compares every tensor of an expected.safetensors produced by PyTorch/transformers — outputs
 * (logits, losses, hidden states) and gradients (`grad.<param>`) — by relative error
 *   err = max|actual − expected| / max|expected|
 * A tensor passes when err ≤ tol (default 1e-4).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readSafetensors } from '../io/safetensors.ts';
import { canonicalTensorName, loadAnyModelDir, ModelLoadError, type ModelKind } from '../models/load.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { readJsonFile } from '../io/json.ts';
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';

export interface VerifyOptions {
  modelDir: string;
  /** Default: <modelDir>/inputs.json. */
  inputs?: string;
  /** Default: <modelDir>/expected.safetensors. */
  expected?: string;
  tol?: number;
}

export interface TensorCheck {
  name: string;
  shape: number[];
  maxRelError: number;
  maxAbsError: number;
  passed: boolean;
}

export interface VerifyReport {
  model: string;
  kind: ModelKind;
  tol: number;
  passed: boolean;
  checked: number;
  failed: string[];
  worst: { name: string; maxRelError: number } | null;
  tensors: TensorCheck[];
}

const ids2d = z.array(z.array(z.number().int())).min(1);
const gptInputs = z.object({ input_ids: ids2d, labels: ids2d.optional() });
const bertInputs = z.object({
  input_ids: ids2d,
  token_type_ids: ids2d.optional(),
  attention_mask: ids2d.optional(),
  labels: ids2d.optional(),
  next_sentence_label: z.array(z.number().int()).optional(),
});

/** Rows as one B×T array; a ragged row is named (the file, the field, the row). */
function flat2d(rows: number[][], what: string, b: number, t: number, file: string): Int32Array {
  const bad = rows.length !== b ? -1 : rows.findIndex((r) => r.length !== t);
  if (rows.length !== b || bad >= 0) {
    throw new ModelLoadError(`${file}: field "${what}" must be ${b}×${t} like input_ids (${bad < 0 ? `it has ${rows.length} rows` : `row ${bad} has ${rows[bad]!.length} ids`})`);
  }
  return Int32Array.from(rows.flat());
}

/**
 * Values outside what the model can take, named by field and position before the forward pass: the
 * kernels would only say "embedding: ids[2] = 5 is out of range", without the file or the field.
 */
function checkValues(file: string, field: string, values: number[][] | number[] | undefined, limit: number, what: string | null, ignore = false): void {
  if (!values) return;
  const nested = (values as unknown[]).every(Array.isArray);
  const rows = nested ? values as number[][] : [values as number[]];
  rows.forEach((row, r) => row.forEach((v, i) => {
    if ((v >= 0 && v < limit) || (ignore && v === IGNORE_INDEX)) return;
    const where = nested ? `[${r}][${i}]` : `[${i}]`;
    const range = what === null ? 'is not 0 or 1' : `is not ${what} (0..${limit - 1})`;
    throw new ModelLoadError(`${file}: field "${field}" ${where} = ${v} ${range}${ignore ? ` or ${IGNORE_INDEX} (ignored)` : ''}`);
  }));
}

function compare(actual: ArrayLike<number>, expected: ArrayLike<number>): { rel: number; abs: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return { rel: diff / Math.max(scale, 1e-30), abs: diff };
}

/** Runs the check and returns the report (never throws for a mismatch, only for unusable input). */
export function verifyModel(o: VerifyOptions): VerifyReport {
  const tol = o.tol ?? 1e-4;
  const inputsPath = o.inputs ?? join(o.modelDir, 'inputs.json');
  const expectedPath = o.expected ?? join(o.modelDir, 'expected.safetensors');
  const loaded = loadAnyModelDir(o.modelDir);
  for (const p of [inputsPath, expectedPath]) if (!existsSync(p)) throw new ModelLoadError(`verify: ${p} does not exist`);
  const rawInputs = readJsonFile(inputsPath, (message, cause) => new ModelLoadError(message, { cause }));
  const expected = readSafetensors(expectedPath);
  const outputs = new Map<string, Tensor>();

  if (loaded.kind === 'gpt2' || loaded.kind === 'llama') {
    // Causal LMs (GPT-2, Llama, Qwen2): loss = mean CE of logits[:, :-1] vs labels[:, 1:].
    const parsed = gptInputs.safeParse(rawInputs);
    if (!parsed.success) throw new ModelLoadError(`${inputsPath}: ${parsed.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`);
    const rows = parsed.data.input_ids;
    const [b, t] = [rows.length, rows[0]!.length];
    const ids = flat2d(rows, 'input_ids', b, t, inputsPath);
    const labels = parsed.data.labels ? flat2d(parsed.data.labels, 'labels', b, t, inputsPath) : ids;
    const vocab = loaded.config.vocab_size;
    checkValues(inputsPath, 'input_ids', rows, vocab, 'a token id of this model');
    checkValues(inputsPath, 'labels', parsed.data.labels, vocab, 'a token id of this model', true);
    const { logits, loss } = loaded.model.forward(ids, b, t, labels);
    outputs.set('logits', logits);
    outputs.set('loss', loss!);
    loss!.backward();
  } else {
    const parsed = bertInputs.safeParse(rawInputs);
    if (!parsed.success) throw new ModelLoadError(`${inputsPath}: ${parsed.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`);
    const d = parsed.data;
    const [b, t] = [d.input_ids.length, d.input_ids[0]!.length];
    const flat = (rows: number[][], what: string) => flat2d(rows, what, b, t, inputsPath);
    const vocab = loaded.config.vocab_size;
    checkValues(inputsPath, 'input_ids', d.input_ids, vocab, 'a token id of this model');
    checkValues(inputsPath, 'token_type_ids', d.token_type_ids, loaded.config.type_vocab_size ?? 2, 'a token type of this model');
    checkValues(inputsPath, 'attention_mask', d.attention_mask, 2, null);
    checkValues(inputsPath, 'labels', d.labels, vocab, 'a token id of this model', true);
    checkValues(inputsPath, 'next_sentence_label', d.next_sentence_label, 2, null, true);
    const out = loaded.model.forward(
      {
        inputIds: flat(d.input_ids, 'input_ids'), batch: b, length: t,
        tokenTypeIds: d.token_type_ids ? flat(d.token_type_ids, 'token_type_ids') : undefined,
        attentionMask: d.attention_mask ? Uint8Array.from(flat(d.attention_mask, 'attention_mask')) : undefined,
      },
      d.labels ? flat(d.labels, 'labels') : undefined,
      d.next_sentence_label ? Int32Array.from(d.next_sentence_label) : undefined,
    );
    outputs.set('prediction_logits', out.predictionLogits);
    outputs.set('seq_relationship_logits', out.seqRelationshipLogits);
    outputs.set('last_hidden_state', out.lastHiddenState);
    outputs.set('pooled_output', out.pooledOutput);
    if (out.mlmLoss) outputs.set('mlm_loss', out.mlmLoss);
    if (out.nspLoss) outputs.set('nsp_loss', out.nspLoss);
    if (out.loss) {
      outputs.set('loss', out.loss);
      out.loss.backward();
    }
  }

  const params = new Map(loaded.model.namedParameters());
  const tensors: TensorCheck[] = [];
  for (const name of expected.names) {
    const want = expected.getFloat32(name);
    const shape = expected.info(name).shape;
    let got: ArrayLike<number> | undefined;
    if (name.startsWith('grad.')) {
      const pname = canonicalTensorName(loaded.kind, name.slice(5));
      got = pname ? params.get(pname)?.grad?.data : undefined;
    } else {
      got = outputs.get(name)?.data;
    }
    if (!got || got.length !== want.length) {
      const why = !got ? 'not produced by the model' : `has ${got.length} values, expected ${want.length}`;
      tensors.push({ name: `${name} (${why})`, shape, maxRelError: Infinity, maxAbsError: Infinity, passed: false });
      continue;
    }
    const { rel, abs } = compare(got, want);
    tensors.push({ name, shape, maxRelError: rel, maxAbsError: abs, passed: rel <= tol });
  }
  const failed = tensors.filter((c) => !c.passed).map((c) => c.name);
  const worst = tensors.reduce<TensorCheck | null>((w, c) => (!w || c.maxRelError > w.maxRelError ? c : w), null);
  return {
    model: o.modelDir, kind: loaded.kind, tol, passed: failed.length === 0 && tensors.length > 0, checked: tensors.length, failed,
    worst: worst ? { name: worst.name, maxRelError: worst.maxRelError } : null, tensors,
  };
}
