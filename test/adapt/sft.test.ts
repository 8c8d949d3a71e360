import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelDir } from '../../src/models/load.ts';
import { loadTokenizerJson } from '../../src/data/tokenizer.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import type { GPT } from '../../src/models/gpt.ts';
import { DEFAULT_CHAT_TEMPLATE, readChatTemplate, renderChat, renderChatText } from '../../src/adapt/chat-template.ts';
import { collate, encodeConversation, parseSftJsonl, sftLoss } from '../../src/adapt/sft.ts';
import { runSft } from '../../src/adapt/sft-run.ts';
import { loadSftData } from '../../src/adapt/instructions.ts';
import { colorQa, makeTinyModelDir, writeJsonl } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-sft-'));
const baseDir = makeTinyModelDir(root);
test.after(() => rmSync(root, { recursive: true, force: true }));

test('bad JSONL lines are rejected with the line named', () => {
  const good = JSON.stringify({ prompt: 'a', response: 'b' });
  assert.throws(() => parseSftJsonl(`${good}\n{"prompt": "x"}\n`, 'd.jsonl'), /d\.jsonl:2: missing string field "response"/);
  assert.throws(() => parseSftJsonl(`${good}\n\n{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}`, 'd.jsonl'),
    /d\.jsonl:3: messages\[1\] has role "bot"; expected one of system, user, assistant/);
  assert.throws(() => parseSftJsonl('{"messages": [{"content": "hi"}]}', 'd.jsonl'), /d\.jsonl:1: messages\[0\] is missing field "role"/);
  assert.throws(() => parseSftJsonl('{"messages": [{"role": "user", "content": "hi"}]}', 'd.jsonl'), /d\.jsonl:1: "messages" has no assistant turn/);
  assert.throws(() => parseSftJsonl('{"prompt": "a", "response": ', 'd.jsonl'), /d\.jsonl:1: not valid JSON/);
  assert.deepEqual(parseSftJsonl(`${good}\n{"system": "s", "prompt": "p", "response": "r"}`), [
    [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }],
    [{ role: 'system', content: 's' }, { role: 'user', content: 'p' }, { role: 'assistant', content: 'r' }],
  ]);
});

test('the default chat template renders turns and marks only assistant answers as trained', () => {
  const messages = [
    { role: 'system' as const, content: 'be brief' },
    { role: 'user' as const, content: 'hi' },
    { role: 'assistant' as const, content: 'hello' },
    { role: 'user' as const, content: 'sky?' },
  ];
  assert.equal(renderChatText(DEFAULT_CHAT_TEMPLATE, { messages, eosToken: '<E>', addGenerationPrompt: true }),
    'System: be brief\nUser: hi\nAssistant: hello<E>\nUser: sky?\nAssistant:');
  assert.deepEqual(renderChat(DEFAULT_CHAT_TEMPLATE, { messages: messages.slice(0, 3), eosToken: '<E>' }), [
    { text: 'System: be brief\nUser: hi\nAssistant:', trained: false },
    { text: ' hello<E>', trained: true },
    { text: '\n', trained: false },
  ]);
  const custom = "{% for message in messages %}{% if not loop.first %}|{% endif %}{{ message.role }}={{ message['content'] }}{% endfor %}";
  assert.equal(renderChatText(custom, { messages: messages.slice(0, 2) }), 'system=be brief|user=hi');
  assert.throws(() => renderChatText('{% raw %}', { messages }), /unsupported statement/);
});

