/**
 * A seeded random mutator: thousands of mutated frames, cut into random chunks, through the decoders.
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

/** mulberry32: a tiny seeded PRNG, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxBodyBytes: 4096, maxFramePayloadBytes: 8192 };

function mutate(r: () => number, input: Buffer): Buffer {
  const int = (n: number): number => Math.floor(r() * n);
  let b = Buffer.from(input);
  const rounds = 1 + int(3);
  for (let k = 0; k < rounds; k++) {
    switch (int(7)) {
      case 0: if (b.length) b[int(b.length)]! ^= 1 << int(8); break;
      case 1: if (b.length) b[int(b.length)] = int(256); break;
      case 2: b = b.subarray(0, int(b.length + 1)); break;
      case 3: { const at = int(b.length + 1); b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]); break; }
      case 4: if (b.length >= 8) b.writeUInt32BE([0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff, int(0x10000)][int(7)]!, 4); break;
      case 5: { const at = int(b.length + 1); b = Buffer.concat([b, b.subarray(at)]); break; }
      case 6: if (b.length > 8) b[8 + int(Math.min(6, b.length - 8))] = [0, 1, 2, 3, 4, 5, 0x41, 0xff][int(8)]!; break;
    }
  }
  return b;
}

function chunks(r: () => number, b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < b.length) {
    const n = 1 + Math.floor(r() * Math.min(64, b.length - at));
    out.push(b.subarray(at, at + n));
    at += n;
  }
  return out;
}

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
      const input = mutate(r, r() < 0.3 ? Buffer.concat([a, b]) : a);
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
      const input = mutate(r, pool[Math.floor(r() * pool.length)]!);
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
