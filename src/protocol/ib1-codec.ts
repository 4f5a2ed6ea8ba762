/**
 * IB1, the legacy format: no files, no security, many requests per connection.
 *   request  = 'I' 'B' '1', u8 app length, app (UTF-8), u32 BE body length, body
 *   response = 'I' 'B' '1', u8 status (0 ok, 1 error), u32 BE body length, body
 * On error the response body is the JSON of the error data ({code, message, ...}).
 */
import { isUtf8 } from 'node:buffer';
import { IbpError, type IbpErrorData } from '../core/errors.js';
import type { IncrementalDecoder } from './ib2-decoder.js';
import { FIELD_MAX_BYTES } from './ib2-frames.js';

export const IB1_MAGIC = Buffer.from([0x49, 0x42, 0x31]);

export interface Ib1Request {
  app: string;
  body: Buffer;
}

export interface Ib1Response {
  /** Set on status 1: the server's error, as data. */
  error?: IbpErrorData;
  body: Buffer;
}

export function encodeIb1Request(app: string, body: Buffer): Buffer {
  const appBytes = Buffer.byteLength(app);
  if (appBytes === 0 || appBytes > FIELD_MAX_BYTES.app) {
    throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', `IB1 app must be 1..${FIELD_MAX_BYTES.app} bytes, got ${appBytes}`);
  }
  const buf = Buffer.allocUnsafe(3 + 1 + appBytes + 4 + body.length);
  IB1_MAGIC.copy(buf, 0);
  buf[3] = appBytes;
  buf.write(app, 4, 'utf8');
  buf.writeUInt32BE(body.length, 4 + appBytes);
  body.copy(buf, 8 + appBytes);
  return buf;
}

/** An ok response (status 0) with `body`, or an error response (status 1) whose body is the error's JSON. */
export function encodeIb1Response(r: { error?: IbpErrorData; body: Buffer }): Buffer {
  const body = r.error === undefined ? r.body : Buffer.from(JSON.stringify(r.error));
  const buf = Buffer.allocUnsafe(8 + body.length);
  IB1_MAGIC.copy(buf, 0);
  buf[3] = r.error === undefined ? 0 : 1;
  buf.writeUInt32BE(body.length, 4);
  body.copy(buf, 8);
  return buf;
}

type Mode = 'request' | 'response';

/**
 * Incremental IB1 decoder for one direction. The head (magic, app or status, body length) is collected in
 * a small fixed buffer and checked field by field; the body is then collected like an IB2 payload.
 */
export class Ib1Decoder<M extends Mode> implements IncrementalDecoder<M extends 'request' ? Ib1Request : Ib1Response> {
  #mode: Mode;
  #maxBodyBytes: number;
  #head = Buffer.alloc(3 + 1 + FIELD_MAX_BYTES.app + 4);
  #headBytes = 0;
  /** Bytes the head needs in all (known once byte 3 is in). */
  #headNeed = 4;
  #app = '';
  #status = 0;
  #need = -1;
  #parts: Buffer[] = [];
  #have = 0;
  #failed: IbpError | undefined;

  constructor(mode: M, maxBodyBytes: number) {
    this.#mode = mode;
    this.#maxBodyBytes = maxBodyBytes;
  }

  get partial(): boolean {
    return this.#headBytes > 0 || this.#need >= 0;
  }

  push(chunk: Buffer, out: Array<M extends 'request' ? Ib1Request : Ib1Response>): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk, out as unknown as Array<Ib1Request | Ib1Response>);
    } catch (err) {
      this.#failed = err as IbpError;
      throw err;
    }
  }

  #push(chunk: Buffer, out: Array<Ib1Request | Ib1Response>): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#need < 0) {
        const take = Math.min(this.#headNeed - this.#headBytes, chunk.length - off);
        chunk.copy(this.#head, this.#headBytes, off, off + take);
        const before = this.#headBytes;
        this.#headBytes += take;
        off += take;
        if (before < 3) this.#checkMagic(Math.min(3, this.#headBytes));
        if (before < 4 && this.#headBytes >= 4) this.#onByte3();
        if (this.#headBytes === this.#headNeed) this.#onHead(out);
        continue;
      }
      const avail = chunk.length - off;
      if (this.#have === 0 && avail >= this.#need) {
        const n = this.#need;
        this.#emit(out, chunk.subarray(off, off + n));
        off += n;
        continue;
      }
      const take = Math.min(this.#need - this.#have, avail);
      this.#parts.push(chunk.subarray(off, off + take));
      this.#have += take;
      off += take;
      if (this.#have === this.#need) {
        this.#emit(out, this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#need));
        this.#parts = [];
        this.#have = 0;
      }
    }
  }

  #checkMagic(n: number): void {
    for (let i = 0; i < n; i++) {
      if (this.#head[i] !== IB1_MAGIC[i]) {
        const got = this.#head.subarray(0, n).toString('hex');
        throw new IbpError('IBP_ERR_PROTO_BAD_MAGIC', `IB1 ${this.#mode} does not start with 494231 (got ${got})`, {
          details: { got },
        });
      }
    }
  }

  #onByte3(): void {
    const b = this.#head[3]!;
    if (this.#mode === 'response') {
      if (b > 1) throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', `IB1 response status must be 0 or 1, got ${b}`);
      this.#status = b;
      this.#headNeed = 8;
    } else {
      if (b === 0) throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', 'IB1 request app is empty');
      if (b > FIELD_MAX_BYTES.app) {
        throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `IB1 request app is ${b} bytes, at most ${FIELD_MAX_BYTES.app} allowed`);
      }
      this.#headNeed = 4 + b + 4;
    }
  }

  #onHead(out: Array<Ib1Request | Ib1Response>): void {
    const h = this.#head;
    const n = this.#headNeed;
    if (this.#mode === 'request') {
      const app = h.subarray(4, n - 4);
      if (!isUtf8(app)) throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', 'IB1 request app is not valid UTF-8');
      this.#app = app.toString('utf8');
    }
    const bodyLen = h.readUInt32BE(n - 4);
    if (bodyLen > this.#maxBodyBytes) {
      throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `IB1 ${this.#mode} body declares ${bodyLen} bytes, at most ${this.#maxBodyBytes} allowed`, {
        details: { length: bodyLen, max: this.#maxBodyBytes },
      });
    }
    this.#headBytes = 0;
    this.#headNeed = 4;
    this.#need = bodyLen;
    if (bodyLen === 0) this.#emit(out, Buffer.alloc(0));
  }

  #emit(out: Array<Ib1Request | Ib1Response>, body: Buffer): void {
    this.#need = -1;
    if (this.#mode === 'request') {
      out.push({ app: this.#app, body });
      return;
    }
    if (this.#status === 0) {
      out.push({ body });
      return;
    }
    let error: IbpErrorData;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
      error = parsed as IbpErrorData;
    } catch {
      throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', 'IB1 error response body is not a JSON object');
    }
    out.push({ error, body });
  }
}
