/**
 * ibcmd's framing (docs/rcmd.md, "Protocol"): an 8-byte header, a body, and after authentication a
 * 32-byte HMAC-SHA256 tag. This file only cuts bytes into frames and checks their shape; the MAC is
 * checked by `session-keys.ts`.
 *
 * ```
 * offset size
 * 0      2    magic 0x49 0x43 ("IC")
 * 2      1    type
 * 3      1    flags: bit 0 = a 32-byte MAC follows the body; other bits must be 0
 * 4      4    body length, unsigned big-endian, <= MAX_BODY
 * 8      n    body
 * 8+n    32   MAC (only with flag bit 0)
 * ```
 */
import { IbpError } from '../core/errors.js';

export const MAGIC_0 = 0x49;
export const MAGIC_1 = 0x43;
export const HEADER_SIZE = 8;
export const MAC_SIZE = 32;
export const FLAG_MAC = 0x01;
/** Largest body of any frame. */
export const MAX_BODY = 1024 * 1024;
/** File data is sent in DATA frames of at most this many bytes. */
export const DATA_CHUNK = 256 * 1024;
/** Largest JSON body (requests and answers are small; only DATA and OUTPUT carry bulk bytes). */
export const MAX_JSON_BODY = 64 * 1024;

/** The frame types; see docs/rcmd.md for who sends which and when. */
export const FrameType = {
  HELLO: 0x01,
  AUTH: 0x02,
  AUTH_OK: 0x03,
  EXEC: 0x10,
  OUTPUT: 0x11,
  EXIT: 0x12,
  PUT: 0x20,
  READY: 0x21,
  DATA: 0x22,
  END: 0x23,
  DONE: 0x24,
  GET: 0x30,
  META: 0x31,
  ERROR: 0x7f,
} as const;
export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeCode = (typeof FrameType)[FrameTypeName];

const NAMES = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

/** The name of a frame type code, or undefined for an unknown one. */
export function frameTypeName(type: number): FrameTypeName | undefined {
  return NAMES.get(type);
}

/** One frame as read from the wire. `header` is the raw 8 bytes (the MAC covers them). */
export interface RawFrame {
  type: FrameTypeCode;
  header: Buffer;
  body: Buffer;
  mac: Buffer | undefined;
}

/** The 8-byte header of a frame. */
export function encodeHeader(type: number, bodyLength: number, withMac: boolean): Buffer {
  if (bodyLength > MAX_BODY) throw new IbpError('IBP_ERR_RCMD_FRAME', `frame body of ${bodyLength} bytes is over ${MAX_BODY}`);
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  h[0] = MAGIC_0;
  h[1] = MAGIC_1;
  h[2] = type;
  h[3] = withMac ? FLAG_MAC : 0;
  h.writeUInt32BE(bodyLength, 4);
  return h;
}

function frameError(message: string): IbpError {
  return new IbpError('IBP_ERR_RCMD_FRAME', message);
}

/**
 * Cuts a byte stream into frames. `push` returns the frames completed by a chunk; a malformed header
 * throws IBP_ERR_RCMD_FRAME at once (before its body is buffered), and the decoder stays failed.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #failed: IbpError | undefined;

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): RawFrame[] {
    if (this.#failed) throw this.#failed;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out: RawFrame[] = [];
    try {
      for (;;) {
        const f = this.#takeOne();
        if (f === undefined) break;
        out.push(f);
      }
    } catch (err) {
      this.#failed = err as IbpError;
      throw err;
    }
    return out;
  }

  #takeOne(): RawFrame | undefined {
    if (this.#buffered < HEADER_SIZE) {
      // check the magic as soon as its bytes are here, so garbage fails fast
      if (this.#buffered > 0) this.#checkMagic(this.#peek(Math.min(2, this.#buffered)));
      return undefined;
    }
    const header = this.#peek(HEADER_SIZE);
    this.#checkMagic(header);
    const type = header[2]!;
    const flags = header[3]!;
    const length = header.readUInt32BE(4);
    if (frameTypeName(type) === undefined) throw frameError(`unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
    if ((flags & ~FLAG_MAC) !== 0) throw frameError(`reserved flag bits set (0x${flags.toString(16)})`);
    if (length > MAX_BODY) throw frameError(`frame body of ${length} bytes is over ${MAX_BODY}`);
    const total = HEADER_SIZE + length + ((flags & FLAG_MAC) !== 0 ? MAC_SIZE : 0);
    if (this.#buffered < total) return undefined;
    const all = this.#consume(total);
    return {
      type: type as FrameTypeCode,
      header: all.subarray(0, HEADER_SIZE),
      body: all.subarray(HEADER_SIZE, HEADER_SIZE + length),
      mac: (flags & FLAG_MAC) !== 0 ? all.subarray(HEADER_SIZE + length) : undefined,
    };
  }

  #checkMagic(b: Buffer): void {
    if (b[0] !== MAGIC_0 || (b.length > 1 && b[1] !== MAGIC_1)) {
      throw frameError(`bad magic 0x${b.toString('hex')} (expected 0x4943 "IC"): not an ibcmd peer`);
    }
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0]!.length >= n) return this.#chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined.subarray(0, n);
  }

  #consume(n: number): Buffer {
    const head = this.#peek(n);
    const first = this.#chunks[0]!;
    const rest = first.subarray(n);
    this.#chunks = rest.length > 0 ? [rest, ...this.#chunks.slice(1)] : this.#chunks.slice(1);
    this.#buffered -= n;
    return Buffer.from(head); // a copy: the frame outlives the chunk it came in
  }
}

/** Encodes a JSON body. */
export function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * Decodes a JSON object body.
 * @throws IbpError IBP_ERR_RCMD_FRAME when it is too large, not JSON, or not an object.
 */
export function parseJsonBody(body: Buffer, what: string): Record<string, unknown> {
  if (body.length > MAX_JSON_BODY) throw frameError(`${what} body of ${body.length} bytes is over ${MAX_JSON_BODY}`);
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw frameError(`${what} body is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw frameError(`${what} body is not a JSON object`);
  return v as Record<string, unknown>;
}
