/**
 * Llama 3 / Qwen2 byte-level BPE (Split regex + ByteLevel(use_regex false), Qwen2's NFC) against
 * @huggingface/tokenizers on tokenizer.json files built per the HF spec (llama-fixtures.ts), on the same
 * texts as the GPT-2 parity test: the Unicode torture set, lone surrogates, the White_Space differences,
 * random strings and Gutenberg text, plus Chinese.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { BpeTokenizer } from '../../src/tokenizers/bpe.ts';
import { tokenizerFromJSON } from '../../src/tokenizers/index.ts';
import { onigurumaToJs, SplitPreTokenizer } from '../../src/tokenizers/split-regex.ts';
import { INVALID, TORTURE, WHITESPACE_DIFFERENCES, gutenbergBooks, randomUnicodeString } from './bpe-fixtures.ts';
import { CHINESE_TEXT, LLAMA3_PATTERN, QWEN2_PATTERN, llama3Json, qwen2Json, reference, trainedChineseVocab } from './llama-fixtures.ts';

const CASES = [
  { name: 'Llama 3 (GPT-2 vocabulary)', json: () => llama3Json() },
  { name: 'Qwen2 (GPT-2 vocabulary)', json: () => qwen2Json() },
  { name: 'Llama 3 (Chinese-trained vocabulary)', json: () => llama3Json(trainedChineseVocab()) },
  { name: 'Qwen2 (Chinese-trained vocabulary)', json: () => qwen2Json(trainedChineseVocab()) },
];

function texts(seed: number, randomCount: number): string[] {
  const rng = new Rng(seed);
  const out = [...TORTURE, ...INVALID, ...WHITESPACE_DIFFERENCES, TORTURE.join(''), TORTURE.join(' \n'), ...CHINESE_TEXT.split('\n'), CHINESE_TEXT];
  out.push("HE'S SHE'LL WE'VE THEY'RE I'M IT'D 'S'T", 'x\r\n\r\ny', '  \r\n  z', '12345678 3.14159 ١٢٣٤', 'café\u0301 e\u0301 Å A\u030a ﬁ'); // NFC-sensitive
  for (let i = 0; i < randomCount; i++) out.push(randomUnicodeString(rng, 30));
  return out;
}

for (const c of CASES) {
  test(`${c.name}: same ids and decode as @huggingface/tokenizers on the torture set, Chinese and 3,000 random strings`, () => {
    const json = c.json();
    const ours = tokenizerFromJSON(json) as BpeTokenizer;
    assert.ok(ours instanceof BpeTokenizer && ours.split !== null);
    const ref = reference(json);
    let tokens = 0;
    for (const s of texts(11, 3000)) {
      const expected = ref.encode(s).ids;
      assert.deepEqual(ours.encode(s).ids, expected, JSON.stringify(s));
      const plain = ref.encode(s, { add_special_tokens: false }).ids;
      assert.deepEqual(Array.from(ours.encodeIds(s)), plain, JSON.stringify(s));
      if (plain.length > 0) {
        const text = ours.decode(plain);
        assert.equal(text, ref.decode(plain), JSON.stringify(s));
        // Byte-level BPE loses nothing but what NFC changes and lone surrogates (U+FFFD).
        const isQwen = json.normalizer !== null;
        assert.equal(text, (isQwen ? s.normalize('NFC') : s).replace(/\p{Cs}/gu, '\ufffd'));
      }
      tokens += plain.length;
    }
    assert.ok(tokens > 20_000, `covered ${tokens} tokens`);
  });
}

test('Llama 3 and Qwen2: same ids as @huggingface/tokenizers on 200 KB of Gutenberg text', () => {
  const books = gutenbergBooks().slice(0, 4).map((b) => b.text.slice(20_000, 70_000));
  assert.equal(books.length, 4);
  for (const json of [llama3Json(), qwen2Json()]) {
    const ours = tokenizerFromJSON(json) as BpeTokenizer;
    const ref = reference(json);
    for (const text of books) {
      const expected = ref.encode(text, { add_special_tokens: false }).ids;
      const ids = Array.from(ours.encodeIds(text));
      const at = ids.findIndex((id, i) => id !== expected[i]);
      assert.equal(at, -1, `first difference at token ${at}`);
      assert.equal(ids.length, expected.length);
      assert.ok(ids.length > 9_000);
      assert.equal(ours.decode(ids), text);
    }
  }
});

test('the two regexes split digits differently: Llama 3 in threes, Qwen2 one by one', () => {
  const llama3 = new SplitPreTokenizer({ Regex: LLAMA3_PATTERN });
  const qwen2 = new SplitPreTokenizer({ Regex: QWEN2_PATTERN });
  const pieces = (sp: SplitPreTokenizer, s: string) => sp.spans(s).map(([a, b]) => s.slice(a, b));
  assert.deepEqual(pieces(llama3, 'abc 1234567'), ['abc', ' ', '123', '456', '7']);
  assert.deepEqual(pieces(qwen2, 'abc 12345'), ['abc', ' ', '1', '2', '3', '4', '5']);
  // (?i:…) contractions, a leading non-letter glued to a word, newlines kept with punctuation.
  assert.deepEqual(pieces(llama3, "I'LL do it's\n\n  ok!\n"), ['I', "'LL", ' do', ' it', "'s", '\n\n', ' ', ' ok', '!\n']);
  assert.deepEqual(pieces(llama3, '$hello (world)'), ['$hello', ' (', 'world', ')']);
  assert.deepEqual(pieces(llama3, '中文分词，测试'), ['中文分词', '，测试']);
});

test('Oniguruma → JavaScript translation of the patterns tokenizer files use', () => {
  assert.equal(onigurumaToJs("(?i:'s|'t)"), "(?:'[sS]|'[tT])");
  assert.equal(onigurumaToJs('\\s+(?!\\S)'), '\\p{White_Space}+(?!\\P{White_Space})');
  assert.equal(onigurumaToJs('[^\\s\\p{L}]'), '[^\\p{White_Space}\\p{L}]');
  assert.equal(onigurumaToJs('(?i:[a-c_])x'), '(?:[a-cA-C_])x');
  assert.equal(onigurumaToJs('a.b\\x{4E00}'), 'a[^\\n]b\\u{4E00}');
  for (const bad of ['(?>a)', 'a++', '\\G', '(?m:a)', '[[:alpha:]]', '(a', 'a)']) {
    assert.throws(() => onigurumaToJs(bad), /is not supported/, bad);
  }
  // White_Space, not JavaScript's \s: U+0085 is space, U+FEFF is not.
  const sp = new SplitPreTokenizer({ Regex: '\\s+' }, 'Removed');
  assert.deepEqual(sp.spans('a\u0085b\ufeffc'), [[0, 1], [2, 5]]);
});

test('Split behaviours follow the Rust crate (Isolated, Removed, MergedWithPrevious/Next, Contiguous, invert)', () => {
  const s = 'a--b-c';
  const run = (behavior: 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous', invert = false) =>
    new SplitPreTokenizer({ String: '-' }, behavior, invert).spans(s).map(([x, y]) => s.slice(x, y));
  assert.deepEqual(run('Isolated'), ['a', '-', '-', 'b', '-', 'c']);
  assert.deepEqual(run('Removed'), ['a', 'b', 'c']);
  assert.deepEqual(run('MergedWithPrevious'), ['a-', '-', 'b-', 'c']);
  assert.deepEqual(run('MergedWithNext'), ['a', '-', '-b', '-c']);
  assert.deepEqual(run('Contiguous'), ['a', '--', 'b', '-', 'c']);
  assert.deepEqual(run('Removed', true), ['-', '-', '-']);
});

test('Qwen2 offsets point into the original text through NFC; added tokens split out first', () => {
  const tok = tokenizerFromJSON(qwen2Json()) as BpeTokenizer;
  const text = 'Cafe\u0301 <|im_start|>user\nhi';
  const enc = tok.encode(text);
  const im = tok.tokenToId('<|im_start|>')!;
  const k = enc.ids.indexOf(im);
  assert.deepEqual(enc.offsets[k], [6, 18]);
  assert.equal(text.slice(...enc.offsets[k + 1]!), 'user');
  // The first pre-token is "Café" (NFC): its tokens cover "Cafe\u0301", 5 code units of the original.
  const first = enc.offsets.slice(0, k).filter(([a]) => a < 5);
  assert.equal(Math.max(...first.map(([, b]) => b)), 5);
  assert.deepEqual(enc.ids, reference(qwen2Json()).encode(text).ids);
});

test('Llama 3 / Qwen2 tokenizer.json round-trips: written, read back, same ids', () => {
  for (const json of [llama3Json(trainedChineseVocab()), qwen2Json(trainedChineseVocab())]) {
    const tok = tokenizerFromJSON(json) as BpeTokenizer;
    const back = tok.toJSON() as Record<string, any>;
    assert.deepEqual(back.pre_tokenizer.pretokenizers[0], json.pre_tokenizer.pretokenizers[0]);
    assert.deepEqual(back.normalizer, json.normalizer);
    const again = tokenizerFromJSON(JSON.parse(JSON.stringify(back))) as BpeTokenizer;
    for (const s of [CHINESE_TEXT, ...TORTURE]) assert.deepEqual(again.encode(s).ids, tok.encode(s).ids);
    assert.deepEqual(reference(back).encode(CHINESE_TEXT).ids, tok.encode(CHINESE_TEXT).ids);
  }
});
