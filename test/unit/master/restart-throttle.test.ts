import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartThrottle } from '../../../src/master/index.js';

const crashAt = (t: number, ranMs = 10) => ({ startedAt: t, endedAt: t + ranMs, code: 1, signal: null });

test('restart throttle - quick crashes in a row double the delay up to the cap', () => {
  const th = new RestartThrottle({ minMs: 100, maxMs: 1000 });
  const delays: number[] = [];
  let t = 0;
  for (let i = 0; i < 7; i++) {
    const d = th.delayAfter(crashAt(t));
    delays.push(d);
    t += 10 + d;
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(th.quickCrashes, 7);
});

test('restart throttle - a crash after the quick window restarts at once and resets the count', () => {
  const th = new RestartThrottle({ minMs: 100, maxMs: 1000, quickMs: 2000 });
  th.delayAfter(crashAt(0));
  th.delayAfter(crashAt(200));
  assert.equal(th.delayAfter(crashAt(1000, 5000)), 0);
  assert.equal(th.quickCrashes, 0);
  assert.equal(th.delayAfter(crashAt(7000)), 100, 'the next quick crash starts from the minimum again');
});

test('restart throttle - a normal exit or a planned stop is never throttled; a signal is a crash', () => {
  const th = new RestartThrottle({ minMs: 100, maxMs: 1000 });
  assert.equal(th.delayAfter({ startedAt: 0, endedAt: 5, code: 0, signal: null }), 0);
  assert.equal(th.delayAfter({ startedAt: 0, endedAt: 5, code: null, signal: 'SIGTERM', planned: true }), 0);
  assert.equal(th.delayAfter({ startedAt: 0, endedAt: 5, code: null, signal: 'SIGSEGV' }), 100);
});

test('restart throttle - notBefore holds the next start until the delay has passed', () => {
  const th = new RestartThrottle({ minMs: 100, maxMs: 1000 });
  th.delayAfter(crashAt(1000));
  assert.equal(th.notBefore, 1110);
  assert.equal(th.throttled(1109), true);
  assert.equal(th.throttled(1110), false);
  th.reset();
  assert.equal(th.throttled(1000), false);
  assert.throws(() => new RestartThrottle({ minMs: 0, maxMs: 1 }), RangeError);
});
