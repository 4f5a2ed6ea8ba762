/**
 * In-doubt precision: a real IbacEnv client and a real platform with a fault proxy between them that breaks
 * the connection at one exact byte of the IB2 exchange. Each test is one row of the table in docs/client.md:
 * the comm status the client reports, and whether the platform really ran the transaction (the
 * ibp_t_record fixture writes each jnlsno it runs to file/calls.log before answering).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, IbpError, type CallOptions } from '../../../src/client/index.js';
import { freePort } from '../../../src/cli/scratch-cluster.js';
import { createTempFileName } from '../../../src/protocol/index.js';
import { FIXTURE_APPS, startTestCluster, type TestCluster } from '../../helpers/cluster.js';
import { RECORD_APP, recordedCalls, writeClientView } from '../../helpers/client-view.js';
import { FaultProxy, type FaultRule, type ProxiedConnection } from '../../helpers/fault-proxy.js';

/** An app the client's replica has and the server's has not: the platform refuses it at the pre-request. */
const NOWHERE_APP = { ...RECORD_APP, app: 'ibp_t_nowhere' };

describe('in-doubt precision - a fault at every point of a call', () => {
  let c: TestCluster;
  let proxy: FaultProxy;
  let env: IbacEnv;
  let seq = 0;
  const jnl = (): string => `IND${process.pid}-${++seq}`;
  const clientFiles = (): string[] => readdirSync(join(c.clientHome, 'file'));

  before(async () => {
    c = await startTestCluster({ workers: 2, apps: [...FIXTURE_APPS, RECORD_APP] });
    proxy = await FaultProxy.start({ port: c.ports[0]! });
    writeClientView(c.clientHome, {
      clientNode: c.clientNode,
      nodes: [{ node: c.serverNode, ports: [proxy.port] }, { node: 'DEAD', ports: [await freePort()] }],
      apps: [...FIXTURE_APPS, RECORD_APP, NOWHERE_APP],
    });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await proxy?.close();
    await c?.close();
  });

  interface Outcome {
    err: IbpError | undefined;
    conn: ProxiedConnection | undefined;
    jnlsno: string;
    /** env.commStatus right after the call. */
    envStatus: string;
    ran: boolean;
  }

  /**
   * One call of ibp_t_record through the proxy with `rule`; then a clean marker call, after which the
   * platform's record says whether the faulted call ran (a call that did not get a whole REQUEST can never
   * run later).
   */
  async function callWith(rule: FaultRule | undefined, body: object = {}, options: CallOptions = {}): Promise<Outcome> {
    const since = proxy.connections.length;
    const jnlsno = jnl();
    proxy.setRule(rule);
    let err: IbpError | undefined;
    try {
      await env.call('ibp_t_record', body, { ...options, jnlsno });
    } catch (e) {
      assert.ok(e instanceof IbpError, `expected an IbpError, got ${String(e)}`);
      err = e;
    } finally {
      proxy.setRule(undefined);
    }
    const envStatus = env.commStatus;
    const conn = proxy.connections[since];
    conn?.destroy();
    await conn?.closed;
    const marker = jnl();
    await env.call('ibp_t_record', {}, { jnlsno: marker });
    const calls = recordedCalls(c.serverHomes[0]!);
    assert.ok(calls.includes(marker), 'the marker call ran');
    return { err, conn, jnlsno, envStatus, ran: calls.includes(jnlsno) };
  }

  function expectFailure(o: Outcome, code: string, status: 'NOT_SENT' | 'ON_SENDING' | 'COMPLETED', ran: boolean): void {
    assert.ok(o.err, 'the call failed');
    assert.equal(o.err.code, code, `${o.err.code}: ${o.err.message}`);
    assert.equal(o.err.commStatus, status, `${o.err.code}: ${o.err.message}`);
    assert.equal(o.envStatus, status, 'env.commStatus (IBACGetCommStatus) agrees');
    assert.equal(o.err.inDoubt, status === 'ON_SENDING');
    assert.equal(o.err.retryable, status === 'NOT_SENT', 'only NOT_SENT is safe to retry');
    assert.equal(o.ran, ran, ran ? 'the platform ran the transaction' : 'the platform did not run the transaction');
  }

  function bigFile(bytes: number): string {
    const p = createTempFileName(join(c.clientHome, 'file'), 'req');
    writeFileSync(p, Buffer.alloc(bytes, 0x5a));
    return p;
  }

  it('through the proxy untouched: OK, and the proxy sees the four packets in order', async () => {
    const f = bigFile(300_000);
    const o = await callWith(undefined, { files: 1, fileBytes: 10 }, { files: [f] });
    assert.equal(o.err, undefined);
    assert.equal(o.envStatus, 'OK');
    assert.equal(o.ran, true);
    assert.deepEqual(o.conn!.frames.c2s, ['PRE_REQUEST', 'FILE_BEGIN', 'FILE_DATA', 'FILE_DATA', 'REQUEST']);
    assert.deepEqual(o.conn!.frames.s2c, ['PRE_RESPONSE', 'RESPONSE', 'FILE_BEGIN', 'FILE_DATA']);
  });

  it('resolve/lookup: an app or node not in the replica, or no usable host, is NOT_SENT and opens no connection', async () => {
    const since = proxy.connections.length;
    for (const [app, node, code] of [
      ['no_such_app', undefined, 'IBP_ERR_REPLICA_UNKNOWN_APP'],
      ['ibp_t_record', 'NO_SUCH_NODE', 'IBP_ERR_REPLICA_UNKNOWN_NODE'],
    ] as const) {
      const err = await env.call(app, {}, node ? { node } : {}).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof IbpError);
      assert.equal(err.code, code);
      assert.equal(err.commStatus, 'NOT_SENT');
      assert.equal(env.commStatus, 'NOT_SENT');
    }
    assert.equal(proxy.connections.length, since, 'nothing reached the network');
  });

  it('connect: a refused connect is NOT_SENT, and the host is then skipped (no host: NOT_SENT)', async () => {
    const jnlsno = jnl();
    const err = await env.call('ibp_t_record', {}, { node: 'DEAD', jnlsno }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECT_FAILED');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(err.retryable, true);
    const again = await env.call('ibp_t_record', {}, { node: 'DEAD' }).then(() => undefined, (e: unknown) => e);
    assert.ok(again instanceof IbpError);
    assert.equal(again.code, 'IBP_ERR_CLIENT_NO_HOST', 'the host is suspended for retry_connect_timeval');
    assert.equal(again.commStatus, 'NOT_SENT');
  });

  for (const afterBytes of [0, 5, 12]) {
    it(`handshake: connection reset after ${afterBytes} bytes of PRE_REQUEST is NOT_SENT and nothing ran`, async () => {
      const o = await callWith({ dir: 'c2s', frame: 'PRE_REQUEST', afterBytes, action: 'reset' });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'NOT_SENT', false);
      assert.equal(o.conn!.bytes.c2s, afterBytes, 'exactly that many bytes reached the server');
    });
  }

  it('handshake: the server refusing at PRE_RESPONSE is NOT_SENT (CLIENT_REFUSED with the server code)', async () => {
    const err = await env.call('ibp_t_nowhere', {}).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_CLIENT_REFUSED');
    assert.equal(err.details?.serverCode, 'IBP_ERR_SERVER_APP_NOT_FOUND');
    assert.equal(err.commStatus, 'NOT_SENT');
  });

  for (const [afterBytes, action] of [[0, 'reset'], [4, 'reset'], [0, 'end']] as const) {
    it(`handshake: PRE_RESPONSE cut (${action}) after ${afterBytes} bytes is NOT_SENT and nothing ran`, async () => {
      const o = await callWith({ dir: 's2c', frame: 'PRE_RESPONSE', afterBytes, action });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'NOT_SENT', false);
      assert.deepEqual(o.conn!.frames.c2s, ['PRE_REQUEST'], 'only the pre-request left the client');
    });
  }

  it('handshake: PRE_RESPONSE stalled until the call times out is NOT_SENT and nothing ran', async () => {
    const o = await callWith({ dir: 's2c', frame: 'PRE_RESPONSE', afterBytes: 0, action: 'stall' }, {}, { timeoutSec: 1 });
    expectFailure(o, 'IBP_ERR_CLIENT_TIMEOUT', 'NOT_SENT', false);
  });

  for (const [frame, afterBytes] of [['FILE_BEGIN', 3], ['FILE_DATA', 1000]] as const) {
    it(`pushing files: reset after ${afterBytes} bytes of the first ${frame} is NOT_SENT and nothing ran`, async () => {
      const o = await callWith({ dir: 'c2s', frame, afterBytes, action: 'reset' }, {}, { files: [bigFile(8 << 20)] });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'NOT_SENT', false);
      assert.ok(!o.conn!.frames.c2s.includes('REQUEST'));
    });
  }

  for (const bytes of [100_000, 10]) {
    it(`pushing files: reset inside the last FILE_DATA (a ${bytes}-byte file) never ran; NOT_SENT unless the REQUEST was already written`, async () => {
      // A race the client cannot see: the reset may reach it before it writes the REQUEST (then NOT_SENT: that
      // write fails or is not made) or just after (then ON_SENDING: the REQUEST did leave). Never COMPLETED.
      // The deterministic checks of both sides of the line are in request-write.test.ts.
      const o = await callWith({ dir: 'c2s', frame: 'FILE_DATA', afterBytes: 9, action: 'reset' }, {}, { files: [bigFile(bytes)] });
      assert.ok(o.err);
      assert.equal(o.err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST');
      assert.ok(o.err.commStatus === 'NOT_SENT' || o.err.commStatus === 'ON_SENDING', String(o.err.commStatus));
      assert.equal(o.envStatus, o.err.commStatus);
      assert.equal(o.ran, false);
    });
  }

  it('pushing files: stalled (the client blocks on a full socket) until the timeout is NOT_SENT and nothing ran', async () => {
    const o = await callWith({ dir: 'c2s', frame: 'FILE_DATA', afterBytes: 1000, action: 'stall' }, {}, { files: [bigFile(64 << 20)], timeoutSec: 1 });
    expectFailure(o, 'IBP_ERR_CLIENT_TIMEOUT', 'NOT_SENT', false);
  });

  for (const afterBytes of [0, 3, 8, 30]) {
    it(`request partly written: reset after ${afterBytes} bytes of REQUEST is ON_SENDING (in doubt), though nothing ran`, async () => {
      const o = await callWith({ dir: 'c2s', frame: 'REQUEST', afterBytes, action: 'reset' }, { pad: 'x'.repeat(100) });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'ON_SENDING', false);
    });
  }

  it('request written, awaiting the response: reset before the first RESPONSE byte is ON_SENDING, and it ran', async () => {
    const o = await callWith({ dir: 's2c', frame: 'RESPONSE', afterBytes: 0, action: 'reset' });
    expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'ON_SENDING', true);
  });

  it('request written, awaiting the response: the response stalled until the timeout is ON_SENDING, and it ran', async () => {
    const o = await callWith({ dir: 's2c', frame: 'RESPONSE', afterBytes: 0, action: 'stall' }, {}, { timeoutSec: 1 });
    expectFailure(o, 'IBP_ERR_CLIENT_TIMEOUT', 'ON_SENDING', true);
  });

  for (const [afterBytes, action] of [[8, 'reset'], [20, 'reset'], [20, 'end']] as const) {
    it(`response partly read: ${action} after ${afterBytes} bytes of RESPONSE is ON_SENDING, and it ran`, async () => {
      const o = await callWith({ dir: 's2c', frame: 'RESPONSE', afterBytes, action }, { body: 5000 });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'ON_SENDING', true);
    });
  }

  for (const [frame, nth, afterBytes, action] of [['FILE_BEGIN', 0, 0, 'reset'], ['FILE_DATA', 1, 100, 'reset'], ['FILE_DATA', 0, 50, 'end']] as const) {
    it(`pulling files: ${action} after ${afterBytes} bytes of ${frame} #${nth} is COMPLETED, it ran, and no partial file is left`, async () => {
      const before = new Set(clientFiles());
      const o = await callWith({ dir: 's2c', frame, nth, afterBytes, action }, { files: 2, fileBytes: 1000 });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'COMPLETED', true);
      assert.deepEqual(clientFiles().filter((n) => !before.has(n)), [], 'the files of the failed pull are removed');
    });
  }

  describe('on a long connection (the second call is pipelined: PRE_REQUEST and REQUEST in one write)', () => {
    async function secondCall(rule: FaultRule): Promise<Outcome> {
      const since = proxy.connections.length;
      proxy.setRule({ ...rule, connection: since });
      const conn = await env.connect(c.serverNode);
      const jnlsno = jnl();
      let err: IbpError | undefined;
      try {
        await conn.call('ibp_t_record', {}, { jnlsno: jnl() });
        await conn.call('ibp_t_record', {}, { jnlsno });
      } catch (e) {
        assert.ok(e instanceof IbpError);
        err = e;
      } finally {
        proxy.setRule(undefined);
      }
      const envStatus = env.commStatus;
      await conn.close();
      const pc = proxy.connections[since];
      await pc?.closed;
      const marker = jnl();
      await env.call('ibp_t_record', {}, { jnlsno: marker });
      const calls = recordedCalls(c.serverHomes[0]!);
      return { err, conn: pc, jnlsno, envStatus, ran: calls.includes(jnlsno) };
    }

    it('reset after 5 bytes of the pipelined PRE_REQUEST is ON_SENDING (the REQUEST left with it), though nothing ran', async () => {
      const o = await secondCall({ dir: 'c2s', frame: 'PRE_REQUEST', nth: 1, afterBytes: 5, action: 'reset' });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'ON_SENDING', false);
    });

    it('reset before the PRE_RESPONSE of the pipelined call is ON_SENDING, and it ran (answered in one write)', async () => {
      const o = await secondCall({ dir: 's2c', frame: 'PRE_RESPONSE', nth: 1, afterBytes: 0, action: 'reset' });
      expectFailure(o, 'IBP_ERR_CLIENT_CONNECTION_LOST', 'ON_SENDING', true);
    });
  });
});
