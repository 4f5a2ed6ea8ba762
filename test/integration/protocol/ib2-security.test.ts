/**
 * Message security over real sockets (docs/protocol.md §Security): what travels when sign/compress/encrypt are
 * agreed, and the coded refusal of tampered, truncated, replayed and wrongly-keyed messages (a frame-editing
 * proxy and raw sockets in the middle).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { FrameType, IB2_HEADER_BYTES, encodePreRequest, encodeRequest } from '../../../src/protocol/ib2-frames.js';
import { Ib2Connection, type Ib2CallRequest, type SecurityFlags } from '../../../src/protocol/index.js';
import { EditProxy, flipPayloadByte, withPayload, type FrameEdit } from '../../helpers/edit-proxy.js';
import { RawPeer, TEST_KEYS, TEST_NODE, startServer, until, type TestServer } from './harness.js';

const clientDir = mkdtempSync(join(tmpdir(), 'ibp-sec-client-'));
after(() => rmSync(clientDir, { recursive: true, force: true }));

const ALL: SecurityFlags = { sign: true, compress: true, encrypt: true };
const SECRET = 'the-secret-words-'.repeat(40);

function req(body: string, extra: Partial<Ib2CallRequest> = {}): Ib2CallRequest {
  return { clientNode: 'CLI', app: 'echo', jnlsno: 'J1', body: Buffer.from(body), timeoutMs: 5000, keys: TEST_KEYS, node: TEST_NODE, ...extra };
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

function connect(port: number): Promise<Ib2Connection> {
  return Ib2Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: 2000, fileDir: clientDir });
}

describe('IB2 message security - agreed protection', () => {
  let srv: TestServer;
  before(async () => { srv = await startServer({ tap: true, securityFlags: ALL, minCompressSize: 100 }); });
  after(() => srv.close());

  it('sign+compress+encrypt: body and files arrive intact, and neither travels in clear; a large body is compressed', async () => {
    const src = mkdtempSync(join(tmpdir(), 'ibp-sec-src-'));
    try {
      const file = join(src, 'f.txt');
      writeFileSync(file, SECRET);
      const bin = join(src, 'b.bin');
      writeFileSync(bin, randomBytes(600_000));
      const c = await connect(srv.port);
      const r1 = await c.call(req(SECRET, { app: 'echo_files', files: [file, bin] }));
      assert.equal(r1.body.toString(), SECRET);
      assert.deepEqual(r1.securityFlags, ALL);
      assert.equal(readFileSync(r1.responseFiles[0]!, 'utf8'), SECRET);
      assert.deepEqual(readFileSync(r1.responseFiles[1]!), readFileSync(bin));
      const r2 = await c.call(req(SECRET)); // pipelined on the same connection
      assert.equal(r2.body.toString(), SECRET);
      await c.close();
      const wire = Buffer.concat(srv.taps.at(-1)!);
      assert.equal(wire.includes(Buffer.from('the-secret-words')), false, 'plain text on the wire');
      assert.ok(wire.length < 600_000 + 2 * SECRET.length, `request side is ${wire.length} bytes: the text bodies were compressed`);
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('refusals, error outcomes and files keep both ends numbering transactions alike on one connection', async () => {
    const src = mkdtempSync(join(tmpdir(), 'ibp-sec-src-'));
    try {
      const file = join(src, 'f.txt');
      writeFileSync(file, 'file body');
      const c = await connect(srv.port);
      assert.equal((await c.call(req('one'))).body.toString(), 'one');
      assert.equal((await rejected(c.call(req('x', { app: 'busy' })))).code, 'IBP_ERR_CLIENT_REFUSED'); // pipelined, REQUEST dropped
      assert.equal((await c.call(req('two'))).body.toString(), 'two');
      assert.equal((await rejected(c.call(req('x', { app: 'busy', files: [file] })))).code, 'IBP_ERR_CLIENT_REFUSED'); // not pipelined
      const failed = await rejected(c.call(req('x', { app: 'fail_coded' })));
      assert.deepEqual([failed.code, failed.commStatus], ['IBP_ERR_SERVER_APP_FAILED', 'COMPLETED']);
      const r = await c.call(req('three', { app: 'echo_files', files: [file] }));
      assert.equal(readFileSync(r.responseFiles[0]!, 'utf8'), 'file body');
      assert.equal((await c.call(req('four'))).body.toString(), 'four');
      await c.close();
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('a client without the server node key fails NOT_SENT with IBP_ERR_SEC_NO_KEY', async () => {
    const c = await connect(srv.port);
    await c.call(req('first'));
    const e = await rejected(c.call(req('second', { keys: undefined })));
    assert.equal(e.code, 'IBP_ERR_SEC_NO_KEY');
    assert.equal(e.commStatus, 'NOT_SENT');
    await c.close();
  });

  it('a client with a wrong key is refused with IBP_ERR_SEC_UNKNOWN_KEY (nothing ran)', async () => {
    const runs = srv.runs.length;
    const c = await connect(srv.port);
    const e = await rejected(c.call(req('x', { keys: { keyExp: 'not-the-key', newKeyEnableAt: 0, oldKeyDisableAt: 0 } })));
    assert.equal(e.code, 'IBP_ERR_SEC_UNKNOWN_KEY');
    assert.equal(e.commStatus, 'NOT_SENT');
    assert.equal(srv.runs.length, runs);
    c.destroy();
  });

  it('a peer that sends a plain REQUEST after the handshake agreed protection is refused with a coded IBP_ERR_SEC_* error', async () => {
    const peer = await RawPeer.connect(srv.port);
    peer.write(encodePreRequest({ clientNode: 'CLI', app: 'echo', jnlsno: 'J', trace: false, fileCount: 0, pipelined: false }));
    await until(() => peer.frames().length >= 1, 5000, 'PRE_RESPONSE');
    peer.write(encodeRequest(Buffer.from('plain')));
    await peer.closed;
    const err = peer.frames().find((f) => f.type === FrameType.ERROR);
    assert.ok(err, 'an ERROR frame');
    assert.match(err.payload.toString('latin1'), /IBP_ERR_SEC_(FLAGS_MISMATCH|MALFORMED)/);
  });
});

describe('IB2 message security - refusals through a frame-editing proxy', () => {
  let srv: TestServer;
  let edit: FrameEdit = (f) => f.bytes;
  let proxy: EditProxy;
  before(async () => {
    srv = await startServer({ securityFlags: { sign: true, compress: false, encrypt: false } });
    proxy = await EditProxy.start(srv.port, (f) => edit(f));
  });
  after(async () => {
    await proxy.close();
    await srv.close();
  });

  async function failing(body: string, e: FrameEdit, files?: string[]): Promise<IbpError> {
    edit = e;
    try {
      const c = await connect(proxy.port);
      try {
        return await rejected(c.call(req(body, files ? { app: 'echo_files', files } : {})));
      } finally {
        c.destroy();
      }
    } finally {
      edit = (f) => f.bytes;
    }
  }

  it('a tampered REQUEST is refused NOT_SENT with IBP_ERR_SEC_BAD_MAC and the app does not run', async () => {
    const runs = srv.runs.length;
    const e = await failing('pay 10', (f) => (f.dir === 'c2s' && f.type === FrameType.REQUEST ? flipPayloadByte(f.bytes, 1 + 8 + 4) : f.bytes));
    assert.equal(e.code, 'IBP_ERR_SEC_BAD_MAC');
    assert.equal(e.commStatus, 'NOT_SENT');
    assert.equal(srv.runs.length, runs);
  });

  it('a truncated REQUEST (framing fixed) is refused with IBP_ERR_SEC_BAD_MAC, cut below the seal with IBP_ERR_SEC_MALFORMED', async () => {
    const cut = (n: number): FrameEdit => (f) => (f.dir === 'c2s' && f.type === FrameType.REQUEST
      ? withPayload(f.bytes, f.bytes.subarray(IB2_HEADER_BYTES, f.bytes.length - n)) : f.bytes);
    assert.equal((await failing('pay 10', cut(3))).code, 'IBP_ERR_SEC_BAD_MAC');
    assert.equal((await failing('pay 10', cut(1 + 6 + 16))).code, 'IBP_ERR_SEC_MALFORMED');
  });

  it('a tampered RESPONSE fails the call in doubt (ON_SENDING) with IBP_ERR_SEC_BAD_MAC', async () => {
    const e = await failing('pay 10', (f) => (f.dir === 's2c' && f.type === FrameType.RESPONSE ? flipPayloadByte(f.bytes, -1) : f.bytes));
    assert.equal(e.code, 'IBP_ERR_SEC_BAD_MAC');
    assert.equal(e.commStatus, 'ON_SENDING');
  });

  it('a tampered request file chunk is refused with IBP_ERR_SEC_BAD_MAC', async () => {
    const src = mkdtempSync(join(tmpdir(), 'ibp-sec-src-'));
    try {
      const file = join(src, 'f.bin');
      writeFileSync(file, randomBytes(1000));
      const e = await failing('f', (f) => (f.dir === 'c2s' && f.type === FrameType.FILE_DATA ? flipPayloadByte(f.bytes, 20) : f.bytes), [file]);
      assert.equal(e.code, 'IBP_ERR_SEC_BAD_MAC');
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('a REQUEST replayed into a later transaction of the same connection is refused; the untouched calls succeed', async () => {
    let first: Buffer | undefined;
    edit = (f) => {
      if (f.dir !== 'c2s' || f.type !== FrameType.REQUEST) return f.bytes;
      if (f.nth === 0) first = f.bytes;
      return f.nth === 2 ? first! : f.bytes;
    };
    try {
      const c = await connect(proxy.port);
      assert.equal((await c.call(req('pay 10'))).body.toString(), 'pay 10');
      assert.equal((await c.call(req('pay 10'))).body.toString(), 'pay 10');
      const e = await rejected(c.call(req('pay 10')));
      assert.equal(e.code, 'IBP_ERR_SEC_BAD_MAC');
      c.destroy();
    } finally {
      edit = (f) => f.bytes;
    }
  });

  it('a whole connection replayed byte for byte on a new connection is refused (a new connection nonce)', async () => {
    const recorded: Buffer[] = [];
    edit = (f) => {
      if (f.dir === 'c2s') recorded.push(f.bytes);
      return f.bytes;
    };
    const c = await connect(proxy.port);
    await c.call(req('pay 10'));
    await c.close();
    edit = (f) => f.bytes;
    const runs = srv.runs.length;
    const peer = await RawPeer.connect(srv.port);
    peer.write(recorded[0]!); // PRE_REQUEST: accepted, a PRE_RESPONSE with a fresh nonce
    await until(() => peer.frames().length >= 1, 5000, 'PRE_RESPONSE');
    peer.write(recorded[1]!); // the old REQUEST
    await peer.closed;
    const err = peer.frames().find((f) => f.type === FrameType.ERROR);
    assert.ok(err, 'an ERROR frame');
    assert.match(err.payload.toString('latin1'), /IBP_ERR_SEC_BAD_MAC/);
    assert.equal(srv.runs.length, runs);
  });
});

describe('IB2 message security - keys and other protocols', () => {
  it('compression only needs no key: large bodies travel deflated, small ones plain, files untouched', async () => {
    const srv = await startServer({ tap: true, securityFlags: { sign: false, compress: true, encrypt: false }, minCompressSize: 100 });
    try {
      const c = await connect(srv.port);
      const big = 'compressible '.repeat(500);
      const r = await c.call(req(big, { keys: undefined, node: undefined, minCompressSize: 100 }));
      assert.equal(r.body.toString(), big);
      assert.equal((await c.call(req('small', { keys: undefined, minCompressSize: 100 }))).body.toString(), 'small');
      await c.close();
      const wire = Buffer.concat(srv.taps.at(-1)!);
      assert.ok(wire.length < big.length / 4, `${wire.length} bytes on the wire for a ${big.length}-byte body`);
      assert.ok(wire.includes(Buffer.from('small')), 'a body under the threshold travels as is');
    } finally {
      await srv.close();
    }
  });


  it('a server whose node has no key refuses with IBP_ERR_SEC_NO_KEY', async () => {
    const srv = await startServer({ securityFlags: { sign: true, compress: false, encrypt: false }, keys: { keyExp: '', newKeyEnableAt: 0, oldKeyDisableAt: 0 } });
    try {
      const c = await connect(srv.port);
      const e = await rejected(c.call(req('x')));
      assert.equal(e.code, 'IBP_ERR_CLIENT_REFUSED');
      assert.match(e.message, /IBP_ERR_SEC_NO_KEY/);
      assert.equal(e.commStatus, 'NOT_SENT');
      await c.close();
    } finally {
      await srv.close();
    }
  });

  it('HTTP to a server that signs is refused with 403 IBP_ERR_SEC_UNSUPPORTED; with compression only it is served plain', async () => {
    for (const [flags, status] of [[{ sign: true, compress: false, encrypt: false }, 403], [{ sign: false, compress: true, encrypt: false }, 200]] as const) {
      const srv = await startServer({ securityFlags: flags });
      try {
        const res = await fetch(`http://127.0.0.1:${srv.port}/ibp/echo`, { method: 'POST', body: 'hi', headers: { 'x-ibp-client-node': 'CLI' } });
        assert.equal(res.status, status);
        const text = await res.text();
        if (status === 403) assert.match(text, /IBP_ERR_SEC_UNSUPPORTED/);
        else assert.equal(text, 'hi');
      } finally {
        await srv.close();
      }
    }
  });
});
