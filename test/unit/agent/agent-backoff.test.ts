import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_RETRY_FIRST_MS, AGENT_RETRY_MAX_MS, RetryBackoff } from '../../../src/agent/index.js';

describe('agent retry backoff', () => {
  it('agent backoff - starts at 100 ms, doubles, and never waits more than 2 s', () => {
    const b = new RetryBackoff();
    const got = Array.from({ length: 9 }, () => b.next());
    assert.deepEqual(got, [100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
    assert.equal(AGENT_RETRY_FIRST_MS, 100);
    assert.equal(AGENT_RETRY_MAX_MS, 2000);
  });

  it('agent backoff - a success starts the schedule over', () => {
    const b = new RetryBackoff();
    b.next();
    b.next();
    b.next();
    b.reset();
    assert.deepEqual([b.next(), b.next()], [100, 200]);
  });

  it('agent backoff - other bounds are honoured and nonsense is refused', () => {
    const b = new RetryBackoff(10, 25);
    assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [10, 20, 25, 25]);
    assert.throws(() => new RetryBackoff(0, 10), RangeError);
    assert.throws(() => new RetryBackoff(100, 50), RangeError);
  });
});
