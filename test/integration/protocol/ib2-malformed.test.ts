/**
 * IB2 server against malformed input from raw sockets: every class gets a coded error in the log, an ERROR
 * frame where one can be sent, and a closed socket within the read timeout.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import {
  FrameType, decodeError, decodePreResponse, encodeFileBegin, encodeFileData, encodePreRequest, encodeRequest,
  encodeGoAway, encodeResponse,
} from '../../../src/protocol/ib2-frames.js';
import { RawPeer, startServer, type TestServer } from './harness.js';

const READ_MS = 300;
/** Read timeout + close linger + scheduling slack. */
const CLOSE_BOUND_MS = READ_MS + 300 + 1500;

function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.from([0x49, 0x42, 0x32, type, 0, 0, 0, 0]);
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

const pre = (app = 'echo', fileCount = 0, pipelined = false): Buffer =>
  encodePreRequest({ clientNode: 'T', app, jnlsno: 'J', trace: false, fileCount, pipelined });

describe('IB2 server - malformed input', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ limits: { readTimeoutMs: READ_MS, maxBodyBytes: 4096, maxFramePayloadBytes: 8192, maxFileBytes: 100_000 } });
  });
  after(() => srv.close());

  /** Sends `bytes`, then expects the warning `code`, an ERROR frame with it (when `errorFrame`), and a close. */
  async function expectRejected(bytes: Buffer[], code: string, errorFrame = true): Promise<RawPeer> {
    const before = srv.log.records.length;
    const p = await RawPeer.connect(srv.port);
    for (const b of bytes) p.write(b);
    await p.waitClosed(CLOSE_BOUND_MS);
    const err = await srv.log.waitWarn(code, 2000, before);
    assert.equal(err.code, code);
    const frames = p.frames();
    if (errorFrame) {
      const last = frames[frames.length - 1];
      assert.equal(last?.type, FrameType.ERROR, 'the last frame is ERROR');
      assert.equal(decodeError(last.payload).code, code);
    }
    return p;
  }

  it('IB2 server - garbage as the first bytes: BAD_MAGIC logged and the socket closed, nothing sent', async () => {
    const p = await expectRejected([Buffer.from('HELLO WORLD\r\n')], 'IBP_ERR_PROTO_BAD_MAGIC', false);
    assert.equal(p.data.length, 0);
  });

  it('IB2 server - bad magic on a later frame: ERROR BAD_MAGIC and closed', async () => {
    await expectRejected([pre(), encodeRequest(Buffer.from('x')), Buffer.from('IB3\x05\0\0\0\0')], 'IBP_ERR_PROTO_BAD_MAGIC');
  });

  it('IB2 server - unknown frame type: ERROR BAD_FIELD', async () => {
    await expectRejected([frame(0x42, Buffer.alloc(3))], 'IBP_ERR_PROTO_BAD_FIELD');
  });

  it('IB2 server - a declared length past the limit is refused from the header, before any payload', async () => {
    const t0 = Date.now();
    await expectRejected([Buffer.from([0x49, 0x42, 0x32, FrameType.PRE_REQUEST, 0, 0, 0x13, 0x88])], 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.ok(Date.now() - t0 < READ_MS, 'refused without waiting for the payload');
    await expectRejected([pre(), Buffer.from([0x49, 0x42, 0x32, FrameType.REQUEST, 0xff, 0xff, 0xff, 0xff])], 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
  });

  it('IB2 server - a peer that stops mid-frame: READ_TIMEOUT, ERROR, closed within the read timeout', async () => {
    const t0 = Date.now();
    await expectRejected([pre().subarray(0, 11)], 'IBP_ERR_PROTO_READ_TIMEOUT');
    const took = Date.now() - t0;
    assert.ok(took >= READ_MS - 20 && took < CLOSE_BOUND_MS, `closed after ${took} ms`);
  });

  it('IB2 server - a peer that stops between frames inside a transaction: READ_TIMEOUT', async () => {
    await expectRejected([pre('echo', 1)], 'IBP_ERR_PROTO_READ_TIMEOUT');
  });

  it('IB2 server - a peer that closes mid-frame: TRUNCATED logged', async () => {
    const since = srv.log.records.length;
    const p = await RawPeer.connect(srv.port);
    p.write(encodeRequest(Buffer.from('abc')).subarray(0, 9));
    p.socket.end();
    await p.waitClosed(CLOSE_BOUND_MS);
    await srv.log.waitWarn('IBP_ERR_PROTO_TRUNCATED', 2000, since);
  });

  it('IB2 server - wrong field values in PRE_REQUEST get their codes', async () => {
    await expectRejected([frame(FrameType.PRE_REQUEST, Buffer.concat([Buffer.from([0, 9]), str('N'), str('a'), str('J')]))], 'IBP_ERR_PROTO_TOO_MANY_FILES');
    await expectRejected([frame(FrameType.PRE_REQUEST, Buffer.concat([Buffer.from([0, 0]), str('N'), str(Buffer.from([0xff, 0xfe])), str('J')]))], 'IBP_ERR_PROTO_BAD_FIELD');
    await expectRejected([frame(FrameType.PRE_REQUEST, Buffer.concat([Buffer.from([0x80, 0]), str('N'), str('a'), str('J')]))], 'IBP_ERR_PROTO_BAD_FIELD');
    await expectRejected([frame(FrameType.PRE_REQUEST, Buffer.concat([Buffer.from([0, 0]), str('N'), Buffer.from([0, 50]), Buffer.from('ab')]))], 'IBP_ERR_PROTO_TRUNCATED');
    await expectRejected([frame(FrameType.PRE_REQUEST, Buffer.concat([Buffer.from([0, 0]), str('N'), str('a'), str('J'), Buffer.from('extra')]))], 'IBP_ERR_PROTO_BAD_FIELD');
  });

  it('IB2 server - frames out of turn: UNEXPECTED_FRAME (REQUEST first, server-only frames, REQUEST instead of a file)', async () => {
    await expectRejected([encodeRequest(Buffer.from('x'))], 'IBP_ERR_PROTO_UNEXPECTED_FRAME');
    await expectRejected([encodeGoAway()], 'IBP_ERR_PROTO_UNEXPECTED_FRAME');
    await expectRejected([encodeResponse({ load: { busy: 0, total: 0 }, fileNames: [], body: Buffer.alloc(0) })], 'IBP_ERR_PROTO_UNEXPECTED_FRAME');
    const p = await expectRejected([pre('echo', 1, true), encodeRequest(Buffer.from('x'))], 'IBP_ERR_PROTO_UNEXPECTED_FRAME');
    assert.equal(decodePreResponse(p.frames()[0]!.payload).refusal, undefined);
  });

  it('IB2 server - file bytes past the declared size: BAD_FIELD, and no partial file is left', async () => {
    await expectRejected([pre('echo_files', 1, true), encodeFileBegin({ index: 0, size: 3, name: 'a.txt' }), encodeFileData(Buffer.from('abcd'))], 'IBP_ERR_PROTO_BAD_FIELD');
    assert.deepEqual(readdirSync(srv.fileDir), []);
  });

  it('IB2 server - a file past maxFileBytes or out of order is refused, earlier files of the batch are deleted', async () => {
    await expectRejected([pre('echo_files', 2, true), encodeFileBegin({ index: 0, size: 2, name: 'a.txt' }), encodeFileData(Buffer.from('ab')),
      encodeFileBegin({ index: 1, size: 200_000, name: 'b.txt' })], 'IBP_ERR_FILE_TOO_LARGE');
    await expectRejected([pre('echo_files', 2, true), encodeFileBegin({ index: 1, size: 1, name: 'a.txt' })], 'IBP_ERR_PROTO_BAD_FIELD');
    assert.deepEqual(readdirSync(srv.fileDir), []);
  });

  it('IB2 server - a connection that sends nothing is closed after the read timeout', async () => {
    const since = srv.log.records.length;
    const p = await RawPeer.connect(srv.port);
    const took = await p.waitClosed(CLOSE_BOUND_MS);
    assert.ok(took >= READ_MS - 20, `closed after ${took} ms`);
    await srv.log.waitWarn('IBP_ERR_PROTO_READ_TIMEOUT', 2000, since);
  });

  it('IB2 server - an empty FILE_DATA frame is refused (no zero-progress loops)', async () => {
    await expectRejected([pre('echo_files', 1, true), encodeFileBegin({ index: 0, size: 3, name: 'a.txt' }), frame(FrameType.FILE_DATA, Buffer.alloc(0))], 'IBP_ERR_PROTO_BAD_FIELD');
  });
});

