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

function flat2d(rows: number[][], what: string, b: number, t: number): Int32Array {
  if (rows.length !== b || rows.some((r) => r.length !== t)) throw new ModelLoadError(`inputs.json: ${what} must be ${b}×${t} like input_ids`);
  return Int32Array.from(rows.flat());
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
    const ids = flat2d(rows, 'input_ids', b, t);
    const labels = parsed.data.labels ? flat2d(parsed.data.labels, 'labels', b, t) : ids;
    const { logits, loss } = loaded.model.forward(ids, b, t, labels);
    outputs.set('logits', logits);
    outputs.set('loss', loss!);
    loss!.backward();
  } else {
    const parsed = bertInputs.safeParse(rawInputs);
    if (!parsed.success) throw new ModelLoadError(`${inputsPath}: ${parsed.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`);
    const d = parsed.data;
    const [b, t] = [d.input_ids.length, d.input_ids[0]!.length];
    const out = loaded.model.forward(
      {
        inputIds: flat2d(d.input_ids, 'input_ids', b, t), batch: b, length: t,
        tokenTypeIds: d.token_type_ids ? flat2d(d.token_type_ids, 'token_type_ids', b, t) : undefined,
        attentionMask: d.attention_mask ? Uint8Array.from(flat2d(d.attention_mask, 'attention_mask', b, t)) : undefined,
      },
      d.labels ? flat2d(d.labels, 'labels', b, t) : undefined,
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
