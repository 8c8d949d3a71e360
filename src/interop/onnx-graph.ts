/**
 * A tiny ONNX graph builder over the protobuf messages of onnx-proto.ts, plus the transformer layers
 * GPT-2 and BERT share, written with standard ai.onnx ops only (opset 17: LayerNormalization is the
 * newest op used), so any ONNX runtime runs the graphs. Weights become fp32 initializers under their
 * Hugging Face names; values get unique names from their op type and a counter.
 */
import { encodeOnnxModel, OnnxAttributeType, OnnxDataType, valueInfo, type OnnxAttribute, type OnnxDim, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.ts';

export const ONNX_OPSET = 17;
/** IR version 8 is what opset 17 shipped with (onnx 1.12). */
export const ONNX_IR_VERSION = 8;
/** float32's lowest value: what transformers fills masked attention scores with. */
const MASKED_SCORE = -3.4028234663852886e38;

/** An attribute value: an int, a list of ints, or { f } for a float. */
export type AttrValue = number | readonly number[] | { f: number };

export interface NamedTensor {
  shape: readonly number[];
  data: Float32Array;
}

function bytesOf(view: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  // ONNX raw_data is little-endian, as typed arrays are on every platform Node supports.
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function attribute(name: string, v: AttrValue): OnnxAttribute {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`ONNX attribute ${name}: ${v} is not an integer (wrap floats as { f })`);
    return { name, type: OnnxAttributeType.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: OnnxAttributeType.INTS, ints: [...(v as number[])] };
  return { name, type: OnnxAttributeType.FLOAT, f: (v as { f: number }).f };
}

export class OnnxGraphBuilder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxTensor[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private readonly constants = new Map<string, string>();
  private readonly added = new Set<string>();
  private counter = 0;

  /** `weights`: the model's tensors by Hugging Face name, added as initializers on first use. */
  constructor(private readonly weights: ReadonlyMap<string, NamedTensor>) {}

  input(name: string, elemType: number, shape: readonly OnnxDim[]): string {
    this.inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  /** Declares `value` a graph output under `name` (an Identity when the value is named otherwise). */
  output(value: string, name: string, elemType: number, shape: readonly OnnxDim[]): void {
    if (value !== name) this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, elemType, shape));
  }

  /** The initializer holding weight `name` (fp32, shape as stored). */
  weight(name: string): string {
    if (this.added.has(name)) return name;
    const w = this.weights.get(name);
    if (!w) throw new RangeError(`ONNX export: the model has no tensor ${name}`);
    this.initializers.push({ name, dims: [...w.shape], dataType: OnnxDataType.FLOAT, rawData: bytesOf(w.data) });
    this.added.add(name);
    return name;
  }

  /** An int64 constant (shape [values.length], or a scalar with scalar = true), shared between uses. */
  int64(values: readonly number[], scalar = false): string {
    const key = `i64${scalar ? 's' : ''}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    this.initializers.push({ name, dims: scalar ? [] : [values.length], dataType: OnnxDataType.INT64, rawData: bytesOf(BigInt64Array.from(values, BigInt)) });
    this.constants.set(key, name);
    return name;
  }

  /** A float32 scalar constant. */
  float(value: number): string {
    const key = `f32:${value}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    this.initializers.push({ name, dims: [], dataType: OnnxDataType.FLOAT, rawData: bytesOf(Float32Array.of(value)) });
    this.constants.set(key, name);
    return name;
  }

  /** A named fp32 tensor constant computed at export time (e.g. rotary frequencies). */
  constant(name: string, data: Float32Array, shape: readonly number[]): string {
    if (this.added.has(name)) return name;
    this.initializers.push({ name, dims: [...shape], dataType: OnnxDataType.FLOAT, rawData: bytesOf(data) });
    this.added.add(name);
    return name;
  }

  /** Adds a node with one output; returns the output's name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outputName?: string): string {
    return this.opN(opType, inputs, 1, attrs, outputName ? [outputName] : undefined)[0]!;
  }

  opN(opType: string, inputs: readonly string[], count: number, attrs: Record<string, AttrValue> = {}, outputNames?: readonly string[]): string[] {
    const id = this.counter++;
    const output = outputNames ? [...outputNames] : Array.from({ length: count }, (_, k) => `${opType}_${id}${count > 1 ? `_${k}` : ''}`);
    this.nodes.push({ name: `${opType}_${id}`, opType, input: [...inputs], output, attribute: Object.entries(attrs).map(([n, v]) => attribute(n, v)) });
    return output;
  }

  build(graphName: string, metadata: Record<string, string> = {}): OnnxModel {
    return {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'primer',
      producerVersion: '0.1.0',
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    };
  }

  encode(graphName: string, metadata?: Record<string, string>): Uint8Array {
    return encodeOnnxModel(this.build(graphName, metadata));
  }
}

// ---- layers shared by the GPT-2 and BERT lowerings --------------------------------------------

/** y = (x − mean) / √(var + eps) · weight + bias over the last axis. */
export function layerNorm(g: OnnxGraphBuilder, x: string, prefix: string, eps: number): string {
  return g.op('LayerNormalization', [x, g.weight(`${prefix}.weight`), g.weight(`${prefix}.bias`)], { axis: -1, epsilon: { f: eps } });
}

/** y = x·W + b; W stored [in, out] (GPT-2 Conv1D) or [out, in] (torch Linear, transposed here). */
export function linear(g: OnnxGraphBuilder, x: string, prefix: string, layout: 'in_out' | 'out_in', bias = true): string {
  const w = layout === 'in_out' ? g.weight(`${prefix}.weight`) : g.op('Transpose', [g.weight(`${prefix}.weight`)], { perm: [1, 0] });
  const y = g.op('MatMul', [x, w]);
  return bias ? g.op('Add', [y, g.weight(`${prefix}.bias`)]) : y;
}

/**
 * gelu 'erf':  0.5·x·(1 + erf(x/√2))                      (BERT, GPT-2 activation "gelu")
 * gelu 'tanh': 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))  (GPT-2 "gelu_new")
 */
export function gelu(g: OnnxGraphBuilder, x: string, kind: 'erf' | 'tanh'): string {
  let inner: string;
  if (kind === 'erf') {
    inner = g.op('Erf', [g.op('Mul', [x, g.float(Math.SQRT1_2)])]);
  } else {
    const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const sum = g.op('Add', [x, g.op('Mul', [cube, g.float(0.044715)])]);
    inner = g.op('Tanh', [g.op('Mul', [sum, g.float(Math.sqrt(2 / Math.PI))])]);
  }
  return g.op('Mul', [g.op('Mul', [x, g.float(0.5)]), g.op('Add', [inner, g.float(1)])]);
}

/** [B, S, H·D] → [B, H, S, D]. */
export function splitHeads(g: OnnxGraphBuilder, x: string, heads: number, headDim: number): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, heads, headDim])])], { perm: [0, 2, 1, 3] });
}