describe('IB2 server - idle connections', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ limits: { readTimeoutMs: 1000, idleTimeoutMs: 300 }, goAwayGraceMs: 200 });
  });
  after(() => srv.close());

  it('IB2 server - an idle connection gets GOAWAY after idleTimeoutMs and is closed after the grace period', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write(pre());
    p.write(encodeRequest(Buffer.from('hi')));
    const t0 = Date.now();
    await p.waitFor((x) => x.frames().some((f) => f.type === FrameType.GOAWAY), 3000, 'GOAWAY');
    const goawayAt = Date.now() - t0;
    await p.waitClosed(3000);
    const closedAt = Date.now() - t0;
    assert.deepEqual(p.frames().map((f) => f.type), [FrameType.PRE_RESPONSE, FrameType.RESPONSE, FrameType.GOAWAY]);
    assert.ok(goawayAt >= 250, `GOAWAY after ${goawayAt} ms`);
    assert.ok(closedAt - goawayAt >= 150, `closed ${closedAt - goawayAt} ms after GOAWAY`);
    assert.deepEqual(srv.log.warnCodes(), []);
  });

  it('IB2 server - a request that arrives during the GOAWAY grace period is still served', async () => {
    const p = await RawPeer.connect(srv.port);
    p.write(pre());
    p.write(encodeRequest(Buffer.from('one')));
    await p.waitFor((x) => x.frames().some((f) => f.type === FrameType.GOAWAY), 3000, 'GOAWAY');
    p.write(pre());
    p.write(encodeRequest(Buffer.from('two')));
    await p.waitClosed(3000);
    const types = p.frames().map((f) => f.type);
    assert.deepEqual(types, [FrameType.PRE_RESPONSE, FrameType.RESPONSE, FrameType.GOAWAY, FrameType.PRE_RESPONSE, FrameType.RESPONSE]);
    assert.equal(p.frames()[4]!.payload.subarray(6).toString(), 'two');
  });
});
