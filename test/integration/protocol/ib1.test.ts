/**
 * IB1 over real sockets: many requests per connection, refusals and failures as error responses, malformed
 * input, going away, and the raw-socket example from docs/protocol.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Ib1Decoder, encodeIb1Request, type Ib1Response } from '../../../src/protocol/ib1-codec.js';
import { RawPeer, gate, startServer, until, type Gate, type TestServer } from './harness.js';

const READ_MS = 300;
const CLOSE_BOUND_MS = READ_MS + 300 + 1500;

function responses(p: RawPeer): Ib1Response[] {
  const out: Ib1Response[] = [];
  new Ib1Decoder('response', 1 << 20).push(p.data, out);
  return out;
}

describe('IB1', () => {
  let srv: TestServer;
  const hold: Gate = gate();
  before(async () => {
    srv = await startServer({
      limits: { readTimeoutMs: READ_MS, maxBodyBytes: 1000 },
      apps: {
        async ibp_test_echo(tx, reply) { reply({ body: tx.body, responseFiles: [] }); },
        async hang(_tx, reply) { await hold.promise; reply({ body: Buffer.from('late'), responseFiles: [] }); },
      },
    });
  });
  after(() => {
    hold.open();
    return srv.close();
  });

  it('IB1 - several requests on one connection are answered in order; the client node is reported as empty', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write(Buffer.concat([encodeIb1Request('echo', Buffer.from('one')), encodeIb1Request('meta', Buffer.alloc(0)), encodeIb1Request('echo', Buffer.from('three'))]));
    await p.waitFor((x) => responses(x).length === 3, 3000, 'three responses');
    const [a, b, c] = responses(p);
    assert.equal(a!.body.toString(), 'one');
    const meta = JSON.parse(b!.body.toString());
    assert.deepEqual([meta.protocol, meta.clientNode, meta.jnlsno, meta.trace, meta.app], ['IB1', '', '', false, 'meta']);
    assert.equal(c!.body.toString(), 'three');
    assert.equal(srv.checks.at(-1)!.clientNode, '');
    p.destroy();
  });

  it('IB1 - a refusal and a failing app are status-1 responses with the error JSON; the connection goes on', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write(Buffer.concat([encodeIb1Request('busy', Buffer.alloc(0)), encodeIb1Request('fail', Buffer.alloc(0)), encodeIb1Request('echo', Buffer.from('ok'))]));
    await p.waitFor((x) => responses(x).length === 3, 3000, 'three responses');
    const [a, b, c] = responses(p);
    assert.equal(a!.error?.code, 'IBP_ERR_SERVER_BUSY');
    assert.equal(b!.error?.code, 'IBP_ERR_SERVER_APP_FAILED');
    assert.equal(c!.error, undefined);
    assert.equal(c!.body.toString(), 'ok');
    p.destroy();
  });

  async function expectRejected(bytes: Buffer, code: string): Promise<RawPeer> {
    const since = srv.log.records.length;
    const p = await RawPeer.connect(srv.port);
    p.write(bytes);
    await p.waitClosed(CLOSE_BOUND_MS);
    await srv.log.waitWarn(code, 2000, since);
    const last = responses(p).at(-1);
    assert.equal(last?.error?.code, code, 'the last response carries the protocol error');
    return p;
  }

  it('IB1 - malformed requests get an error response with their code, then the connection is closed', async () => {
    const p = await expectRejected(Buffer.concat([encodeIb1Request('echo', Buffer.from('fine')), Buffer.from('IBX')]), 'IBP_ERR_PROTO_BAD_MAGIC');
    assert.equal(responses(p)[0]!.body.toString(), 'fine');
    await expectRejected(Buffer.from([0x49, 0x42, 0x31, 0]), 'IBP_ERR_PROTO_BAD_FIELD');
    await expectRejected(Buffer.from([0x49, 0x42, 0x31, 200]), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    await expectRejected(Buffer.from([0x49, 0x42, 0x31, 2, 0xc3, 0x28, 0, 0, 0, 0]), 'IBP_ERR_PROTO_BAD_FIELD');
    const t0 = Date.now();
    await expectRejected(Buffer.from([0x49, 0x42, 0x31, 1, 0x61, 0, 0, 0x10, 0]), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.ok(Date.now() - t0 < READ_MS, 'a body past the limit is refused from the head, without waiting for it');
  });

  it('IB1 - a peer that stops mid-request is closed within the read timeout', async () => {
    const t0 = Date.now();
    await expectRejected(encodeIb1Request('echo', Buffer.from('abcdef')).subarray(0, 12), 'IBP_ERR_PROTO_READ_TIMEOUT');
    assert.ok(Date.now() - t0 >= READ_MS - 20);
  });

  it('IB1 - going away closes an idle connection at once, a busy one after its response', async () => {
    const idle = await RawPeer.connect(srv.port);
    idle.write(encodeIb1Request('echo', Buffer.from('x')));
    await idle.waitFor((x) => responses(x).length === 1, 3000);
    const idleConn = srv.conns.at(-1)!;
    assert.equal(idleConn.protocol, 'IB1');
    idleConn.goAway();
    await idle.waitClosed(2000);

    const busy = await RawPeer.connect(srv.port);
    busy.write(encodeIb1Request('hang', Buffer.alloc(0)));
    await until(() => srv.runs.at(-1)?.app === 'hang', 2000);
    const busyConn = srv.conns.at(-1)!;
    assert.equal(busyConn.inFlight, true);
    busyConn.goAway();
    hold.open();
    await busy.waitClosed(2000);
    assert.equal(responses(busy)[0]!.body.toString(), 'late');
  });

  it('IB1 - examples/ib1-call.mjs calls ibp_test_echo with a raw socket', async () => {
    const script = fileURLToPath(new URL('../../../../examples/ib1-call.mjs', import.meta.url));
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [script, '127.0.0.1', String(srv.port)], { timeout: 10_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    assert.equal(out.trim(), 'ok {"hello":"ib1"}');
  });
});
