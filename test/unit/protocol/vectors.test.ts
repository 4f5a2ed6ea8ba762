import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ib1Decoder, encodeIb1Request, encodeIb1Response, type Ib1Request, type Ib1Response } from '../../../src/protocol/ib1-codec.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../../src/protocol/ib2-decoder.js';
import {
  FrameType, decodeError, decodeFileBegin, decodePreRequest, decodePreResponse, decodeResponse, encodeError, encodeFileBegin,
  encodeFileData, encodeGoAway, encodePreRequest, encodePreResponse, encodeRequest, encodeResponse,
} from '../../../src/protocol/ib2-frames.js';
import { DEFAULT_LIMITS } from '../../../src/protocol/types.js';
import { VECTORS, fromHex, type Vector } from './vectors.js';

function encode(v: Vector): Buffer {
  switch (v.kind) {
    case 'pre-request': return encodePreRequest(v.value);
    case 'pre-response': return encodePreResponse(v.value);
    case 'file-begin': return encodeFileBegin(v.value);
    case 'file-data': return encodeFileData(v.value);
    case 'request': return encodeRequest(v.value);
    case 'response': return encodeResponse(v.value);
    case 'goaway': return encodeGoAway();
    case 'error': return encodeError(v.value);
    case 'ib1-request': return encodeIb1Request(v.value.app, v.value.body);
    case 'ib1-response': return encodeIb1Response(v.value);
  }
}

function decodeOne(v: Vector, bytes: Buffer): unknown {
  if (v.kind === 'ib1-request' || v.kind === 'ib1-response') {
    const out: Array<Ib1Request | Ib1Response> = [];
    const d = v.kind === 'ib1-request' ? new Ib1Decoder('request', 1 << 20) : new Ib1Decoder('response', 1 << 20);
    (d as Ib1Decoder<'request'>).push(bytes, out as Ib1Request[]);
    assert.equal(out.length, 1);
    assert.equal(d.partial, false);
    return out[0];
  }
  const frames: Ib2Frame[] = [];
  const d = new Ib2FrameDecoder(DEFAULT_LIMITS);
  d.push(bytes, frames);
  assert.equal(frames.length, 1);
  assert.equal(d.partial, false);
  const { type, payload } = frames[0]!;
  switch (v.kind) {
    case 'pre-request': assert.equal(type, FrameType.PRE_REQUEST); return decodePreRequest(payload);
    case 'pre-response': assert.equal(type, FrameType.PRE_RESPONSE); return decodePreResponse(payload);
    case 'file-begin': assert.equal(type, FrameType.FILE_BEGIN); return decodeFileBegin(payload);
    case 'file-data': assert.equal(type, FrameType.FILE_DATA); return Buffer.from(payload);
    case 'request': assert.equal(type, FrameType.REQUEST); return Buffer.from(payload);
    case 'response': {
      assert.equal(type, FrameType.RESPONSE);
      const r = decodeResponse(payload, DEFAULT_LIMITS.maxBodyBytes);
      return { ...r, body: Buffer.from(r.body) };
    }
    case 'goaway': assert.equal(type, FrameType.GOAWAY); assert.equal(payload.length, 0); return null;
    case 'error': assert.equal(type, FrameType.ERROR); return decodeError(payload);
  }
}

describe('protocol test vectors', () => {
  for (const v of VECTORS) {
    it(`vector ${v.name} - the encoder writes exactly the documented bytes`, () => {
      assert.equal(encode(v).toString('hex'), fromHex(v.hex).toString('hex'));
    });
    it(`vector ${v.name} - the decoder reads the documented bytes back to the same value`, () => {
      const got = decodeOne(v, fromHex(v.hex)) as Record<string, unknown> | null;
      if (v.kind === 'ib1-response' && v.value.error) {
        assert.deepEqual((got as unknown as Ib1Response).error, v.value.error);
      } else if (v.kind === 'ib1-response' || v.kind === 'ib1-request') {
        assert.deepEqual({ ...got, body: Buffer.from((got as { body: Buffer }).body) }, v.value);
      } else {
        assert.deepEqual(got, v.value);
      }
    });
  }

  it('docs/protocol.md shows every vector with the same bytes', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../../../docs/protocol.md', import.meta.url)), 'utf8');
    for (const v of VECTORS) {
      const m = new RegExp(`^${v.name}\\s+([0-9a-f ]+)$`, 'm').exec(doc);
      assert.ok(m, `docs/protocol.md has no vector line for ${v.name}`);
      assert.equal(m[1]!.trim(), v.hex, `docs/protocol.md vector ${v.name}`);
    }
  });
});
