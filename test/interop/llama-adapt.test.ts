/**
 * The README's three commands on a Hugging Face Llama directory (config.json with
 * LlamaForCausalLM, a 2-shard BF16 checkpoint, tokenizer.json):
 *   primer import HF --out base
 *   primer finetune --objective sft --model base --data qa.jsonl --lora-r 4 --merge-lora --out sft
 *   primer export --format onnx --model sft/merged --out web
 * and Transformers.js generates from `web` the same greedy tokens as Primer's merged model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, Tensor, env } from '@huggingface/transformers';
import { runPrimer } from '../helpers/cli.ts';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { loadAnyModelDir, modelTensors } from '../../src/models/load.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { colorQa, writeJsonl } from '../adapt/fixtures.ts';
import { removeTempDirs, tempDir, writeShards } from './helpers.ts';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useFSCache = false;

test.after(removeTempDirs);

const primer = runPrimer;

test('import a sharded BF16 Llama, finetune --lora-r --merge-lora, export --format onnx: Transformers.js generates what Primer generates', async () => {
  const root = tempDir('llama-adapt');
  // A Hub-style directory: HF config, weights in 2 BF16 shards with an index, a tokenizer.json.
  const texts = colorQa(200, 99).map((r) => `System: be brief\nUser: ${r.prompt}\nAssistant: ${r.response}`);
  const tokenizer = trainBpe(texts, { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
  const config: LlamaConfig = {
    model_type: 'llama', vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
  };
  const hub = join(root, 'hub');
  mkdirSync(hub);
  writeShards(hub, modelTensors(new Llama(config, 5)).map((t) => ({ ...t, dtype: 'BF16' as const })), 2);
  writeFileSync(join(hub, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], ...config, torch_dtype: 'bfloat16' }));
  tokenizer.save(hub);

  const base = join(root, 'base');
  const imported = JSON.parse(await primer(['import', hub, '--out', base]));
  assert.deepEqual([imported.architecture, imported.dtypes, imported.shards], ['LlamaForCausalLM', ['BF16'], 2]);

  const sft = join(root, 'sft');
  const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(40, 2));
  const log = await primer(['finetune', '--objective', 'sft', '--model', base, '--data', data, '--out', sft, '--steps', '8', '--lr', '1e-2', '--lora-r', '4', '--merge-lora']);
  const m = /held-out response perplexity: ([\d.]+) → ([\d.]+)/.exec(log);
  assert.ok(m && Number(m[2]) < Number(m[1]), log);
  assert.ok(existsSync(join(sft, 'adapter_model.safetensors')) && existsSync(join(sft, 'merged', 'model.safetensors')));

  const web = join(root, 'web');
  const exported = JSON.parse(await primer(['export', '--format', 'onnx', '--model', join(sft, 'merged'), '--out', web]));
  assert.ok(exported.files.includes('onnx/model.onnx') && exported.files.includes('tokenizer.json'));

  const merged = loadAnyModelDir(join(sft, 'merged')).model as Llama;
  const text = 'User: What color is the sky?\nAssistant:';
  const prompt = tokenizer.encode(text, null, { addSpecialTokens: false }).ids;
  const tjsTokenizer = await AutoTokenizer.from_pretrained(web);
  assert.deepEqual(Array.from(tjsTokenizer.encode(text, { add_special_tokens: false })), prompt);
  const tjs = await AutoModelForCausalLM.from_pretrained(web, { dtype: 'fp32' });
  try {
    const ids = (xs: readonly number[]) => new Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);
    const out = await tjs.generate({ input_ids: ids(prompt), attention_mask: ids(prompt.map(() => 1)), max_new_tokens: 6, do_sample: false });
    const tjsIds = Array.from((out as Tensor).data as BigInt64Array, Number).slice(prompt.length);
    const primerIds: number[] = [];
    for (let k = 0; k < 6; k++) {
      const seq = [...prompt, ...primerIds];
      const row = noGrad(() => merged.forward(Int32Array.from(seq), 1, seq.length).logits.data).subarray((seq.length - 1) * config.vocab_size);
      let best = 0;
      for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
      primerIds.push(best);
      if (best === config.eos_token_id) break;
    }
    assert.deepEqual(tjsIds, primerIds);
    assert.equal(primerIds.length, 6); // no early end-of-text: six cached decoding steps compared
  } finally {
    await tjs.dispose();
  }
});
