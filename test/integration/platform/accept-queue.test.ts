import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { boardOf, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

describe('connections wait for an idle worker, bounded in count and time', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ workers: 1, mpmExtra: '"accept_queue_count" : 1 , "accept_queue_timeout" : 0.6' });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('a new connection waits while the only worker is busy, and is served when it becomes idle', async () => {
    const slow = env.call('ibp_t_slow', '300');
    await waitFor(() => boardOf(c).slots.some((s) => s.state === 'busy'), 'the worker to be busy');
    const t0 = Date.now();
    const echo = await env.call('ibp_test_echo', 'waited');
    assert.equal(echo.text(), 'waited');
    assert.equal((await slow).text(), 'done 300');
    assert.ok(Date.now() - t0 >= 150, 'the echo was answered only after the slow call freed the worker');
  });

  test('past accept_queue_timeout or accept_queue_count the connection is closed and the call is NOT in doubt', async () => {
    const slow = env.call('ibp_t_slow', '1500');
    await waitFor(() => boardOf(c).slots.some((s) => s.state === 'busy'), 'the worker to be busy');
    // The client makes a call whose connection closed before the pre-response again (nothing ran), within its
    // deadline: a deadline shorter than the slow call keeps this one from being served by a later attempt.
    const waiting = env.call('ibp_test_echo', 'a', { timeoutSec: 1 }).catch((e: unknown) => e);
    await waitFor(() => boardOf(c).waiting, 'a connection to wait in the master');
    const overflow = await env.call('ibp_test_echo', 'b').catch((e: unknown) => e);
    assert.ok(overflow instanceof IbpError, 'the second waiting connection is over accept_queue_count');
    assert.equal(overflow.commStatus, 'NOT_SENT', `${overflow.code}: ${overflow.message}`);
    const timedOut = await waiting;
    assert.ok(timedOut instanceof IbpError, 'the waiting connection is closed after accept_queue_timeout');
    assert.equal(timedOut.commStatus, 'NOT_SENT', `${timedOut.code}: ${timedOut.message}`);
    assert.equal((await slow).text(), 'done 1500');
    assert.equal((await env.call('ibp_test_echo', 'again')).text(), 'again');
  });
});