test('label masking: labels are the ids of response tokens only, and the loss counts exactly those', () => {
  const tokenizer = loadTokenizerJson(baseDir);
  const messages = parseSftJsonl(JSON.stringify({ messages: [
    { role: 'user', content: 'What color is the sky?' }, { role: 'assistant', content: 'The sky is blue.' },
    { role: 'user', content: 'And snow?' }, { role: 'assistant', content: 'The snow is white.' },
  ] }))[0]!;
  const ex = encodeConversation(tokenizer, DEFAULT_CHAT_TEMPLATE, messages, 64)!;
  // Rebuild the expected labels segment by segment.
  const expected: number[] = [];
  for (const seg of renderChat(DEFAULT_CHAT_TEMPLATE, { messages, eosToken: '<|endoftext|>' })) {
    for (const id of tokenizer.encode(seg.text, null, { addSpecialTokens: false }).ids) expected.push(seg.trained ? id : -100);
  }
  assert.deepEqual([...ex.labels], expected);
  for (let t = 0; t < ex.ids.length; t++) assert.ok(ex.labels[t] === -100 || ex.labels[t] === ex.ids[t], `position ${t}`);
  const trained = [...ex.ids].filter((_, t) => ex.labels[t] !== -100);
  assert.equal(tokenizer.decode(trained), ' The sky is blue.<|endoftext|> The snow is white.<|endoftext|>');

  const { model } = loadModelDir(baseDir) as { model: GPT };
  model.eval();
  const batch = collate([ex], 0);
  const loss = noGrad(() => withScope(() => sftLoss(model, batch).item()));
  // Token by token: position t predicts labels[t + 1]; average −log p over the trained positions only.
  const logits = noGrad(() => withScope(() => Float32Array.from(model.forward(batch.input, 1, batch.length).logits.data)));
  const v = model.config.vocab_size;
  let total = 0;
  let count = 0;
  for (let t = 0; t + 1 < ex.ids.length; t++) {
    const target = ex.labels[t + 1]!;
    if (target === -100) continue;
    const row = logits.subarray(t * v, (t + 1) * v);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, z) => s + Math.exp(z - max), 0));
    total += lse - row[target]!;
    count++;
  }
  assert.equal(count, trained.length);
  assert.ok(Math.abs(loss - total / count) < 1e-5, `${loss} vs ${total / count}`);
});

test('padding instead of packing: an example gives the same logits alone and in a padded batch', () => {
  const tokenizer = loadTokenizerJson(baseDir);
  const [a, b] = parseSftJsonl(colorQa(2, 5).map((r) => JSON.stringify(r)).join('\n')).map((m) => encodeConversation(tokenizer, DEFAULT_CHAT_TEMPLATE, m, 64)!);
  const long = { ids: Int32Array.from([...a!.ids, ...b!.ids]), labels: Int32Array.from([...a!.labels, ...b!.labels]) };
  const { model } = loadModelDir(baseDir) as { model: GPT };
  model.eval();
  const run = (x: ReturnType<typeof collate>) => noGrad(() => withScope(() => Float32Array.from(model.forward(x.input, x.batch, x.length).logits.data)));
  const alone = run(collate([b!], 0));
  const batch = collate([long, b!], 0);
  assert.equal(batch.length, long.ids.length);
  assert.deepEqual([...batch.labels.subarray(batch.length + b!.ids.length)], new Array(batch.length - b!.ids.length).fill(-100));
  const inBatch = run(batch);
  const v = model.config.vocab_size;
  const row = inBatch.subarray(batch.length * v, (batch.length + b!.ids.length) * v);
  let diff = 0;
  for (let i = 0; i < alone.length; i++) diff = Math.max(diff, Math.abs(alone[i]! - row[i]!));
  assert.ok(diff < 1e-5, `max diff ${diff}`);
});

