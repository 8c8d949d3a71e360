/**
 * relative_key BERT (HF's position_embedding_type "relative_key"): the local-attention initialisation
 * puts head h of every layer on its neighbour offset from step 0, for any input; the identity pooler
 * passes tanh(h_[CLS]) on. (Outputs and gradients against PyTorch: test/models/fixtures.test.ts,
 * bert-relative-tiny.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bert, LOCAL_HEAD_OFFSETS, initLocalAttention, initPoolerIdentity, type BertConfig } from '../../src/models/bert.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/util/random.ts';

const config: BertConfig = {
  model_type: 'bert', vocab_size: 200, hidden_size: 48, num_hidden_layers: 2, num_attention_heads: 6, intermediate_size: 96,
  max_position_embeddings: 40, position_embedding_type: 'relative_key',
};

/** Where each head of layer `layer` puts most of its attention, as offsets j − i, from every interior query. */
function attentionPeaks(model: Bert, ids: Int32Array, t: number, layer: number): number[][] {
  return noGrad(() => {
    const h = config.num_attention_heads, d = config.hidden_size / h, p = config.max_position_embeddings;
    let hidden = model.bert.embeddings.forward({ inputIds: ids, batch: 1, length: t });
    for (let l = 0; l < layer; l++) hidden = model.bert.layers[l]!.forward(hidden, null);
    const self = model.bert.layers[layer]!.attentionSelf;
    const q = self.query.forward(hidden).data, k = self.key.forward(hidden).data, dist = self.distance_embedding!.weight.data;
    return Array.from({ length: h }, (_, head) => {
      const peaks: number[] = [];
      for (let i = 4; i < t - 4; i++) {
        let best = -Infinity, at = 0;
        for (let j = 0; j < t; j++) {
          let s = 0;
          for (let e = 0; e < d; e++) s += q[i * 48 + head * d + e]! * (k[j * 48 + head * d + e]! + dist[(i - j + p - 1) * d + e]!);
          if (s > best) [best, at] = [s, j - i];
        }
        peaks.push(at);
      }
      return peaks;
    });
  });
}

test('initLocalAttention: every head of every layer starts on its offset (−1, +1, −2, +2, …) for random text', () => {
  const model = new Bert(config, 5);
  const rng = new Rng(9);
  const ids = Int32Array.from({ length: 32 }, () => 5 + rng.int(190));
  const before = attentionPeaks(model, ids, 32, 0);
  assert.ok(before.every((peaks, head) => peaks.filter((o) => o === LOCAL_HEAD_OFFSETS[head]).length < peaks.length / 2), 'random init is not local');
  initLocalAttention(model);
  for (const layer of [0, 1]) {
    attentionPeaks(model, ids, 32, layer).forEach((peaks, head) => {
      assert.ok(peaks.every((o) => o === LOCAL_HEAD_OFFSETS[head]), `layer ${layer} head ${head}: peaks at ${peaks.join(',')}`);
    });
  }
  assert.throws(() => initLocalAttention(new Bert({ ...config, position_embedding_type: 'absolute' })), /relative_key/);
});

test('relative_key BERT: no absolute positions, so a padded-away prefix leaves the hidden states unchanged', () => {
  const model = new Bert(config, 6);
  model.eval();
  const rng = new Rng(3);
  const ids = Int32Array.from({ length: 12 }, () => 5 + rng.int(190));
  // The same 12 tokens alone and after 3 masked-out ones: only distances count, so they are the same.
  const mask = Uint8Array.from({ length: 15 }, (_, i) => (i < 3 ? 0 : 1));
  const shifted = Int32Array.from([7, 8, 9, ...ids]);
  const [plain, moved] = noGrad(() => [
    model.bert.forward({ inputIds: ids, batch: 1, length: 12 }).lastHiddenState.data,
    model.bert.forward({ inputIds: shifted, batch: 1, length: 15, attentionMask: mask }).lastHiddenState.data.subarray(3 * 48),
  ]);
  let err = 0;
  for (let i = 0; i < plain.length; i++) err = Math.max(err, Math.abs(plain[i]! - moved[i]!));
  assert.ok(err < 1e-5, `max difference ${err}`);
  const absolute = new Bert({ ...config, position_embedding_type: 'absolute' }, 6);
  absolute.eval();
  const [a, b] = noGrad(() => [
    absolute.bert.forward({ inputIds: ids, batch: 1, length: 12 }).lastHiddenState.data,
    absolute.bert.forward({ inputIds: shifted, batch: 1, length: 15, attentionMask: mask }).lastHiddenState.data.subarray(3 * 48),
  ]);
  assert.ok(Math.abs(a[0]! - b[0]!) > 1e-4, 'absolute positions do depend on where the text starts');
});

test('initPoolerIdentity: the pooled output is tanh of the [CLS] hidden state', () => {
  const model = new Bert(config, 7);
  model.eval();
  initPoolerIdentity(model);
  const ids = Int32Array.from([2, 17, 40, 99, 3]);
  const { lastHiddenState, pooledOutput } = noGrad(() => model.bert.forward({ inputIds: ids, batch: 1, length: 5 }));
  for (let c = 0; c < 48; c++) assert.ok(Math.abs(pooledOutput.data[c]! - Math.tanh(lastHiddenState.data[c]!)) < 1e-6, `column ${c}`);
});
