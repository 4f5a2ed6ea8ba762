/**
 * Fuzz targets over the decoders that run without I/O: the IB2 frame decoder and every payload decoder, the
 * handshake (PRE_REQUEST / PRE_RESPONSE), RESPONSE and ERROR payloads, the IB1 codec and protocol sniffing.
 * A target throws a coded IbpError to reject an input, a FuzzViolation when an invariant breaks (a frame
 * past its limit, bytes lost or invented by a decoder, a value that does not survive encode → decode);
 * anything else it throws is a crash.
 */
import { isDeepStrictEqual } from 'node:util';
import { IbpError, isErrorCode, type IbpErrorData } from '../../src/core/errors.js';
import { Ib1Decoder, encodeIb1Request, type Ib1Request, type Ib1Response } from '../../src/protocol/ib1-codec.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../src/protocol/ib2-decoder.js';
import {
  FrameType, IB2_HEADER_BYTES, decodeError, decodeFileBegin, decodePreRequest, decodePreResponse, decodeResponse, encodeError,
  encodeFileBegin, encodePreRequest, encodePreResponse, encodeResponse, maxPayloadBytes, writeHeader, type FrameTypeCode,
} from '../../src/protocol/ib2-frames.js';
import { SNIFF_MAX_BYTES, sniffProtocol } from '../../src/protocol/sniff.js';
import { FUZZ_LIMITS, HANDSHAKE_PAYLOADS, IB1_MESSAGES, IB2_FRAMES, OTHER_PAYLOADS } from './fuzz-corpus.js';
import { chunks, mutate, type Rng } from './mutator.js';

/** A broken invariant: counted as a crash. */
export class FuzzViolation extends Error {
  override name = 'FuzzViolation';
}

/**
 * True for what the fuzz looks for: a broken invariant, anything thrown that is not an IbpError with a
 * registered code, or IBP_ERR_INTERNAL wrapping a programming error (TypeError, RangeError, ...). An
 * IBP_ERR_INTERNAL rebuilt from a peer's unknown error code (`details.code`) is the peer's, not a bug.
 */
export function isBug(err: unknown): boolean {
  if (err instanceof FuzzViolation) return true;
  if (err instanceof IbpError) {
    if (!isErrorCode(err.code)) return true;
    if (err.code !== 'IBP_ERR_INTERNAL') return false;
    if (typeof err.details?.code === 'string') return false;
    return err.cause === undefined || isBug(err.cause);
  }
  return err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError || !(err instanceof Error);
}

export interface FuzzTarget {
  readonly name: string;
  /** What it drives, one line. */
  readonly about: string;
  /** Async targets: inputs run this many at once (default 1). */
  readonly parallel?: number;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** One input, built from the PRNG alone, so that it replays from its seed. */
  input(r: Rng): Buffer;
  /** Feeds one input; returns, or throws a coded IbpError (rejected); anything else thrown is a crash. */
  run(input: Buffer, r: Rng): void | Promise<void>;
}

const int = (r: Rng, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rng, a: readonly T[]): T => a[int(r, a.length)]!;
/** 3 % of inputs go unmutated, so the accepting paths keep being run too. */
const maybeMutate = (r: Rng, seed: Buffer, corpus: readonly Buffer[]): Buffer => (r() < 0.03 ? seed : mutate(r, seed, { corpus }));

function frameBytes(f: Ib2Frame): Buffer {
  const h = Buffer.allocUnsafe(IB2_HEADER_BYTES);
  writeHeader(h, f.type as FrameTypeCode, f.payload.length);
  return Buffer.concat([h, f.payload]);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new FuzzViolation(what);
}

/** Encodes what a decoder accepted: an encoder refusing it is a broken invariant, not a rejection. */
function reencode<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new FuzzViolation(`${what}: the encoder refuses what the decoder accepted: ${String(err)}`);
  }
}

function decodePayload(f: Ib2Frame): void {
  switch (f.type) {
    case FrameType.PRE_REQUEST: decodePreRequest(f.payload); break;
    case FrameType.PRE_RESPONSE: decodePreResponse(f.payload); break;
    case FrameType.FILE_BEGIN: decodeFileBegin(f.payload); break;
    case FrameType.RESPONSE: decodeResponse(f.payload, FUZZ_LIMITS.maxBodyBytes); break;
    case FrameType.ERROR: decodeError(f.payload); break;
    case FrameType.GOAWAY: check(f.payload.length === 0, 'GOAWAY with a payload'); break;
    default: break;
  }
}

