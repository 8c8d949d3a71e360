/** BPE training: the fast trainer against a naive one, special tokens, files, save/load. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BYTE_TO_CHAR, preTokenize } from '../../src/tokenizers/bytelevel.ts';
import { WordCounter, readTextChunks, trainBpe, trainBpeFromFiles } from '../../src/tokenizers/bpe-train.ts';
import type { BpeTokenizer } from '../../src/tokenizers/bpe.ts';
import { loadTokenizer, trainTokenizer } from '../../src/tokenizers/index.ts';
import { TORTURE, gutenbergBooks } from './bpe-fixtures.ts';

/**
 * The definition, spelled out: recount every pair of every word after each merge; pick the highest
 * count, ties to the smaller (left id, right id); merge left to right in every word.
 */
function naiveTrain(texts: string[], vocabSize: number, minFrequency: number, specials: string[]): Array<[string, string]> {
  const freq = new Map<string, number>();
  for (const text of texts) {
    const pieces = specials.length ? text.split(new RegExp(specials.map((s) => s.replace(/[|<>]/g, '\\$&')).join('|'))) : [text];
    for (const piece of pieces) for (const w of preTokenize(piece)) freq.set(w, (freq.get(w) ?? 0) + 1);
  }
  const tokens = [...specials, ...[...BYTE_TO_CHAR].sort()];
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const words = [...freq].map(([w, f]) => ({ syms: [...Buffer.from(w, 'utf8')].map((b) => ids.get(BYTE_TO_CHAR[b])!), f }));
  const merges: Array<[string, string]> = [];
  while (ids.size < vocabSize) {
    const counts = new Map<string, number>();
    for (const { syms, f } of words) for (let i = 0; i + 1 < syms.length; i++) counts.set(`${syms[i]},${syms[i + 1]}`, (counts.get(`${syms[i]},${syms[i + 1]}`) ?? 0) + f);
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [key, c] of counts) {
      const [a, b] = key.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < Math.max(1, minFrequency)) break;
    const merged = tokens[best[0]] + tokens[best[1]];
    if (!ids.has(merged)) {
      ids.set(merged, tokens.length);
      tokens.push(merged);
    }
    merges.push([tokens[best[0]], tokens[best[1]]]);
    const z = ids.get(merged)!;
    for (const word of words) {
      const out: number[] = [];
      for (let i = 0; i < word.syms.length; i++) {
        if (i + 1 < word.syms.length && word.syms[i] === best[0] && word.syms[i + 1] === best[1]) {
          out.push(z);
          i++;
        } else {
          out.push(word.syms[i]);
        }
      }
      word.syms = out;
    }
  }
  return merges;
}

const corpus = [
  gutenbergBooks().find((b) => b.name === 'carroll-alice.txt')!.text.slice(0, 20_000),
  'aaaaaa aaaa abababab bababa', ...TORTURE, 'one<|endoftext|>two <|endoftext|> three',
];

test('the fast trainer makes exactly the merges of the naive definition', () => {
  for (const [vocabSize, minFrequency] of [[700, 2], [900, 1], [400, 5]]) {
    const tok = trainBpe(corpus, { vocabSize, minFrequency, specialTokens: ['<|endoftext|>'] });
    const expected = naiveTrain(corpus, vocabSize, minFrequency, ['<|endoftext|>']);
    assert.deepEqual(tok.model.merges, expected, `vocab ${vocabSize}, min frequency ${minFrequency}`);
    if (minFrequency <= 2) assert.equal(tok.vocabSize, vocabSize);
  }
});

test('trained vocabulary layout: specials first, then the 256 bytes in GPT-2 order, then merges', () => {
  const tok = trainBpe(corpus, { vocabSize: 600, specialTokens: ['<|endoftext|>', '<|pad|>'] });
  assert.equal(tok.idToToken(0), '<|endoftext|>');
  assert.equal(tok.idToToken(1), '<|pad|>');
  assert.equal(tok.idToToken(2), '!');
  assert.equal(tok.idToToken(2 + 255), 'Ń');
  assert.equal(tok.vocabSize, 600);
  assert.deepEqual(tok.specialTokens, { pad: '<|pad|>', bos: '<|endoftext|>', eos: '<|endoftext|>' });
  // Every string round-trips, even characters never seen in training (byte fallback by construction).
  for (const s of [...TORTURE, 'never seen: ☃ 𝄞 ꙮ']) assert.equal(tok.decode(tok.encodeIds(s)), s);
});

test('special tokens are atomic in training and in encoding', () => {
  const texts = Array.from({ length: 200 }, (_, i) => `doc ${i}<|endoftext|>`);
  const tok = trainBpe(texts, { vocabSize: 400, minFrequency: 2, specialTokens: ['<|endoftext|>'] });
  for (const [a, b] of tok.model.merges) assert.ok(!(a + b).includes('|>') && !(a + b).includes('<|'), `merge ${a} ${b} crosses a special token`);
  const ids = Array.from(tok.encodeIds('doc 7<|endoftext|>doc'));
  assert.equal(ids.filter((id) => id === 0).length, 1);
  assert.equal(tok.encode('x<|endoftext|>').tokens.at(-1), '<|endoftext|>');
  assert.throws(() => trainBpe(texts, { vocabSize: 100 }), /vocabSize must be an integer ≥ 256 \+ 1 special tokens/);
});

test('file training streams in chunks and equals training on the text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-train-'));
  try {
    const text = corpus.join('\n');
    const path = join(dir, 'corpus.txt');
    writeFileSync(path, text);
    // Tiny chunks: many cuts, multi-byte characters split across reads.
    const chunks = [...readTextChunks(path, 97)];
    assert.ok(chunks.length > 100);
    assert.equal(chunks.join(''), text);
    const whole = new WordCounter(['<|endoftext|>']);
    whole.add(text);
    const pieces = new WordCounter(['<|endoftext|>']);
    for (const c of chunks) pieces.add(c);
    assert.deepEqual(new Map([...pieces.counts].sort()), new Map([...whole.counts].sort()));

    const fromFile = trainBpeFromFiles([path], { vocabSize: 800 });
    const fromText = trainBpe([text], { vocabSize: 800 });
    assert.deepEqual(fromFile.model.merges, fromText.model.merges);

    const viaIndex = trainTokenizer({ type: 'bpe', vocabSize: 800, files: [path] }) as BpeTokenizer;
    viaIndex.save(join(dir, 'out'));
    const loaded = loadTokenizer(join(dir, 'out')) as BpeTokenizer;
    assert.deepEqual(loaded.encodeIds(text), fromText.encodeIds(text));
    assert.deepEqual(loaded.toJSON(), fromText.toJSON());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('invalid UTF-8 in training files is read as U+FFFD', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-utf8-'));
  try {
    const path = join(dir, 'bad.txt');
    writeFileSync(path, Buffer.concat([Buffer.from('abc '), Buffer.from([0xff, 0xc3]), Buffer.from(' abc abc')]));
    const tok = trainBpeFromFiles([path], { vocabSize: 300, minFrequency: 1 });
    assert.equal([...readTextChunks(path)].join(''), 'abc \ufffd\ufffd abc abc');
    assert.equal(tok.decode(tok.encodeIds('abc \ufffd')), 'abc \ufffd');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
