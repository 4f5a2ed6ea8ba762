/**
 * A connection that breaks before the request left the client (a worker killed between the connection's hand-over
 * and its pre-response, say) ran nothing, so the client library makes the call again on a new connection: the
 * caller sees a success, and the transaction ran exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { FIXTURE_APPS, startTestCluster, type TestCluster } from '../../helpers/cluster.js';
import { RECORD_APP, recordedCalls, writeClientView } from '../../helpers/client-view.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';

describe('a call whose connection broke before the request left is made again', () => {
  let c: TestCluster;
  let proxy: FaultProxy;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ workers: 2, apps: [...FIXTURE_APPS, RECORD_APP] });
    proxy = await FaultProxy.start({ port: c.ports[0]! });
    writeClientView(c.clientHome, { clientNode: c.clientNode, nodes: [{ node: c.serverNode, ports: [proxy.port] }], apps: [...FIXTURE_APPS, RECORD_APP] });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await proxy?.close();
    await c?.close();
  });

  it('short call: the first connection reset before the PRE_RESPONSE, the second one serves it, once', async () => {
    const since = proxy.connections.length;
    proxy.setRule({ dir: 's2c', frame: 'PRE_RESPONSE', afterBytes: 0, action: 'reset', connection: since });
    try {
      const r = await env.call('ibp_t_record', {}, { jnlsno: `LBS${process.pid}-1` });
      assert.ok(r.body.length >= 0);
    } finally {
      proxy.setRule(undefined);
    }
    assert.equal(env.commStatus, 'OK');
    assert.equal(proxy.connections.length - since, 2, 'made again on a second connection');
    assert.deepEqual(recordedCalls(c.serverHomes[0]!).filter((j) => j === `LBS${process.pid}-1`), [`LBS${process.pid}-1`], 'ran once');
  });

  it('long connection: its first call is made again the same way', async () => {
    const conn = await env.connect(c.serverNode);
    const since = proxy.connections.length;
    proxy.setRule({ dir: 's2c', frame: 'PRE_RESPONSE', afterBytes: 0, action: 'reset', connection: since });
    try {
      await conn.call('ibp_t_record', {}, { jnlsno: `LBS${process.pid}-2` });
      await conn.call('ibp_t_record', {}, { jnlsno: `LBS${process.pid}-3` });
    } finally {
      proxy.setRule(undefined);
      await conn.close();
    }
    assert.equal(proxy.connections.length - since, 2);
    const ran = recordedCalls(c.serverHomes[0]!);
    assert.equal(ran.filter((j) => j === `LBS${process.pid}-2`).length, 1);
    assert.equal(ran.filter((j) => j === `LBS${process.pid}-3`).length, 1);
  });

  it('a connection that keeps breaking fails NOT_SENT after a bounded number of attempts', async () => {
    const since = proxy.connections.length;
    proxy.setRule({ dir: 's2c', frame: 'PRE_RESPONSE', afterBytes: 0, action: 'reset' });
    let err: unknown;
    try {
      await env.call('ibp_t_record', {}, { jnlsno: `LBS${process.pid}-4` });
    } catch (e) {
      err = e;
    } finally {
      proxy.setRule(undefined);
    }
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(proxy.connections.length - since, 5, 'one call and four more attempts');
    assert.ok(!recordedCalls(c.serverHomes[0]!).includes(`LBS${process.pid}-4`));
  });
});
