/**
 * The shared seeded mutator (test/helpers/mutator.ts, also behind `npm run bench:fuzz`): thousands of
 * mutated frames, cut into random chunks, through the decoders.
 * Nothing may throw but a coded IbpError, and no frame may come out larger than its type allows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IbpError, isErrorCode } from '../../../src/core/errors.js';
import { Ib1Decoder, encodeIb1Request, encodeIb1Response, type Ib1Request, type Ib1Response } from '../../../src/protocol/ib1-codec.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../../src/protocol/ib2-decoder.js';
import {
  FrameType, decodeError, decodeFileBegin, decodePreRequest, decodePreResponse, decodeResponse, encodeFileBegin,
  encodePreRequest, encodeRequest, encodeResponse, maxPayloadBytes,
} from '../../../src/protocol/ib2-frames.js';
import { sniffProtocol } from '../../../src/protocol/sniff.js';
import { DEFAULT_LIMITS, type ProtocolLimits } from '../../../src/protocol/types.js';
import { VECTORS, fromHex } from './vectors.js';
import { chunks, mutate, rng } from '../../helpers/mutator.js';

const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxBodyBytes: 4096, maxFramePayloadBytes: 8192 };

function onlyIbpError(fn: () => void, what: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IbpError, `${what}: threw ${String(err)}`);
    assert.ok(isErrorCode(err.code), `${what}: code ${err.code}`);
  }
}

function decodePayload(f: Ib2Frame): void {
  switch (f.type) {
    case FrameType.PRE_REQUEST: decodePreRequest(f.payload); break;
    case FrameType.PRE_RESPONSE: decodePreResponse(f.payload); break;
    case FrameType.FILE_BEGIN: decodeFileBegin(f.payload); break;
    case FrameType.RESPONSE: decodeResponse(f.payload, limits.maxBodyBytes); break;
    case FrameType.ERROR: decodeError(f.payload); break;
    default: break;
  }
}

describe('decoder fuzzing', () => {
  const ib2Seeds = [
    ...VECTORS.filter((v) => !v.kind.startsWith('ib1')).map((v) => fromHex(v.hex)),
    encodePreRequest({ clientNode: '节点', app: 'ibp_test_echo', jnlsno: '2024-0001', trace: true, fileCount: 4, pipelined: false }),
    encodeFileBegin({ index: 3, size: 2 ** 40, name: 'report_2024.pdf' }),
    encodeResponse({ load: { busy: 3, total: 8 }, fileNames: ['a_1234567890.tmp', 'b_1234567890.tmp', 'c', 'd'], body: Buffer.from('{"r":[1,2,3]}') }),
    encodeRequest(Buffer.alloc(300, 7)),
  ];

  it('IB2 fuzz - 5000 mutated frames in random chunks: only coded IbpErrors, frames within their limits', () => {
    const seed = 20240601;
    const r = rng(seed);
    let frames = 0;
    let errors = 0;
    for (let i = 0; i < 5000; i++) {
      const a = ib2Seeds[Math.floor(r() * ib2Seeds.length)]!;
      const b = ib2Seeds[Math.floor(r() * ib2Seeds.length)]!;
      const input = mutate(r, r() < 0.3 ? Buffer.concat([a, b]) : a, { corpus: ib2Seeds });
      const d = new Ib2FrameDecoder(limits);
      const out: Ib2Frame[] = [];
      onlyIbpError(() => {
        for (const c of chunks(r, input)) d.push(c, out);
      }, `seed ${seed} case ${i} (${input.toString('hex')})`);
      for (const f of out) {
        frames++;
        assert.ok(f.payload.length <= maxPayloadBytes(f.type, limits), `case ${i}: payload ${f.payload.length} for type ${f.type}`);
        try {
          decodePayload(f);
        } catch (err) {
          errors++;
          assert.ok(err instanceof IbpError, `case ${i}: payload decoder threw ${String(err)}`);
        }
      }
    }
    assert.ok(frames > 1000, `only ${frames} frames survived the mutations`);
    assert.ok(errors > 100, `only ${errors} payload errors: the mutator is too gentle`);
  });

  it('IB1 fuzz - 2000 mutated requests and responses: only coded IbpErrors', () => {
    const r = rng(7);
    const reqs = [encodeIb1Request('ibp_test_echo', Buffer.from('{"a":1}')), encodeIb1Request('x', Buffer.alloc(0))];
    const resps = [encodeIb1Response({ body: Buffer.from('ok') }), encodeIb1Response({ error: { code: 'IBP_ERR_SERVER_BUSY', message: 'b' }, body: Buffer.alloc(0) })];
    for (let i = 0; i < 2000; i++) {
      const isReq = i % 2 === 0;
      const pool = isReq ? reqs : resps;
      const input = mutate(r, pool[Math.floor(r() * pool.length)]!, { corpus: pool });
      const out: Array<Ib1Request | Ib1Response> = [];
      onlyIbpError(() => {
        const d = isReq ? new Ib1Decoder('request', 64) : new Ib1Decoder('response', 64);
        for (const c of chunks(r, input)) (d as Ib1Decoder<'request'>).push(c, out as Ib1Request[]);
      }, `IB1 case ${i}`);
      for (const m of out) assert.ok(m.body.length <= 64);
    }
  });

  it('sniffing fuzz - random first bytes never throw and give a known answer', () => {
    const r = rng(99);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(Array.from({ length: Math.floor(r() * 10) }, () => (r() < 0.5 ? 'IBPOSTGHE 12'.charCodeAt(Math.floor(r() * 12)) : Math.floor(r() * 256))));
      assert.ok(['IB1', 'IB2', 'HTTP', 'more', 'bad'].includes(sniffProtocol(b)));
    }
  });
});
