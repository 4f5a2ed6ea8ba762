import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbpError } from '../../../src/core/errors.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../../src/protocol/ib2-decoder.js';
import {
  FIELD_MAX_BYTES, FrameType, decodePreRequest, decodeResponse, encodePreRequest, encodeRequest, encodeResponse,
  encodeError, decodeError, truncateUtf8,
} from '../../../src/protocol/ib2-frames.js';
import { DEFAULT_LIMITS, type ProtocolLimits } from '../../../src/protocol/types.js';

const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxBodyBytes: 1000, maxFramePayloadBytes: 2000 };

function header(type: number, len: number): Buffer {
  const b = Buffer.from([0x49, 0x42, 0x32, type, 0, 0, 0, 0]);
  b.writeUInt32BE(len, 4);
  return b;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IbpError, `expected an IbpError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a throw');
}

describe('IB2 frame decoder', () => {
  const stream = Buffer.concat([
    encodePreRequest({ clientNode: 'N1', app: 'echo', jnlsno: 'J', trace: false, fileCount: 0, pipelined: true }),
    encodeRequest(Buffer.from('x'.repeat(700))),
    encodeRequest(Buffer.alloc(0)),
  ]);

  it('IB2 decoder - yields the same frames whether bytes come one at a time or all at once', () => {
    const whole: Ib2Frame[] = [];
    new Ib2FrameDecoder(limits).push(stream, whole);
    const d = new Ib2FrameDecoder(limits);
    const single: Ib2Frame[] = [];
    const ends = new Set<number>();
    let at = 0;
    for (const f of [0, 1, 2]) {
      at += 8 + [stream.readUInt32BE(4), 700, 0][f]!;
      ends.add(at);
    }
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1), single);
      assert.equal(d.partial, !ends.has(i + 1), `after byte ${i}`);
    }
    assert.equal(d.partial, false);
    assert.equal(whole.length, 3);
    assert.deepEqual(single.map((f) => [f.type, f.payload.toString('hex')]), whole.map((f) => [f.type, f.payload.toString('hex')]));
    assert.equal(decodePreRequest(whole[0]!.payload).app, 'echo');
    assert.equal(whole[1]!.payload.length, 700);
    assert.equal(whole[2]!.payload.length, 0);
  });

  it('IB2 decoder - a frame inside one chunk is a view of that chunk, not a copy', () => {
    const out: Ib2Frame[] = [];
    new Ib2FrameDecoder(limits).push(stream, out);
    assert.equal(out[1]!.payload.buffer, stream.buffer);
  });

  it('IB2 decoder - refuses a declared length past the limit from the header alone', () => {
    const d = new Ib2FrameDecoder(limits);
    assert.equal(code(() => d.push(header(FrameType.REQUEST, 1001), [])), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(header(FrameType.PRE_REQUEST, 201), [])), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(header(FrameType.GOAWAY, 1), [])), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(header(FrameType.FILE_DATA, 0xffffffff), [])), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
  });

  it('IB2 decoder - refuses bad magic at the first wrong byte and an unknown frame type', () => {
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(Buffer.from([0x49, 0x58]), [])), 'IBP_ERR_PROTO_BAD_MAGIC');
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(Buffer.from('IB1\x01\0\0\0\0'), [])), 'IBP_ERR_PROTO_BAD_MAGIC');
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(header(0x09, 0), [])), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(header(0x00, 0), [])), 'IBP_ERR_PROTO_BAD_FIELD');
  });

  it('IB2 decoder - keeps failing after the first error', () => {
    const d = new Ib2FrameDecoder(limits);
    assert.equal(code(() => d.push(Buffer.from('XX'), [])), 'IBP_ERR_PROTO_BAD_MAGIC');
    assert.equal(code(() => d.push(encodeRequest(Buffer.from('ok')), [])), 'IBP_ERR_PROTO_BAD_MAGIC');
  });

  it('IB2 decoder - frames decoded before an error in the same chunk are still returned', () => {
    const out: Ib2Frame[] = [];
    const chunk = Buffer.concat([encodeRequest(Buffer.from('a')), Buffer.from('garbage!')]);
    assert.equal(code(() => new Ib2FrameDecoder(limits).push(chunk, out)), 'IBP_ERR_PROTO_BAD_MAGIC');
    assert.equal(out.length, 1);
  });
});

describe('IB2 payload decoders', () => {
  function pre(flags: number, count: number, strs: Buffer[], extra = Buffer.alloc(0)): Buffer {
    return Buffer.concat([Buffer.from([flags, count]), ...strs, extra]);
  }
  function str(s: string | Buffer): Buffer {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
    const l = Buffer.alloc(2);
    l.writeUInt16BE(b.length);
    return Buffer.concat([l, b]);
  }

  it('PRE_REQUEST - wrong fields get the matching code', () => {
    const ok = [str('N'), str('app'), str('J')];
    assert.equal(decodePreRequest(pre(1, 4, ok)).trace, true);
    assert.equal(code(() => decodePreRequest(pre(4, 0, ok))), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(code(() => decodePreRequest(pre(0, 5, ok))), 'IBP_ERR_PROTO_TOO_MANY_FILES');
    assert.equal(code(() => decodePreRequest(pre(0, 0, ok, Buffer.from([0])))), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(code(() => decodePreRequest(pre(0, 0, [str('N'), str('')  , str('J')]))), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(code(() => decodePreRequest(pre(0, 0, [str('N'), str('app')]))), 'IBP_ERR_PROTO_TRUNCATED');
    assert.equal(code(() => decodePreRequest(pre(0, 0, [str('x'.repeat(65)), str('app'), str('J')]))), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => decodePreRequest(pre(0, 0, [str(Buffer.from([0xc3, 0x28])), str('app'), str('J')]))), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(decodePreRequest(pre(0, 0, [str('节点'), str('app'), str('J')])).clientNode, '节点');
  });

  it('PRE_REQUEST - the encoder refuses what the decoder would refuse', () => {
    const base = { clientNode: 'N', app: 'a', jnlsno: 'J', trace: false, fileCount: 0, pipelined: false };
    assert.equal(code(() => encodePreRequest({ ...base, app: 'x'.repeat(FIELD_MAX_BYTES.app + 1) })), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => encodePreRequest({ ...base, fileCount: 5 })), 'IBP_ERR_PROTO_TOO_MANY_FILES');
  });

  it('RESPONSE - an error response with files, a body past the limit and bad status are refused', () => {
    const r = encodeResponse({ load: { busy: 70000, total: -1 }, fileNames: [], body: Buffer.from('abc') }).subarray(8);
    const back = decodeResponse(r, 10);
    assert.deepEqual(back.load, { busy: 65535, total: 0 });
    assert.equal(code(() => decodeResponse(r, 2)), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    const bad = Buffer.from(r);
    bad[0] = 2;
    assert.equal(code(() => decodeResponse(bad, 10)), 'IBP_ERR_PROTO_BAD_FIELD');
    const withFile = Buffer.from(encodeResponse({ load: { busy: 0, total: 0 }, fileNames: ['f'], body: Buffer.alloc(0) }).subarray(8));
    withFile[0] = 1;
    assert.equal(code(() => decodeResponse(withFile, 10)), 'IBP_ERR_PROTO_BAD_FIELD');
  });

  it('error data - a long message is cut at a character boundary, oversize details are dropped', () => {
    const msg = '错'.repeat(2000); // 6000 bytes
    const back = decodeError(encodeError({ code: 'IBP_ERR_INTERNAL', message: msg, details: { big: 'x'.repeat(5000) } }).subarray(8));
    assert.ok(Buffer.byteLength(back.message) <= FIELD_MAX_BYTES.errorMessage);
    assert.ok(!back.message.includes('\uFFFD'));
    assert.equal(back.message, '错'.repeat(1365));
    assert.equal(back.details, undefined);
    assert.equal(truncateUtf8('abc', 2), 'ab');
  });

  it('error data - details that are not a JSON object are refused', () => {
    const e = Buffer.from(encodeError({ code: 'IBP_ERR_INTERNAL', message: 'm', details: { a: 1 } }).subarray(8));
    const at = e.indexOf(Buffer.from('{"a":1}'));
    e.write('[1,2,3]', at);
    assert.equal(code(() => decodeError(e)), 'IBP_ERR_PROTO_BAD_FIELD');
  });
});
