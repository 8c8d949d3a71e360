/**
 * BERT as ONNX graphs with the interface optimum / Transformers.js use for encoders:
 *
 *   inputs   input_ids, attention_mask, token_type_ids: [batch, seq] int64
 *   outputs  BertForMaskedLM                 logits [batch, seq, vocab]
 *            BertForSequenceClassification   logits [batch, labels]
 *            BertForTokenClassification      logits [batch, seq, labels]
 *            BertForQuestionAnswering        start_logits, end_logits [batch, seq]
 *
 * Post-LN encoder as models/bert.ts: e = LN(word + type + position) (no position with relative_key, whose
 * attention adds q_i · d_{i−j} to the scores); per layer
 * a = LN(x + attn(x)), x = LN(a + W₂·gelu(W₁·a)); padded keys (mask 0) get no attention.
 */
import type { BertConfig } from '../models/bert.ts';
import type { Pooling } from '../models/heads.ts';
import { InteropError } from './errors.ts';
import { OnnxDataType } from './onnx-proto.ts';
import { attention, dimScalar, gelu, keyPaddingMask, layerNorm, linear, mergeHeads, splitHeads, type OnnxGraphBuilder } from './onnx-graph.ts';

const { FLOAT, INT64 } = OnnxDataType;

const activation = (cfg: BertConfig) => (cfg.hidden_act === 'gelu_new' ? 'tanh' : 'erf');

/** The encoder: last hidden state [B, S, C]. */
function bertBody(g: OnnxGraphBuilder, cfg: BertConfig): string {
  const c = cfg.hidden_size;
  const h = cfg.num_attention_heads;
  const d = c / h;
  const eps = cfg.layer_norm_eps ?? 1e-12;
  const shape = ['batch_size', 'sequence_length'];
  const inputIds = g.input('input_ids', INT64, shape);
  const attentionMask = g.input('attention_mask', INT64, shape);
  const tokenTypeIds = g.input('token_type_ids', INT64, shape);
  const positions = g.op('Range', [g.int64([0], true), dimScalar(g, inputIds, 1), g.int64([1], true)]);
  const e = 'bert.embeddings';
  const words = g.op('Add', [g.op('Gather', [g.weight(`${e}.word_embeddings.weight`), inputIds]), g.op('Gather', [g.weight(`${e}.token_type_embeddings.weight`), tokenTypeIds])]);
  const relative = cfg.position_embedding_type === 'relative_key';
  let x = layerNorm(g, relative ? words : g.op('Add', [words, g.op('Gather', [g.weight(`${e}.position_embeddings.weight`), positions])]), `${e}.LayerNorm`, eps);
  const allowed = keyPaddingMask(g, attentionMask);
  // relative_key: row i − j + P − 1 of each layer's distance table, [S, S] indices shared by the layers.
  const distance = relative ? g.op('Add', [g.op('Sub', [g.op('Unsqueeze', [positions, g.int64([1])]), g.op('Unsqueeze', [positions, g.int64([0])])]),
    g.int64([cfg.max_position_embeddings - 1], true)]) : '';
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `bert.encoder.layer.${i}`;
    const heads = (name: string) => splitHeads(g, linear(g, x, `${p}.attention.self.${name}`, 'out_in'), h, d);
    const q = heads('query');
    // q_i · d_{i−j}: [B, H, S, 1, D] · [S, D, S] (the distances gathered per query row, transposed) → [B, H, S, 1, S].
    const byDistance = relative ? g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [q, g.int64([3])]),
      g.op('Transpose', [g.op('Gather', [g.weight(`${p}.attention.self.distance_embedding.weight`), distance])], { perm: [0, 2, 1] })]), g.int64([3])]) : undefined;
    const y = mergeHeads(g, attention(g, q, heads('key'), heads('value'), allowed, d, byDistance), c);
    const a = layerNorm(g, g.op('Add', [linear(g, y, `${p}.attention.output.dense`, 'out_in'), x]), `${p}.attention.output.LayerNorm`, eps);
    const inner = gelu(g, linear(g, a, `${p}.intermediate.dense`, 'out_in'), activation(cfg));
    x = layerNorm(g, g.op('Add', [linear(g, inner, `${p}.output.dense`, 'out_in'), a]), `${p}.output.LayerNorm`, eps);
  }
  return x;
}

/** BertForMaskedLM: logits = LN(gelu(W·h + b)) · word_embeddingsᵀ + bias. */
export function buildBertMaskedLm(g: OnnxGraphBuilder, cfg: BertConfig): void {
  const hidden = bertBody(g, cfg);
  const t = layerNorm(g, gelu(g, linear(g, hidden, 'cls.predictions.transform.dense', 'out_in'), activation(cfg)), 'cls.predictions.transform.LayerNorm', cfg.layer_norm_eps ?? 1e-12);
  const decoder = g.op('Transpose', [g.weight('bert.embeddings.word_embeddings.weight')], { perm: [1, 0] });
  const logits = g.op('Add', [g.op('MatMul', [t, decoder]), g.weight('cls.predictions.bias')], {}, 'logits');
  g.output(logits, 'logits', FLOAT, ['batch_size', 'sequence_length', cfg.vocab_size]);
}

/** BertForSequenceClassification: logits = W·pool(h) + b, pool = tanh(pooler(h₀)) (or h₀ with 'cls'). */
export function buildBertSequenceClassifier(g: OnnxGraphBuilder, cfg: BertConfig, labels: number, pooling: Pooling): void {
  if (pooling !== 'pooler' && pooling !== 'cls') {
    throw new InteropError('UNSUPPORTED_ARCHITECTURE', `ONNX export: BERT sequence classifiers pooled with '${pooling}' are not supported (only 'pooler' and 'cls', as transformers)`);
  }
  const hidden = bertBody(g, cfg);
  const first = g.op('Gather', [hidden, g.int64([0], true)], { axis: 1 }); // [B, C]
  const pooled = pooling === 'pooler' ? g.op('Tanh', [linear(g, first, 'bert.pooler.dense', 'out_in')]) : first;
  g.output(linear(g, pooled, 'classifier', 'out_in'), 'logits', FLOAT, ['batch_size', labels]);
}

/** BertForTokenClassification: logits_t = W·h_t + b. */
export function buildBertTokenClassifier(g: OnnxGraphBuilder, cfg: BertConfig, labels: number): void {
  g.output(linear(g, bertBody(g, cfg), 'classifier', 'out_in'), 'logits', FLOAT, ['batch_size', 'sequence_length', labels]);
}

/** BertForQuestionAnswering: [start_t, end_t] = W·h_t + b. */
export function buildBertQuestionAnswering(g: OnnxGraphBuilder, cfg: BertConfig): void {
  const both = linear(g, bertBody(g, cfg), 'qa_outputs', 'out_in'); // [B, S, 2]
  const [start, end] = g.opN('Split', [both, g.int64([1, 1])], 2, { axis: 2 });
  const shape = ['batch_size', 'sequence_length'];
  g.output(g.op('Squeeze', [start!, g.int64([2])]), 'start_logits', FLOAT, shape);
  g.output(g.op('Squeeze', [end!, g.int64([2])]), 'end_logits', FLOAT, shape);
}
