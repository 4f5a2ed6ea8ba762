/**
 * The four-packet exchange between Ib2Connection and serveConnection over real sockets, and the comm
 * status of every kind of failure.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../../src/protocol/ib2-decoder.js';
import { FrameType, type Ib2PreRequest } from '../../../src/protocol/ib2-frames.js';
import { Ib2Connection, type Ib2CallRequest, type ProtocolLimits, type ServerConnection } from '../../../src/protocol/index.js';
import { TEST_KEYS, TEST_NODE, gate, startServer, until, type Gate, type TestServer } from './harness.js';

const clientDir = mkdtempSync(join(tmpdir(), 'ibp-client-'));
after(() => rmSync(clientDir, { recursive: true, force: true }));

function req(app: string, body = 'hello', extra: Partial<Ib2CallRequest> = {}): Ib2CallRequest {
  return { clientNode: 'CLI', app, jnlsno: 'J1', body: Buffer.from(body), timeoutMs: 5000, keys: TEST_KEYS, node: TEST_NODE, ...extra };
}

async function rejected(p: Promise<unknown>): Promise<IbpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IbpError, `expected an IbpError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

function framesOf(chunk: Buffer): Ib2Frame[] {
  const out: Ib2Frame[] = [];
  new Ib2FrameDecoder({ maxBodyBytes: 1 << 24, maxFileBytes: 1 << 30, maxFramePayloadBytes: 1 << 25, readTimeoutMs: 1, idleTimeoutMs: 1 }).push(chunk, out);
  return out;
}

describe('IB2 four-packet exchange', () => {
  let srv: TestServer;
  let hold: Gate = gate();
  const events: string[] = [];
  let lastConn: ServerConnection | undefined;
  before(async () => {
    srv = await startServer({
      tap: true,
      securityFlags: { sign: true, compress: false, encrypt: true },
      load: { busy: 2, total: 8 },
      apps: {
        async ahead(tx, reply) {
          reply({ body: Buffer.from('early'), responseFiles: [] });
          events.push('replied');
          await hold.promise;
          events.push('run-settled');
        },
        async hang() {
          await hold.promise;
        },
        async retire(tx, reply) {
          reply({ body: tx.body, responseFiles: [] });
          await Promise.resolve();
          lastConn!.goAway(); // as the platform does when a worker retires after its last transaction
        },
      },
      check: (pre, _p, conn) => {
        lastConn = conn;
        events.push(`check:${pre.app}`);
        if (pre.jnlsno === 'GOAWAY') conn.goAway();
        if (pre.jnlsno === 'DESTROY') conn.destroy();
        return undefined;
      },
    });
  });
  after(() => srv.close());
  afterEach(() => {
    hold.open();
    hold = gate();
  });

  async function connect(limits?: Partial<ProtocolLimits>): Promise<Ib2Connection> {
    return Ib2Connection.connect({ host: '127.0.0.1', port: srv.port, connectTimeoutMs: 2000, fileDir: clientDir, limits });
  }

  it('four-packet exchange - no files: body, load and the proposed security flags come back', async () => {
    const c = await connect();
    const r = await c.call(req('echo', '{"a":1}'));
    assert.equal(r.body.toString(), '{"a":1}');
    assert.deepEqual(r.load, { busy: 2, total: 8 });
    assert.deepEqual(r.securityFlags, { sign: true, compress: false, encrypt: true });
    assert.deepEqual(r.responseFiles, []);
    const tx = srv.runs.at(-1)!;
    assert.deepEqual([tx.protocol, tx.clientNode, tx.app, tx.jnlsno, tx.trace, tx.clientIp], ['IB2', 'CLI', 'echo', 'J1', false, '127.0.0.1']);
    await c.close();
    assert.equal(c.closed, true);
  });

  it('four-packet exchange - 4 files each way arrive byte for byte, stored as (file_id)_(10 chars).tmp', async () => {
    const src = mkdtempSync(join(tmpdir(), 'ibp-src-'));
    try {
      const sizes = [0, 1, 300_000, 1_100_000];
      const paths = sizes.map((n, i) => {
        const p = join(src, `${['empty', 'one', 'mid', 'big'][i]}.bin`);
        writeFileSync(p, randomBytes(n));
        return p;
      });
      const c = await connect();
      const r = await c.call(req('echo_files', 'files', { files: paths, trace: true }));
      const tx = srv.runs.at(-1)!;
      assert.equal(tx.trace, true);
      assert.equal(tx.requestFiles.length, 4);
      assert.equal(r.responseFiles.length, 4);
      for (let i = 0; i < 4; i++) {
        const id = ['empty', 'one', 'mid', 'big'][i];
        assert.match(basename(tx.requestFiles[i]!), new RegExp(`^${id}_[A-Za-z0-9]{10}\\.tmp$`));
        assert.match(basename(r.responseFiles[i]!), new RegExp(`^${id}_[A-Za-z0-9]{10}\\.tmp$`));
        assert.equal(join(r.responseFiles[i]!, '..'), clientDir);
        const want = readFileSync(paths[i]!);
        assert.ok(readFileSync(tx.requestFiles[i]!).equals(want), `server copy of file ${i}`);
        assert.ok(readFileSync(r.responseFiles[i]!).equals(want), `client copy of file ${i}`);
      }
      await c.close();
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('pipelining - once the flags are known, a call without files sends PRE_REQUEST and REQUEST in one write', async () => {
    const c = await connect();
    const tapIndex = srv.taps.length - 1;
    await c.call(req('echo', 'first'));
    await c.call(req('echo', 'second'));
    const [first, second] = srv.checks.slice(-2) as Ib2PreRequest[];
    assert.equal(first!.pipelined, false, 'the first call waits for PRE_RESPONSE');
    assert.equal(second!.pipelined, true, 'the second call is pipelined');
    const tap = srv.taps[tapIndex]!;
    assert.deepEqual(framesOf(tap[0]!).map((f) => f.type), [FrameType.PRE_REQUEST], 'first call: PRE_REQUEST alone');
    const last = framesOf(tap[tap.length - 1]!);
    assert.deepEqual(last.map((f) => f.type), [FrameType.PRE_REQUEST, FrameType.REQUEST], 'second call: one write');
    await c.close();
  });

  it('pipelining - refused at the pre-request: the pipelined request is not run, NOT_SENT, the connection stays usable', async () => {
    const c = await connect();
    await c.call(req('echo', 'warm-up'));
    const runsBefore = srv.runs.length;
    const err = await rejected(c.call(req('busy', 'must not run')));
    assert.equal((srv.checks.at(-1) as Ib2PreRequest).pipelined, true);
    assert.equal(err.code, 'IBP_ERR_CLIENT_REFUSED');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(err.inDoubt, false);
    assert.equal((err.cause as IbpError).code, 'IBP_ERR_SERVER_BUSY');
    assert.equal(err.details?.serverCode, 'IBP_ERR_SERVER_BUSY');
    assert.equal(srv.runs.length, runsBefore, 'the refused request did not run');
    assert.equal(c.closed, false);
    const r = await c.call(req('echo', 'after'));
    assert.equal(r.body.toString(), 'after');
    assert.equal(srv.runs.length, runsBefore + 1);
    await c.close();
  });

  it('refusal on a first call (not pipelined): REFUSED, NOT_SENT, with the server code', async () => {
    const c = await connect();
    const err = await rejected(c.call(req('no_such_app')));
    assert.equal(err.code, 'IBP_ERR_CLIENT_REFUSED');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(err.details?.serverCode, 'IBP_ERR_SERVER_APP_NOT_FOUND');
    assert.equal((await c.call(req('echo', 'ok'))).body.toString(), 'ok');
    await c.close();
  });

  it('GOAWAY while a pipelined request is on the wire: it is still answered, then the connection is retired', async () => {
    const c = await connect();
    await c.call(req('echo', 'warm-up'));
    const conn = srv.conns.at(-1)!;
    const r = await c.call(req('echo', 'on the wire', { jnlsno: 'GOAWAY' }));
    assert.equal(r.body.toString(), 'on the wire');
    assert.equal(c.goingAway, true);
    const err = await rejected(c.call(req('echo')));
    assert.equal(err.commStatus, 'NOT_SENT');
    await conn.closed;
    await until(() => c.closed, 2000, 'client side closed');
  });

  it('GOAWAY before PRE_RESPONSE of a first call: the call still completes', async () => {
    const c = await connect();
    const r = await c.call(req('echo', 'first', { jnlsno: 'GOAWAY' }));
    assert.equal(r.body.toString(), 'first');
    assert.equal(c.goingAway, true);
    await srv.conns.at(-1)!.closed;
  });

  it('GOAWAY sent as run settles (a retiring worker): the client knows by the time the call returns', async () => {
    const c = await connect();
    await c.call(req('echo', 'warm-up'));
    for (let i = 0; i < 3 && !c.goingAway; i++) {
      const r = await c.call(req('retire', 'last'));
      assert.equal(r.body.toString(), 'last');
      assert.equal(c.goingAway, true, 'GOAWAY seen by the time call() resolves');
    }
    await until(() => c.closed, 2000, 'client closes the retired connection');
  });

  it('GOAWAY on an idle connection: the client marks it and closes it, the server side closes', async () => {
    const c = await connect();
    await c.call(req('echo'));
    const conn = srv.conns.at(-1)!;
    assert.equal(conn.inFlight, false);
    assert.equal(conn.protocol, 'IB2');
    conn.goAway();
    await until(() => c.goingAway && c.closed, 2000, 'client sees GOAWAY and closes');
    await conn.closed;
  });

  it('response ahead: the response arrives while run continues; the next request is read only after run settles', async () => {
    events.length = 0;
    const c = await connect();
    await c.call(req('echo', 'warm-up'));
    const conn = srv.conns.at(-1)!;
    const tap = srv.taps.at(-1)!;
    const r = await c.call(req('ahead'));
    assert.equal(r.body.toString(), 'early');
    assert.deepEqual(events.slice(-2), ['check:ahead', 'replied']);
    assert.equal(conn.inFlight, true, 'run has not settled');
    const chunks = tap.length;
    const next = c.call(req('echo', 'next'));
    await until(() => tap.length > chunks, 2000, 'the next request reached the server');
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(events.at(-1), 'replied', 'the next pre-request is not read before run settles');
    hold.open();
    assert.equal((await next).body.toString(), 'next');
    assert.deepEqual(events.slice(-3), ['replied', 'run-settled', 'check:echo']);
    await c.close();
  });

  it('app failures: a rejecting run and a run without reply are APP_FAILED, COMPLETED; the connection goes on', async () => {
    const c = await connect();
    for (const app of ['fail', 'noreply']) {
      const err = await rejected(c.call(req(app)));
      assert.equal(err.code, 'IBP_ERR_SERVER_APP_FAILED', app);
      assert.equal(err.commStatus, 'COMPLETED', app);
    }
    assert.equal((await c.call(req('echo', 'still'))).body.toString(), 'still');
    await c.close();
  });

  it('a server error outcome is the server IbpError rebuilt, with COMPLETED and its details', async () => {
    const c = await connect();
    const err = await rejected(c.call(req('fail_coded')));
    assert.equal(err.code, 'IBP_ERR_SERVER_APP_FAILED');
    assert.equal(err.message, 'bad input');
    assert.deepEqual(err.details, { field: 'amount' });
    assert.equal(err.commStatus, 'COMPLETED');
    await c.close();
  });

  it('timeout while the server runs: CLIENT_TIMEOUT, ON_SENDING (in doubt), the connection is destroyed', async () => {
    const c = await connect();
    const t0 = Date.now();
    const err = await rejected(c.call(req('hang', 'x', { timeoutMs: 200 })));
    assert.ok(Date.now() - t0 >= 190);
    assert.equal(err.code, 'IBP_ERR_CLIENT_TIMEOUT');
    assert.equal(err.commStatus, 'ON_SENDING');
    assert.equal(err.inDoubt, true);
    assert.equal(c.closed, true);
  });

  it('connection lost while the server runs: CONNECTION_LOST, ON_SENDING', async () => {
    const c = await connect();
    const p = c.call(req('hang'));
    await until(() => srv.runs.at(-1)?.app === 'hang' && srv.conns.at(-1)!.inFlight, 2000);
    srv.conns.at(-1)!.destroy();
    const err = await rejected(p);
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST');
    assert.equal(err.commStatus, 'ON_SENDING');
  });

  it('connection lost before PRE_RESPONSE of a first call: NOT_SENT; of a pipelined call: ON_SENDING', async () => {
    const c1 = await connect();
    const e1 = await rejected(c1.call(req('echo', 'x', { jnlsno: 'DESTROY' })));
    assert.equal(e1.code, 'IBP_ERR_CLIENT_CONNECTION_LOST');
    assert.equal(e1.commStatus, 'NOT_SENT');
    const c2 = await connect();
    await c2.call(req('echo'));
    const e2 = await rejected(c2.call(req('echo', 'x', { jnlsno: 'DESTROY' })));
    assert.equal(e2.code, 'IBP_ERR_CLIENT_CONNECTION_LOST');
    assert.equal(e2.commStatus, 'ON_SENDING');
  });

  it('a missing request file: FILE_NOT_FOUND, NOT_SENT, nothing written, the connection still works', async () => {
    const c = await connect();
    const checks = srv.checks.length;
    const err = await rejected(c.call(req('echo_files', 'x', { files: [join(clientDir, 'nope.bin')] })));
    assert.equal(err.code, 'IBP_ERR_FILE_NOT_FOUND');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(srv.checks.length, checks, 'the server saw no pre-request');
    assert.equal((await c.call(req('echo', 'fine'))).body.toString(), 'fine');
    await c.close();
  });

  it('bad arguments and a second concurrent call fail NOT_SENT without touching the connection', async () => {
    const c = await connect();
    const first = c.call(req('echo', 'one'));
    const busy = await rejected(c.call(req('echo', 'two')));
    assert.equal(busy.code, 'IBP_ERR_CLIENT_BUSY');
    assert.equal(busy.commStatus, 'NOT_SENT');
    await first;
    for (const bad of [req(''), req('x'.repeat(65)), { ...req('echo'), timeoutMs: 0 }, { ...req('echo'), files: ['a', 'b', 'c', 'd', 'e'] }]) {
      const e = await rejected(c.call(bad));
      assert.equal(e.commStatus, 'NOT_SENT');
    }
    assert.equal((await c.call(req('echo', 'ok'))).body.toString(), 'ok');
    await c.close();
  });
});

describe('IB2 client - failures around the exchange', () => {
  it('connecting to a closed port: CONNECT_FAILED, NOT_SENT', async () => {
    const srv = await startServer();
    const port = srv.port;
    await srv.close();
    const err = await rejected(Ib2Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: 2000, fileDir: clientDir }));
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECT_FAILED');
    assert.equal(err.commStatus, 'NOT_SENT');
    assert.equal(err.retryable, true);
  });

  it('a failure while receiving response files: COMPLETED, and no file of the call is left', async () => {
    const srv = await startServer({
      apps: {
        async two_files(_tx, reply) {
          const small = join(srv.fileDir, 'small_0123456789.tmp');
          const big = join(srv.fileDir, 'big_0123456789.tmp');
          writeFileSync(small, randomBytes(10));
          writeFileSync(big, randomBytes(1000));
          reply({ body: Buffer.from('done'), responseFiles: [small, big] });
        },
      },
    });
    const dir = mkdtempSync(join(tmpdir(), 'ibp-small-'));
    try {
      const c = await Ib2Connection.connect({ host: '127.0.0.1', port: srv.port, connectTimeoutMs: 2000, fileDir: dir, limits: { maxFileBytes: 100 } });
      const err = await rejected(c.call(req('two_files')));
      assert.equal(err.code, 'IBP_ERR_FILE_TOO_LARGE');
      assert.equal(err.commStatus, 'COMPLETED');
      assert.equal(c.closed, true);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await srv.close();
    }
  });

  it('a protocol error the server reports before running (ERROR frame): NOT_SENT, not run', async () => {
    const srv = await startServer({ limits: { maxBodyBytes: 100 } });
    try {
      const c = await Ib2Connection.connect({ host: '127.0.0.1', port: srv.port, connectTimeoutMs: 2000, fileDir: clientDir });
      const err = await rejected(c.call(req('echo', 'x'.repeat(200))));
      assert.equal(err.code, 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
      assert.equal(err.commStatus, 'NOT_SENT');
      assert.equal(srv.runs.length, 0);
      await srv.log.waitWarn('IBP_ERR_PROTO_FRAME_TOO_LARGE', 2000);
    } finally {
      await srv.close();
    }
  });
});
