/** Error assertions shared by the model-directory tests. */
import assert from 'node:assert/strict';
import { ModelLoadError } from '../../src/models/load.ts';

/** assert.throws for a ModelLoadError whose message is exactly `message`. */
export function throwsExactly(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelLoadError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}
