/**
 * Parallel calls (callMany, the original's IBACMulti*) against two real platforms serving two nodes, ECIF
 * behind a fault proxy and CARD direct: one result and one comm status per call, in the order given.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbacEnv, IbpError, callMany, multiCommStatus, type MultiCall } from '../../../src/client/index.js';
import { FIXTURE_APPS, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';
import { RECORD_APP, recordedCalls, writeClientView } from '../../helpers/client-view.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';

describe('parallel calls - callMany over two platforms', () => {
  let ecif: TestCluster;
  let card: TestCluster;
  let proxy: FaultProxy;
  let env: IbacEnv;
  let seq = 0;
  const jnl = (): string => `MUL${process.pid}-${++seq}`;
  const apps = [...FIXTURE_APPS, RECORD_APP];

  before(async () => {
    [ecif, card] = await Promise.all([
      startTestCluster({ workers: 1, apps, serverNode: 'ECIF' }),
      startTestCluster({ workers: 2, apps, serverNode: 'CARD' }),
    ]);
    proxy = await FaultProxy.start({ port: ecif.ports[0]! });
    writeClientView(ecif.clientHome, {
      clientNode: ecif.clientNode,
      nodes: [{ node: 'ECIF', ports: [proxy.port] }, { node: 'CARD', ports: [card.ports[0]!] }],
      apps,
    });
    env = await IbacEnv.create({ home: ecif.clientHome });
  });
  after(async () => {
    await env?.close();
    await proxy?.close();
    await Promise.all([ecif?.close(), card?.close()]);
  });

  it('every call answered: results in the order given, each from its own node, env.commStatus OK', async () => {
    const calls: MultiCall[] = [
      { node: 'CARD', app: 'ibp_t_record', message: {}, jnlsno: jnl() },
      { node: 'ECIF', app: 'ibp_t_record', message: {}, jnlsno: jnl() },
      { node: 'CARD', app: 'ibp_test_echo', message: 'hello card' },
    ];
    const results = await callMany(env, calls);
    assert.equal(results.length, 3);
    assert.deepEqual(results.map((r) => r.commStatus), ['OK', 'OK', 'OK']);
    assert.equal(results[0]!.response!.json<{ node: string }>().node, 'CARD');
    assert.equal(results[1]!.response!.json<{ node: string }>().node, 'ECIF');
    assert.equal(results[2]!.response!.text(), 'hello card');
    assert.equal(results[2]!.response!.host.port, card.ports[0]);
    assert.equal(env.commStatus, 'OK');
    assert.equal(multiCommStatus(results), 'OK');
  });

  it('one call in doubt through the proxy, one refused locally, the others succeed: a status per call', async () => {
    const inDoubt = jnl();
    const okCard = jnl();
    proxy.setRule({ dir: 's2c', frame: 'RESPONSE', afterBytes: 0, action: 'reset' });
    let results;
    try {
      results = await callMany(env, [
        { node: 'ECIF', app: 'ibp_t_record', message: {}, jnlsno: inDoubt },
        { node: 'CARD', app: 'ibp_t_record', message: {}, jnlsno: okCard },
        { node: 'CARD', app: 'no_such_app', message: {} },
        { node: 'CARD', app: 'ibp_test_echo', message: { x: 1 } },
        { node: 'CARD', app: 'ibp_test_echo', message: undefined as unknown as string },
      ]);
    } finally {
      proxy.setRule(undefined);
    }
    assert.deepEqual(results.map((r) => [r.ok, r.commStatus, r.error?.code]), [
      [false, 'ON_SENDING', 'IBP_ERR_CLIENT_CONNECTION_LOST'],
      [true, 'OK', undefined],
      [false, 'NOT_SENT', 'IBP_ERR_REPLICA_UNKNOWN_APP'],
      [true, 'OK', undefined],
      [false, 'NOT_SENT', 'IBP_ERR_CLIENT_BAD_ARGUMENT'],
    ]);
    assert.ok(results[0]!.error instanceof IbpError && results[0]!.error.inDoubt);
    assert.deepEqual(results[3]!.response!.json(), { x: 1 });
    assert.equal(env.commStatus, 'ON_SENDING', 'one call in doubt makes the exchange in doubt (IBACMultiGetCommStatus)');
    assert.ok(recordedCalls(ecif.serverHomes[0]!).includes(inDoubt), 'the in-doubt call did run on ECIF');
    assert.ok(recordedCalls(card.serverHomes[0]!).includes(okCard));
  });

  it('calls go out at once: CARD answers while the ECIF response is stalled, and the result waits for all', async () => {
    const stalled = jnl();
    const fast = [jnl(), jnl()];
    proxy.setRule({ dir: 's2c', frame: 'RESPONSE', afterBytes: 0, action: 'stall' });
    let settled = false;
    const p = callMany(env, [
      { node: 'ECIF', app: 'ibp_t_record', message: {}, jnlsno: stalled, timeoutSec: 3 },
      ...fast.map((j) => ({ node: 'CARD', app: 'ibp_t_record', message: {}, jnlsno: j })),
    ]).finally(() => { settled = true; });
    try {
      await waitFor(() => fast.every((j) => recordedCalls(card.serverHomes[0]!).includes(j)), 'the CARD calls to run', 10_000);
      await proxy.waitFault(10_000);
      assert.equal(settled, false, 'callMany still waits for the stalled call');
      const results = await p;
      assert.deepEqual(results.map((r) => r.commStatus), ['ON_SENDING', 'OK', 'OK']);
      assert.equal(results[0]!.error!.code, 'IBP_ERR_CLIENT_TIMEOUT');
    } finally {
      proxy.setRule(undefined);
      proxy.destroyAll();
    }
  });

  it('concurrency bounds the calls in flight, and bad arguments are refused up front', async () => {
    const calls = Array.from({ length: 6 }, (_, i) => ({ node: i % 2 ? 'CARD' : 'ECIF', app: 'ibp_test_echo', message: `m${i}` }));
    let inFlight = 0;
    let most = 0;
    const counting = {
      async call(...args: Parameters<IbacEnv['call']>) {
        most = Math.max(most, ++inFlight);
        try {
          return await env.call(...args);
        } finally {
          inFlight--;
        }
      },
      setCommStatus: (s: Parameters<IbacEnv['setCommStatus']>[0]) => env.setCommStatus(s),
    } as unknown as IbacEnv;
    const results = await callMany(counting, calls, { concurrency: 2 });
    assert.deepEqual(results.map((r) => r.response?.text()), calls.map((c) => c.message));
    assert.equal(most, 2, 'two calls in flight at most, and two at once');
    most = 0;
    await callMany(counting, calls);
    assert.equal(most, 6, 'by default every call goes out at once');
    await assert.rejects(callMany(env, calls, { concurrency: 0 }), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CLIENT_BAD_ARGUMENT');
    await assert.rejects(callMany(env, 'x' as unknown as MultiCall[]), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CLIENT_BAD_ARGUMENT');
    assert.deepEqual(await callMany(env, []), []);
  });
});