/** IB2 streams of 1-3 frames in random chunks: frames within limits, no byte lost or invented, payloads decode or reject. */
export const ib2StreamTarget: FuzzTarget = {
  name: 'ib2-frames',
  about: 'Ib2FrameDecoder over random chunks, then the payload decoder of each frame type',
  input(r) {
    const n = 1 + int(r, 3);
    return maybeMutate(r, Buffer.concat(Array.from({ length: n }, () => pick(r, IB2_FRAMES))), IB2_FRAMES);
  },
  run(input, r) {
    const d = new Ib2FrameDecoder(FUZZ_LIMITS);
    const out: Ib2Frame[] = [];
    let first: unknown;
    try {
      for (const c of chunks(r, input, 1 + int(r, 300))) d.push(c, out);
    } catch (e) {
      first = e;
    }
    for (const f of out) {
      check(f.payload.length <= maxPayloadBytes(f.type, FUZZ_LIMITS), `type ${f.type} payload ${f.payload.length} past its limit`);
      try {
        decodePayload(f);
      } catch (e) {
        if (!(e instanceof IbpError)) throw e;
        first ??= e;
      }
    }
    if (first === undefined && !d.partial) check(reencode('IB2 frames', () => Buffer.concat(out.map(frameBytes))).equals(input), 'the frames decoded are not the input');
    if (first !== undefined) throw first;
  },
};

const errorDataEqual = (a: IbpErrorData | undefined, b: IbpErrorData | undefined): boolean => {
  if (a === undefined || b === undefined) return a === b;
  if (a.code !== b.code || a.message !== b.message || (a.retryable === true) !== (b.retryable === true)) return false;
  if (a.details === undefined) return b.details === undefined;
  // Details travel as JSON text: re-encoding may reformat them, or drop them when the new text is too long.
  const text = JSON.stringify(a.details);
  if (Buffer.byteLength(text) > 4096) return b.details === undefined;
  return isDeepStrictEqual(JSON.parse(text), b.details);
};

/** Handshake payloads: PRE_REQUEST must re-encode byte for byte, PRE_RESPONSE to the same value. */
export const handshakeTarget: FuzzTarget = {
  name: 'handshake',
  about: 'PRE_REQUEST and PRE_RESPONSE payload decoders, with an encode round trip of what they accept',
  input(r) {
    const kind = int(r, 2);
    const pool = kind === 0 ? HANDSHAKE_PAYLOADS.preRequest : HANDSHAKE_PAYLOADS.preResponse;
    return Buffer.concat([Buffer.from([kind]), maybeMutate(r, pick(r, pool), pool)]);
  },
  run(input) {
    const p = input.subarray(1);
    if (input[0] === 0) {
      const d = decodePreRequest(p);
      check(reencode('PRE_REQUEST', () => encodePreRequest(d)).subarray(IB2_HEADER_BYTES).equals(p), 'PRE_REQUEST does not re-encode to its bytes');
    } else {
      const d = decodePreResponse(p);
      const again = decodePreResponse(reencode('PRE_RESPONSE', () => encodePreResponse(d)).subarray(IB2_HEADER_BYTES));
      check(isDeepStrictEqual(again.securityFlags, d.securityFlags) && errorDataEqual(d.refusal, again.refusal), 'PRE_RESPONSE changes in a round trip');
    }
  },
};

