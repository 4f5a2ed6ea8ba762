import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { createTempFileName } from '../../../src/protocol/index.js';
import { startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

describe('platform and client on one node', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ workers: 2 });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('echo over a short connection comes back byte for byte, with the server load', async () => {
    const msg = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    const r = await env.call('ibp_test_echo', msg);
    assert.deepEqual(r.body, msg);
    assert.equal(r.load.total, 2, 'load total = workers in the pool');
    assert.ok(r.load.busy >= 1 && r.load.busy <= 2, `busy ${r.load.busy} counts the worker that answered`);
    assert.equal(r.host.port, c.ports[0]);
    assert.equal(env.commStatus, 'OK');
  });

  test('the app sees the transaction context the platform fills in', async () => {
    const r = await env.call('ibp_t_pid', 'x', { jnlsno: 'J-42' });
    const ctx = r.json<Record<string, unknown>>();
    assert.equal(ctx.thisNode, 'ECIF');
    assert.equal(ctx.app, 'ibp_t_pid');
    assert.equal(ctx.clientNode, 'CORE');
    assert.equal(ctx.clientIp, '127.0.0.1');
    assert.equal(ctx.jnlsno, 'J-42');
    assert.equal(ctx.commTimeoutSec, 30);
    assert.equal(ctx.appTimeoutSec, 45, 'timeout2 = 0 means timeout × 1.5');
    assert.equal(ctx.workerCount, 2);
    assert.ok(ctx.workerIndex === 1 || ctx.workerIndex === 2);
    assert.equal(ctx.protocol, 'IB2');
    assert.equal(ctx.kvMissing, true);
  });

  test('a long connection carries many calls and they are spread over both workers as connections', async () => {
    const a = await env.connect('ECIF');
    const b = await env.connect('ECIF');
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const ra = await a.call('ibp_t_pid', `${i}`);
      const rb = await b.call('ibp_t_pid', `${i}`);
      pids.add(ra.json<{ pid: number }>().pid);
      pids.add(rb.json<{ pid: number }>().pid);
    }
    await a.close();
    await b.close();
    assert.equal(pids.size, 2, 'two long connections opened on an idle pool land on two workers');
  });

  test('request and response files travel both ways (4 files)', async () => {
    const files: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = createTempFileName(join(c.clientHome, 'file'), `doc${i}`);
      writeFileSync(p, Buffer.alloc(50_000 + i * 1000, i + 1));
      files.push(p);
    }
    const r = await env.call('ibp_test_file', 'files please', { files });
    assert.equal(r.files.length, 4);
    for (let i = 0; i < 4; i++) {
      assert.ok(r.files[i]!.startsWith(join(c.clientHome, 'file')), 'response files are stored in the client file/');
      assert.match(r.files[i]!, new RegExp(`doc${i}_.{10}\\.tmp$`));
      assert.deepEqual(readFileSync(r.files[i]!), readFileSync(files[i]!));
    }
    const body = r.json<{ received: { size: number }[] }>();
    assert.deepEqual(body.received.map((x) => x.size), [50_000, 51_000, 52_000, 53_000]);
  });

  test('an app that throws, rejects or returns non-zero gives a coded error that is not in doubt', async () => {
    for (const how of ['throw', 'reject', 'code']) {
      const err = await env.call('ibp_t_fail', how).then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof IbpError);
      assert.equal(err.code, 'IBP_ERR_SERVER_APP_FAILED', how);
      assert.equal(err.commStatus, 'COMPLETED', 'the server answered: not in doubt');
      assert.equal(err.inDoubt, false);
    }
    const ok = await env.call('ibp_test_echo', 'still fine');
    assert.equal(ok.text(), 'still fine', 'the pool survives failing apps');
  });

  test('an app the replica does not know is refused before anything is sent', async () => {
    const err = await env.call('no_such_app', 'x', { node: 'ECIF' }).catch((e: unknown) => e);
    assert.ok(err instanceof IbpError);
    assert.equal(err.code, 'IBP_ERR_REPLICA_UNKNOWN_APP');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(env.commStatus, 'NOT_SENT');
  });

  test('a worker that dies mid-transaction: the call is in doubt and the pool is whole again', async () => {
    const err = await env.call('ibp_t_crash', 'x').catch((e: unknown) => e);
    assert.ok(err instanceof IbpError);
    assert.equal(err.commStatus, 'ON_SENDING', `${err.code}: ${err.message}`);
    assert.equal(env.commStatus, 'ON_SENDING');
    await waitFor(async () => {
      const r = await env.call('ibp_test_echo', 'x');
      return r.load.total === 2;
    }, 'the pool to have 2 workers again');
  });

  test('a worker stuck in a loop is killed at T by its watchdog and replaced', async () => {
    const t0 = Date.now();
    const err = await env.call('ibp_t_loop', 'x').catch((e: unknown) => e);
    const took = Date.now() - t0;
    assert.ok(err instanceof IbpError);
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.ok(took >= 900 && took < 5000, `killed after ${took} ms (T = 1 s)`);
    await waitFor(async () => (await env.call('ibp_test_echo', 'x')).load.total === 2, 'the pool to be whole');
  });

  test('send-response-ahead: the client gets the answer before the app finishes', async () => {
    const r = await env.call('ibp_t_ahead', 'x', { jnlsno: 'AHEAD1' });
    assert.equal(r.text(), 'answered early');
    const marker = join(c.serverHomes[0]!, 'file', 'ahead_AHEAD1.done');
    assert.equal(existsSync(marker), false, 'the app was still working when the response arrived');
    await waitFor(() => existsSync(marker), 'the app to finish after replying');
  });
});
