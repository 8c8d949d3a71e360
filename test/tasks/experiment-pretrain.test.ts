/** The time-budget recipe: the largest shape whose token budget reaches 20 tokens per non-embedding parameter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseBudgetRecipe, nonEmbeddingParameters } from '../../src/tasks/experiment-pretrain.ts';

test('the budget recipe picks the largest compute-optimal shape and fills the minutes with steps', () => {
  // Non-embedding parameters: 4·12·128² (tiny), 4·12·256² (mini), 6·12·512² (small).
  assert.deepEqual(['tiny', 'mini', 'small'].map((p) => nonEmbeddingParameters(p as 'tiny', 8192)), [786432, 3145728, 18874368]);
  const speeds: Record<string, number> = { tiny: 40000, mini: 12000, small: 2000 };
  const measured: string[] = [];
  const measure = (preset: string) => (measured.push(preset), speeds[preset]!);
  // 30 min: tiny 61.2M tokens ≥ 15.7M, mini 18.4M < 62.9M → tiny; small is never timed.
  const r = chooseBudgetRecipe(30, { measure });
  assert.equal(r.preset, 'tiny');
  assert.deepEqual(measured, ['tiny', 'mini']);
  assert.equal(r.steps, Math.floor((40000 * 60 * 30 * 0.85) / (32 * 128)));
  assert.equal(r.considered.length, 2);
  assert.deepEqual(r.considered.map((c) => c.computeOptimal), [true, false]);
  // A faster machine for 200 min: mini reaches 122M ≥ 62.9M tokens, small 20.4M < 377M.
  assert.equal(chooseBudgetRecipe(200, { measure }).preset, 'mini');
  // Too slow for even the smallest: still the smallest.
  assert.equal(chooseBudgetRecipe(1, { measure: () => 100 }).preset, 'tiny');
  assert.throws(() => chooseBudgetRecipe(0, { measure }), /must be positive/);
});