/** RESPONSE, ERROR and FILE_BEGIN payloads, with a round trip of what they accept. */
export const responseTarget: FuzzTarget = {
  name: 'response',
  about: 'RESPONSE, ERROR and FILE_BEGIN payload decoders, with an encode round trip',
  input(r) {
    const kind = int(r, 3);
    const pool = [OTHER_PAYLOADS.response, OTHER_PAYLOADS.error, OTHER_PAYLOADS.fileBegin][kind]!;
    return Buffer.concat([Buffer.from([kind]), maybeMutate(r, pick(r, pool), pool)]);
  },
  run(input) {
    const p = input.subarray(1);
    if (input[0] === 0) {
      const d = decodeResponse(p, FUZZ_LIMITS.maxBodyBytes);
      check(d.body.length <= FUZZ_LIMITS.maxBodyBytes, 'RESPONSE body past maxBodyBytes');
      const e = decodeResponse(reencode('RESPONSE', () => encodeResponse(d)).subarray(IB2_HEADER_BYTES), FUZZ_LIMITS.maxBodyBytes);
      check(isDeepStrictEqual([e.load, e.fileNames, e.body], [d.load, d.fileNames, d.body]) && errorDataEqual(d.error, e.error), 'RESPONSE changes in a round trip');
    } else if (input[0] === 1) {
      const d = decodeError(p);
      check(errorDataEqual(d, decodeError(reencode('ERROR', () => encodeError(d)).subarray(IB2_HEADER_BYTES))), 'ERROR changes in a round trip');
    } else {
      const d = decodeFileBegin(p);
      check(Number.isSafeInteger(d.size) && d.size >= 0, `FILE_BEGIN size ${d.size}`);
      check(reencode('FILE_BEGIN', () => encodeFileBegin(d)).subarray(IB2_HEADER_BYTES).equals(p), 'FILE_BEGIN does not re-encode to its bytes');
    }
  },
};

function ib1Bytes(m: Ib1Request | Ib1Response, mode: 'request' | 'response'): Buffer {
  if (mode === 'request') return encodeIb1Request((m as Ib1Request).app, m.body);
  const h = Buffer.from([0x49, 0x42, 0x31, (m as Ib1Response).error ? 1 : 0, 0, 0, 0, 0]);
  h.writeUInt32BE(m.body.length, 4);
  return Buffer.concat([h, m.body]);
}

/** IB1 requests and responses in random chunks: no byte lost or invented, bodies within the limit. */
export const ib1Target: FuzzTarget = {
  name: 'ib1',
  about: 'Ib1Decoder (request and response mode) over random chunks',
  input(r) {
    const kind = int(r, 2);
    const pool = kind === 0 ? IB1_MESSAGES.request : IB1_MESSAGES.response;
    return Buffer.concat([Buffer.from([kind]), maybeMutate(r, pick(r, pool), pool)]);
  },
  run(input, r) {
    const mode = input[0] === 0 ? 'request' : 'response';
    const bytes = input.subarray(1);
    const d = new Ib1Decoder(mode, FUZZ_LIMITS.maxBodyBytes);
    const out: Array<Ib1Request | Ib1Response> = [];
    let failed: unknown;
    try {
      for (const c of chunks(r, bytes, 1 + int(r, 100))) (d as Ib1Decoder<'request'>).push(c, out as Ib1Request[]);
    } catch (e) {
      failed = e;
    }
    for (const m of out) check(m.body.length <= FUZZ_LIMITS.maxBodyBytes, 'IB1 body past the limit');
    if (failed === undefined && !d.partial) check(reencode('IB1', () => Buffer.concat(out.map((m) => ib1Bytes(m, mode)))).equals(bytes), 'the IB1 messages decoded are not the input');
    if (failed !== undefined) throw failed;
  },
};

const SNIFF_ALPHABET = Buffer.from('IB12POSTGETPUHADLCN \r\n');

/** Sniffing: a known answer, and once decided it never changes as more bytes arrive. */
export const sniffTarget: FuzzTarget = {
  name: 'sniff',
  about: 'sniffProtocol on first bytes, checked for a stable decision as bytes are added',
  input(r) {
    return Buffer.from(Array.from({ length: int(r, 12) }, () => (r() < 0.7 ? pick(r, [...SNIFF_ALPHABET]) : int(r, 256))));
  },
  run(input, r) {
    let decided: string | undefined;
    for (let n = 0; n <= input.length; n++) {
      const got = sniffProtocol(input.subarray(0, n));
      check(['IB1', 'IB2', 'HTTP', 'more', 'bad'].includes(got), `unknown answer ${got}`);
      if (got === 'more') check(decided === undefined && n < SNIFF_MAX_BYTES, `'more' after ${n} bytes`);
      else if (decided === undefined) decided = got;
      else check(got === decided, `decision changed from ${decided} to ${got}`);
    }
    const extra = Buffer.concat([input, Buffer.from([int(r, 256)])]);
    if (decided !== undefined) check(sniffProtocol(extra) === decided, 'decision changed with one more byte');
  },
};

export const SYNC_TARGETS: FuzzTarget[] = [ib2StreamTarget, handshakeTarget, responseTarget, ib1Target, sniffTarget];
