// The dashboard's metrics.jsonl follower: complete lines only, and a line longer than one read is
// skipped rather than stopping the follower at its offset forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonlFrom } from '../../src/serve/ui-routes.ts';

test('readJsonlFrom skips a line longer than maxBytes and goes on with the next ones', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'primer-jsonl-')), 'metrics.jsonl');
  const long = JSON.stringify({ step: 2, note: 'x'.repeat(200) });
  writeFileSync(path, `{"step":1}\n${long}\n{"step":3}\n{"step":4}\n`);
  const seen: unknown[] = [];
  let offset = 0;
  for (let poll = 0; poll < 20; poll++) {
    const r = readJsonlFrom(path, offset, 64);
    seen.push(...r.records);
    if (r.offset === offset && r.records.length === 0 && offset > 0) break;
    offset = r.offset;
  }
  assert.deepEqual(seen, [{ step: 1 }, { step: 3 }, { step: 4 }]);
  // A partly written last line waits for its newline.
  writeFileSync(path, '{"step":1}\n{"step":');
  assert.deepEqual(readJsonlFrom(path, 0, 64), { records: [{ step: 1 }], offset: 11, size: 19 });
});
