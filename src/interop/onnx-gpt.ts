/**
 * GPT-2 as an ONNX graph with the interface optimum / Transformers.js use for decoders:
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, past + seq] int64,
 *            position_ids [batch, seq] int64, past_key_values.{i}.key/.value [batch, heads, past, head_dim]
 *   outputs  logits [batch, seq, vocab], present.{i}.key/.value [batch, heads, past + seq, head_dim]
 *
 * The first step feeds past tensors with past = 0. Query s (absolute position past + s) may attend
 * to key j iff j ≤ past + s and attention_mask[j] = 1, as GPT2LMHeadModel does.
 * GPT2ForSequenceClassification (no cache) outputs logits [batch, labels] = score(h at the last
 * attended token), the token Primer and transformers pool with right padding.
 */
import type { GPTConfig } from '../models/gpt.ts';
import { OnnxDataType } from './onnx-proto.ts';
import { attention, dimScalar, gelu, keyPaddingMask, layerNorm, linear, mergeHeads, splitHeads, type OnnxGraphBuilder } from './onnx-graph.ts';

const { FLOAT, INT64 } = OnnxDataType;

function gptShape(cfg: GPTConfig): { c: number; h: number; d: number } {
  return { c: cfg.n_embd, h: cfg.n_head, d: cfg.n_embd / cfg.n_head };
}

/** allowed[b, 0, s, j] = (j ≤ past + s) ∧ mask[b, j], with past = L − S. */
export function causalMask(g: OnnxGraphBuilder, inputIds: string, attentionMask: string): string {
  const seq = dimScalar(g, inputIds, 1);
  const total = dimScalar(g, attentionMask, 1);
  const past = g.op('Sub', [total, seq]);
  const one = g.int64([1], true);
  const queryPos = g.op('Range', [past, total, one]); // [S]
  const keyPos = g.op('Range', [g.int64([0], true), total, one]); // [L]
  const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [keyPos, g.int64([0])]), g.op('Unsqueeze', [queryPos, g.int64([1])])]); // [S, L]
  return g.op('And', [causal, keyPaddingMask(g, attentionMask)]); // [B, 1, S, L]
}

/**
 * The transformer body; with `cache`, each layer's keys/values are appended to the past inputs and
 * returned as present outputs. Returns the final hidden states [B, S, C].
 */
function gptBody(g: OnnxGraphBuilder, cfg: GPTConfig, cache: boolean): string {
  const { c, h, d } = gptShape(cfg);
  const eps = cfg.layer_norm_epsilon ?? 1e-5;
  const inputIds = g.input('input_ids', INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', INT64, ['batch_size', cache ? 'total_sequence_length' : 'sequence_length']);
  let positions: string;
  if (cache) {
    positions = g.input('position_ids', INT64, ['batch_size', 'sequence_length']);
  } else {
    // Positions 0..S-1 (right padding: pads come after every real token).
    positions = g.op('Range', [g.int64([0], true), dimScalar(g, inputIds, 1), g.int64([1], true)]);
  }
  const allowed = causalMask(g, inputIds, attentionMask);
  let x = g.op('Add', [g.op('Gather', [g.weight('transformer.wte.weight'), inputIds]), g.op('Gather', [g.weight('transformer.wpe.weight'), positions])]);
  for (let i = 0; i < cfg.n_layer; i++) {
    const p = `transformer.h.${i}`;
    const qkv = linear(g, layerNorm(g, x, `${p}.ln_1`, eps), `${p}.attn.c_attn`, 'in_out');
    const [q, k, v] = g.opN('Split', [qkv, g.int64([c, c, c])], 3, { axis: 2 }).map((y) => splitHeads(g, y, h, d)) as [string, string, string];
    let keys = k;
    let values = v;
    if (cache) {
      const pastShape = ['batch_size', h, 'past_sequence_length', d];
      const presentShape = ['batch_size', h, 'total_sequence_length', d];
      const pastK = g.input(`past_key_values.${i}.key`, FLOAT, pastShape);
      const pastV = g.input(`past_key_values.${i}.value`, FLOAT, pastShape);
      keys = g.op('Concat', [pastK, k], { axis: 2 }, `present.${i}.key`);
      values = g.op('Concat', [pastV, v], { axis: 2 }, `present.${i}.value`);
      g.output(keys, keys, FLOAT, presentShape);
      g.output(values, values, FLOAT, presentShape);
    }
    const y = mergeHeads(g, attention(g, q, keys, values, allowed, d), c);
    x = g.op('Add', [x, linear(g, y, `${p}.attn.c_proj`, 'in_out')]);
    const act = gelu(g, linear(g, layerNorm(g, x, `${p}.ln_2`, eps), `${p}.mlp.c_fc`, 'in_out'), cfg.activation_function === 'gelu' ? 'erf' : 'tanh');
    x = g.op('Add', [x, linear(g, act, `${p}.mlp.c_proj`, 'in_out')]);
  }
  return layerNorm(g, x, 'transformer.ln_f', eps);
}

/** GPT2LMHeadModel with past key values: logits = h · wteᵀ (tied embedding) or h · lm_headᵀ (untied). */
export function buildGptLm(g: OnnxGraphBuilder, cfg: GPTConfig): void {
  const hidden = gptBody(g, cfg, true);
  const logits = g.op('MatMul', [hidden, g.op('Transpose', [g.weight(cfg.tie_word_embeddings === false ? 'lm_head.weight' : 'transformer.wte.weight')], { perm: [1, 0] })], {}, 'logits');
  g.output(logits, 'logits', FLOAT, ['batch_size', 'sequence_length', cfg.vocab_size]);
}

/** GPT2ForSequenceClassification: logits[b] = score.weight · h[b, Σ_j mask[b, j] − 1]. */
export function buildGptSequenceClassifier(g: OnnxGraphBuilder, cfg: GPTConfig, labels: number): void {
  const hidden = gptBody(g, cfg, false);
  const perToken = linear(g, hidden, 'score', 'out_in', false); // [B, S, K]
  const count = g.op('ReduceSum', ['attention_mask', g.int64([1])], { keepdims: 1 }); // [B, 1]
  const last = g.op('Sub', [count, g.int64([1], true)]);
  g.op('GatherND', [perToken, last], { batch_dims: 1 }, 'logits');
  g.output('logits', 'logits', FLOAT, ['batch_size', labels]);
}