/** [B, H, S, D] → [B, S, H·D]. */
export function mergeHeads(g: OnnxGraphBuilder, x: string, hidden: number): string {
  return g.op('Reshape', [g.op('Transpose', [x], { perm: [0, 2, 1, 3] }), g.int64([0, 0, hidden])]);
}

/**
 * Scaled dot-product attention on q [B,H,S,D], k and v [B,H,L,D]:
 *   y = softmax(where(allowed, q·kᵀ/√D, lowest)) · v
 * `allowed` is a bool tensor broadcastable to [B,H,S,L] (causal and/or key-padding mask).
 */
export function attention(g: OnnxGraphBuilder, q: string, k: string, v: string, allowed: string, headDim: number, extraScores?: string): string {
  let dots = g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]);
  if (extraScores) dots = g.op('Add', [dots, extraScores]);
  const scores = g.op('Mul', [dots, g.float(1 / Math.sqrt(headDim))]);
  const masked = g.op('Where', [allowed, scores, g.float(MASKED_SCORE)]);
  return g.op('MatMul', [g.op('Softmax', [masked], { axis: -1 }), v]);
}

/** attention_mask [B, L] (int64, 1 = token) → bool [B, 1, 1, L] for broadcasting over heads and queries. */
export function keyPaddingMask(g: OnnxGraphBuilder, attentionMask: string): string {
  return g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: OnnxDataType.BOOL }), g.int64([1, 2])]);
}

/** Dimension `axis` of x's shape as an int64 scalar. */
export function dimScalar(g: OnnxGraphBuilder, x: string, axis: number): string {
  return g.op('Squeeze', [g.op('Shape', [x], { start: axis, end: axis + 1 }), g.int64([0])]);
}
