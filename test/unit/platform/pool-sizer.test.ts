import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialDynamicCount, planAdjustment } from '../../../src/platform/pool-sizer.js';
import type { DynamicPoolSettings } from '../../../src/platform/settings.js';

const dyn: DynamicPoolSettings = { minIdleCount: 2, maxIdleCount: 4, createInterval: 3, destroyInterval: 2, adjustIntervalMs: 1000 };

test('pool sizer - grows by at most create_interval when connections wait', () => {
  assert.deepEqual(planAdjustment({ idle: 0, busy: 2, starting: 0, waiting: 10 }, dyn, 20), { create: 3, destroy: 0 });
});

test('pool sizer - grows only to the spare workers needed (min idle + waiting), counting starting ones', () => {
  assert.deepEqual(planAdjustment({ idle: 0, busy: 5, starting: 0, waiting: 1 }, dyn, 20), { create: 3, destroy: 0 });
  assert.deepEqual(planAdjustment({ idle: 1, busy: 5, starting: 0, waiting: 0 }, dyn, 20), { create: 1, destroy: 0 });
  assert.deepEqual(planAdjustment({ idle: 1, busy: 5, starting: 1, waiting: 0 }, dyn, 20), { create: 0, destroy: 0 });
});

test('pool sizer - never past max_count', () => {
  assert.deepEqual(planAdjustment({ idle: 0, busy: 9, starting: 0, waiting: 50 }, dyn, 10), { create: 1, destroy: 0 });
  assert.deepEqual(planAdjustment({ idle: 0, busy: 10, starting: 0, waiting: 50 }, dyn, 10), { create: 0, destroy: 0 });
});

test('pool sizer - shrinks by at most destroy_interval down to max_idle_count, only when nothing waits or starts', () => {
  assert.deepEqual(planAdjustment({ idle: 9, busy: 0, starting: 0, waiting: 0 }, dyn, 10), { create: 0, destroy: 2 });
  assert.deepEqual(planAdjustment({ idle: 5, busy: 3, starting: 0, waiting: 0 }, dyn, 10), { create: 0, destroy: 1 });
  assert.deepEqual(planAdjustment({ idle: 4, busy: 0, starting: 0, waiting: 0 }, dyn, 10), { create: 0, destroy: 0 });
  assert.deepEqual(planAdjustment({ idle: 9, busy: 0, starting: 1, waiting: 0 }, dyn, 10), { create: 0, destroy: 0 });
});

test('pool sizer - a pool starts with min_idle_count workers, at least one, at most max_count', () => {
  assert.equal(initialDynamicCount(dyn, 10), 2);
  assert.equal(initialDynamicCount({ ...dyn, minIdleCount: 0 }, 10), 1);
  assert.equal(initialDynamicCount({ ...dyn, minIdleCount: 8 }, 5), 5);
});
