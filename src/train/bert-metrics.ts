/**
 * BERT evaluation metrics over fixed batches:
 *   MLM loss      = Σ −log p(label) over predicted positions / their count (not a mean of batch means)
 *   MLM accuracy  = share of predicted positions whose argmax is the original token
 *   NSP accuracy  = share of pairs whose argmax over {is next, random} is right
 */
import type { Bert, BertInputs, PreTrainingOutput } from '../models/bert.ts';
import { autocast, noGrad, withScope } from '../tensor/tensor.ts';
import type { BertBatch } from '../data/bert-batches.ts';
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';

export interface BertMetrics {
  mlmLoss: number;
  mlmAccuracy: number;
  /** null for MLM-only batches. */
  nspAccuracy: number | null;
  nspLoss: number | null;
  predictions: number;
  pairs: number;
}

export class MetricsAccumulator {
  private mlmLossSum = 0;
  private predictions = 0;
  private correct = 0;
  private nspLossSum = 0;
  private pairs = 0;
  private nspCorrect = 0;

  add(out: PreTrainingOutput, b: BertBatch): void {
    const logits = out.predictionLogits.data;
    const v = out.predictionLogits.shape[out.predictionLogits.ndim - 1]!;
    let n = 0;
    for (let i = 0; i < b.labels.length; i++) {
      const label = b.labels[i]!;
      if (label === IGNORE_INDEX) continue;
      n++;
      let best = 0;
      for (let j = 1; j < v; j++) if (logits[i * v + j]! > logits[i * v + best]!) best = j;
      if (best === label) this.correct++;
    }
    if (out.mlmLoss) this.mlmLossSum += out.mlmLoss.item() * n;
    this.predictions += n;
    if (b.nspLabels && out.nspLoss) {
      const s = out.seqRelationshipLogits.data;
      for (let r = 0; r < b.batch; r++) if ((s[2 * r + 1]! > s[2 * r]! ? 1 : 0) === b.nspLabels[r]) this.nspCorrect++;
      this.nspLossSum += out.nspLoss.item() * b.batch;
      this.pairs += b.batch;
    }
  }

  result(): BertMetrics {
    const p = Math.max(1, this.predictions);
    return {
      mlmLoss: this.mlmLossSum / p, mlmAccuracy: this.correct / p,
      nspAccuracy: this.pairs ? this.nspCorrect / this.pairs : null, nspLoss: this.pairs ? this.nspLossSum / this.pairs : null,
      predictions: this.predictions, pairs: this.pairs,
    };
  }
}

export function bertInputs(b: BertBatch): BertInputs {
  return { inputIds: b.inputIds, batch: b.batch, length: b.length, tokenTypeIds: b.tokenTypeIds, attentionMask: b.attentionMask };
}

/** Metrics of a model over fixed batches (no gradients, no dropout). */
export function evaluateBert(model: Bert, batches: readonly BertBatch[], bf16 = false): BertMetrics {
  const wasTraining = model.training;
  model.eval();
  const acc = new MetricsAccumulator();
  try {
    for (const b of batches) {
      noGrad(() => autocast(bf16, () => withScope(() => acc.add(model.forward(bertInputs(b), b.labels, b.nspLabels), b))));
    }
  } finally {
    model.train(wasTraining);
  }
  return acc.result();
}
