/**
 * LlamaForCausalLM / Qwen2ForCausalLM as an ONNX graph with the decoder interface optimum and
 * Transformers.js use (the same as GPT-2's, see onnx-gpt.ts):
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, past + seq] int64,
 *            position_ids [batch, seq] int64, past_key_values.{i}.key/.value [batch, kv_heads, past, head_dim]
 *   outputs  logits [batch, seq, vocab], present.{i}.key/.value [batch, kv_heads, past + seq, head_dim]
 *
 * Keys are stored after RoPE, as transformers caches them. The rotary angles are position_ids ·
 * inv_freq (inv_freq precomputed, llama3 scaling included, as models/llama.ts computes it), so
 * left-padded batches and cached steps rotate by each token's true position.
 *
 * Grouped-query attention without repeating K/V: query heads j·n … j·n+n−1 share key/value head j,
 * so q [B, H, S, D] is viewed as [B, KV, n·S, D] (heads are contiguous), attends to K/V [B, KV, L, D],
 * and the result is viewed back as [B, H, S, D]; the mask [B, 1, S, L] is tiled n times along the
 * query axis to match.
 */
import { headDimOf, kvHeadsOf, attentionBiases, ropeInvFreq, type LlamaConfig } from '../models/llama.ts';
import { OnnxDataType } from './onnx-proto.ts';
import { attention, linear, mergeHeads, splitHeads, type OnnxGraphBuilder } from './onnx-graph.ts';
import { causalMask } from './onnx-gpt.ts';

const { FLOAT, INT64 } = OnnxDataType;

/** x · rsqrt(mean(x²) + eps) · weight over the last axis (HF LlamaRMSNorm, fp32). */
function rmsNorm(g: OnnxGraphBuilder, x: string, weight: string, eps: number): string {
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.float(eps)])])]);
  return g.op('Mul', [g.weight(weight), g.op('Mul', [x, inv])]);
}

/** x·cos + rotate_half(x)·sin on x [B, N, S, D]; rotate_half(x) = cat(−x[…, D/2:], x[…, :D/2]). */
function applyRope(g: OnnxGraphBuilder, x: string, cos: string, sin: string, d: number): string {
  const [first, second] = g.opN('Split', [x, g.int64([d / 2, d / 2])], 2, { axis: 3 }) as [string, string];
  const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: 3 });
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
}

/** cos and sin [B, 1, S, D] of position_ids · inv_freq, frequencies laid out as cat(inv_freq, inv_freq). */
function ropeTables(g: OnnxGraphBuilder, positionIds: string, cfg: LlamaConfig): { cos: string; sin: string } {
  const inv = Float32Array.from(ropeInvFreq(cfg));
  const invFreq = g.constant('rope.inv_freq', Float32Array.from([...inv, ...inv]), [1, 1, 2 * inv.length]);
  const positions = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: FLOAT }), g.int64([2])]); // [B, S, 1]
  const angles = g.op('Unsqueeze', [g.op('Mul', [positions, invFreq]), g.int64([1])]); // [B, 1, S, D]
  return { cos: g.op('Cos', [angles]), sin: g.op('Sin', [angles]) };
}

/** Builds the decoder with past key values (see the module comment). */
export function buildLlamaLm(g: OnnxGraphBuilder, cfg: LlamaConfig): void {
  const [c, h, kv, d] = [cfg.hidden_size, cfg.num_attention_heads, kvHeadsOf(cfg), headDimOf(cfg)];
  const n = h / kv;
  const eps = cfg.rms_norm_eps ?? 1e-6;
  const bias = attentionBiases(cfg);
  const inputIds = g.input('input_ids', INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', INT64, ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', INT64, ['batch_size', 'sequence_length']);
  const allowed = causalMask(g, inputIds, attentionMask); // [B, 1, S, L]
  const grouped = n === 1 ? allowed : g.op('Concat', Array.from({ length: n }, () => allowed), { axis: 2 }); // [B, 1, n·S, L]
  const { cos, sin } = ropeTables(g, positionIds, cfg);
  let x = g.op('Gather', [g.weight('model.embed_tokens.weight'), inputIds]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const normed = rmsNorm(g, x, `${p}.input_layernorm.weight`, eps);
    const q = applyRope(g, splitHeads(g, linear(g, normed, `${p}.self_attn.q_proj`, 'out_in', bias.qkv), h, d), cos, sin, d);
    const k = applyRope(g, splitHeads(g, linear(g, normed, `${p}.self_attn.k_proj`, 'out_in', bias.qkv), kv, d), cos, sin, d);
    const v = splitHeads(g, linear(g, normed, `${p}.self_attn.v_proj`, 'out_in', bias.qkv), kv, d);
    const pastShape = ['batch_size', kv, 'past_sequence_length', d];
    const presentShape = ['batch_size', kv, 'total_sequence_length', d];
    const keys = g.op('Concat', [g.input(`past_key_values.${i}.key`, FLOAT, pastShape), k], { axis: 2 }, `present.${i}.key`);
    const values = g.op('Concat', [g.input(`past_key_values.${i}.value`, FLOAT, pastShape), v], { axis: 2 }, `present.${i}.value`);
    g.output(keys, keys, FLOAT, presentShape);
    g.output(values, values, FLOAT, presentShape);
    const qGrouped = n === 1 ? q : g.op('Reshape', [q, g.int64([0, kv, -1, d])]);
    const y = attention(g, qGrouped, keys, values, grouped, d);
    const yHeads = n === 1 ? y : g.op('Reshape', [y, g.int64([0, h, -1, d])]);
    x = g.op('Add', [x, linear(g, mergeHeads(g, yHeads, h * d), `${p}.self_attn.o_proj`, 'out_in', bias.o)]);
    const m = rmsNorm(g, x, `${p}.post_attention_layernorm.weight`, eps);
    const gate = linear(g, m, `${p}.mlp.gate_proj`, 'out_in', cfg.mlp_bias ?? false);
    const up = linear(g, m, `${p}.mlp.up_proj`, 'out_in', cfg.mlp_bias ?? false);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]); // SwiGLU: silu(gate)·up
    x = g.op('Add', [x, linear(g, act, `${p}.mlp.down_proj`, 'out_in', cfg.mlp_bias ?? false)]);
  }
  const hidden = rmsNorm(g, x, 'model.norm.weight', eps);
  const head = cfg.tie_word_embeddings ? 'model.embed_tokens' : 'lm_head';
  const logits = g.op('MatMul', [hidden, g.op('Transpose', [g.weight(`${head}.weight`)], { perm: [1, 0] })], {}, 'logits');
  g.output(logits, 'logits', FLOAT, ['batch_size', 'sequence_length', cfg.vocab_size]);
}
