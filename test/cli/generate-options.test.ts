// `primer generate`'s sampling flags: --top-p must keep some mass, --stop ends the text before a stop
// string (the same tokens as without it, cut), --repetition-penalty changes what greedy decoding picks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'primer.js');

function primer(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('generate: --top-p 0 is refused, --stop cuts the greedy text, --repetition-penalty changes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-generate-flags-'));
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'to', 'his', 'home'];
  writeFileSync(join(dir, 'corpus.txt'), Array.from({ length: 3000 }, (_, i) => words[(i * 5 + 3) % words.length]).join(' ') + '.\n');
  const out = join(dir, 'run');
  const trained = primer(['pretrain', '--corpus', join(dir, 'corpus.txt'), '--preset', 'tiny', '--layers', '1', '--dims', '32', '--heads', '2',
    '--block-size', '16', '--batch-size', '4', '--vocab-size', '300', '--steps', '30', '--lr', '0.01', '--no-samples', '--out', out]);
  assert.equal(trained.code, 0, trained.stderr);

  const zero = primer(['generate', '--model', out, '--prompt', 'the cat', '--top-p', '0']);
  assert.notEqual(zero.code, 0);
  assert.match(zero.stderr, /--top-p.*expected a number > 0 and ≤ 1, got "0"/);

  const greedy = ['generate', '--model', out, '--prompt', 'the cat', '--max-tokens', '12', '--temperature', '0'];
  const plain = primer(greedy);
  assert.equal(plain.code, 0, plain.stderr);
  const continuation = plain.stdout.trimEnd().slice('the cat'.length);
  assert.ok(continuation.length > 6, continuation);
  const stop = continuation.slice(3, 6);
  const stopped = primer([...greedy, '--stop', stop, 'never-there']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(stopped.stdout.trimEnd(), 'the cat' + continuation.slice(0, continuation.indexOf(stop)));

  // A barely trained model's greedy text repeats its few likeliest tokens, which a strong penalty
  // (positive logits divided by 3, negative ones multiplied) pushes down. (The model above is too
  // sure of its cycle for any penalty to change its argmax.)
  const early = join(dir, 'early');
  const barely = primer(['pretrain', '--corpus', join(dir, 'corpus.txt'), '--preset', 'tiny', '--layers', '1', '--dims', '32', '--heads', '2',
    '--block-size', '16', '--batch-size', '4', '--vocab-size', '300', '--steps', '2', '--no-samples', '--out', early]);
  assert.equal(barely.code, 0, barely.stderr);
  const long = ['generate', '--model', early, '--prompt', 'the cat', '--max-tokens', '24', '--temperature', '0'];
  const repeated = primer(long), penalised = primer([...long, '--repetition-penalty', '3']);
  assert.equal(penalised.code, 0, penalised.stderr);
  assert.ok(penalised.stdout.startsWith('the cat'));
  assert.notEqual(penalised.stdout, repeated.stdout, 'a strong penalty changes the greedy continuation');
});

test('output piped into a reader that stops early (| head -1) ends quietly with exit 0, not an EPIPE stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-epipe-'));
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, Array.from({ length: 4000 }, (_, i) => `line ${i} the cat sat on the mat`).join('\n') + '\n');
  const tok = primer(['tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--input', corpus, '--out', join(dir, 'tok')]);
  assert.equal(tok.code, 0, tok.stderr);
  // ~160 kB of ids (more than a pipe holds) into a reader that leaves after the first line.
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `${q(process.execPath)} ${q(bin)} tokenizer encode --tokenizer ${q(join(dir, 'tok'))} --lines < ${q(corpus)} 2> ${q(join(dir, 'err.txt'))} | head -1 > /dev/null; echo "exit=\${PIPESTATUS[0]}"`;
  const r = spawnSync('bash', ['-c', script], { cwd: root, encoding: 'utf8' });
  const stderr = readFileSync(join(dir, 'err.txt'), 'utf8');
  assert.equal(r.stdout.trim(), 'exit=0', stderr);
  assert.doesNotMatch(stderr, /EPIPE|Error/);
});