test('SFT (full and LoRA) lowers held-out response loss and saves the chat template', async () => {
  const data = writeJsonl(join(root, 'train.jsonl'), colorQa(60, 1));
  const common = { model: baseDir, data, steps: 30, batchSize: 8, valFraction: 0.2, log: () => {}, progress: false as const };
  const full = await runSft({ ...common, out: join(root, 'sft-full'), lr: 3e-3 });
  assert.equal(full.valExamples, 12);
  assert.ok(full.after!.loss < full.before.loss - 0.5, `before ${full.before.loss}, after ${full.after!.loss}`);
  assert.equal(readChatTemplate(join(root, 'sft-full')), DEFAULT_CHAT_TEMPLATE);
  assert.equal(JSON.parse(readFileSync(join(root, 'sft-full', 'tokenizer_config.json'), 'utf8')).chat_template, DEFAULT_CHAT_TEMPLATE);
  // Its --out again: starting over would replace the run silently, so it is refused, pointing at --resume.
  const saved = readFileSync(join(root, 'sft-full', 'model.safetensors'));
  await assert.rejects(runSft({ ...common, out: join(root, 'sft-full'), lr: 3e-3 }),
    (e: Error & { code?: string }) => e.code === 'RUN_EXISTS' && e.message === `${join(root, 'sft-full')} already holds a training run; continue it with --resume ${join(root, 'sft-full')} or choose another --out`);
  assert.ok(readFileSync(join(root, 'sft-full', 'model.safetensors')).equals(saved), 'the run is untouched');

  const lora = await runSft({ ...common, out: join(root, 'sft-lora'), lr: 1e-2, lora: { r: 4, alpha: 8, targets: 'all' }, mergeLora: true });
  assert.equal(lora.trainableParameters, 4 * (32 + 96) + 4 * (32 + 32) + 4 * (32 + 128) + 4 * (128 + 32));
  assert.ok(lora.after!.loss < lora.before.loss - 0.2, `before ${lora.before.loss}, after ${lora.after!.loss}`);
  assert.ok(existsSync(join(root, 'sft-lora', 'adapter_model.safetensors')));
  assert.ok(existsSync(join(root, 'sft-lora', 'merged', 'model.safetensors')));
  // The base model directory is untouched by LoRA training.
  assert.equal(lora.before.loss, full.before.loss);
});

test('SFT outputs (full, and the LoRA run\'s merged model) keep the base generation_config.json and tokenizer_config.json fields', async () => {
  const base = makeTinyModelDir(join(root, 'gen-base'));
  const generation = { bos_token_id: 0, eos_token_id: [0, 5], temperature: 0.6 };
  writeFileSync(join(base, 'generation_config.json'), JSON.stringify(generation));
  const tokenizerConfig = join(base, 'tokenizer_config.json');
  writeFileSync(tokenizerConfig, JSON.stringify({ ...JSON.parse(readFileSync(tokenizerConfig, 'utf8')), model_max_length: 48, padding_side: 'left' }));
  const common = { model: base, data: writeJsonl(join(root, 'gen.jsonl'), colorQa(20, 2)), steps: 2, batchSize: 4, lr: 1e-3, log: () => {}, progress: false as const };
  await runSft({ ...common, out: join(root, 'gen-full') });
  await runSft({ ...common, out: join(root, 'gen-lora'), lora: { r: 2, alpha: 4, targets: 'attention' }, mergeLora: true });
  for (const dir of [join(root, 'gen-full'), join(root, 'gen-full', 'checkpoints', 'step-0000002'), join(root, 'gen-lora', 'merged')]) {
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')), generation, dir);
  }
  for (const dir of [join(root, 'gen-full'), join(root, 'gen-lora'), join(root, 'gen-lora', 'merged')]) {
    const saved = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.deepEqual([saved.model_max_length, saved.padding_side], [48, 'left'], dir);
    assert.equal(typeof saved.chat_template, 'string', dir); // the run's template on top
  }
});

test('built-in instruction set: sentiment reviews as question → one-word answer', () => {
  const set = loadSftData('builtin:sentiment');
  assert.ok(set.length > 1000);
  for (const conv of set.slice(0, 50)) {
    assert.equal(conv.length, 2);
    assert.match(conv[0]!.content, /^Is this review positive or negative\? .{1,310}$/s);
    assert.ok(['positive', 'negative'].includes(conv[1]!.content));
  }
  assert.throws(() => loadSftData('builtin:nope'), /unknown built-in instruction set "nope"; available: sentiment/);
});
