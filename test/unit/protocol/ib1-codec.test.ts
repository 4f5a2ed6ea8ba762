import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbpError } from '../../../src/core/errors.js';
import { Ib1Decoder, encodeIb1Request, encodeIb1Response, type Ib1Request, type Ib1Response } from '../../../src/protocol/ib1-codec.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IbpError);
    return err.code;
  }
  assert.fail('expected a throw');
}

describe('IB1 codec', () => {
  it('IB1 decoder - many requests split at every byte give the same requests', () => {
    const stream = Buffer.concat([
      encodeIb1Request('a', Buffer.from('one')),
      encodeIb1Request('ibp_test_echo', Buffer.alloc(0)),
      encodeIb1Request('应用', Buffer.from('three')),
    ]);
    const d = new Ib1Decoder('request', 100);
    const out: Ib1Request[] = [];
    for (let i = 0; i < stream.length; i++) d.push(stream.subarray(i, i + 1), out);
    assert.deepEqual(out.map((r) => [r.app, r.body.toString()]), [['a', 'one'], ['ibp_test_echo', ''], ['应用', 'three']]);
    assert.equal(d.partial, false);
  });

  it('IB1 decoder - refuses an empty or long app, a body past the limit (from the head alone), bad magic', () => {
    assert.equal(code(() => new Ib1Decoder('request', 100).push(Buffer.from('IB1\x00'), [])), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(code(() => new Ib1Decoder('request', 100).push(Buffer.from([0x49, 0x42, 0x31, 65]), [])), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => new Ib1Decoder('request', 100).push(Buffer.from('IB1\x01a\x00\x00\x00\x65'), [])), 'IBP_ERR_PROTO_FRAME_TOO_LARGE');
    assert.equal(code(() => new Ib1Decoder('request', 100).push(Buffer.from('IB2'), [])), 'IBP_ERR_PROTO_BAD_MAGIC');
    assert.equal(code(() => new Ib1Decoder('request', 100).push(Buffer.from([0x49, 0x42, 0x31, 2, 0xc3, 0x28, 0, 0, 0, 0]), [])), 'IBP_ERR_PROTO_BAD_FIELD');
    assert.equal(code(() => new Ib1Decoder('response', 100).push(Buffer.from('IB1\x02'), [])), 'IBP_ERR_PROTO_BAD_FIELD');
  });

  it('IB1 response - an error response carries the error data as JSON', () => {
    const wire = encodeIb1Response({ error: { code: 'IBP_ERR_SERVER_BUSY', message: 'busy' }, body: Buffer.from('ignored') });
    const out: Ib1Response[] = [];
    new Ib1Decoder('response', 1000).push(wire, out);
    assert.deepEqual(out[0]!.error, { code: 'IBP_ERR_SERVER_BUSY', message: 'busy' });
    assert.equal(code(() => encodeIb1Request('', Buffer.alloc(0))), 'IBP_ERR_PROTO_BAD_FIELD');
  });
});
