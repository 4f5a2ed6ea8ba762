/**
 * Field-level reading and writing for the binary frames: big-endian integers and u16-length-prefixed
 * UTF-8 strings. Every read checks bounds and raises a coded IbpError naming the field; nothing here
 * allocates more than the field it returns.
 */
import { isUtf8 } from 'node:buffer';
import { IbpError } from '../core/errors.js';

/** 2^53: the largest file size that a JavaScript number holds exactly. */
const MAX_SAFE_HI = 0x1f_ffff;

/** Reads fields from one frame payload, front to back. */
export class WireReader {
  #buf: Buffer;
  #off: number;
  #end: number;
  #frame: string;

  /** @param frame the frame name used in error messages ("PRE_REQUEST"). */
  constructor(buf: Buffer, frame: string, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#off = start;
    this.#end = end;
    this.#frame = frame;
  }

  get remaining(): number {
    return this.#end - this.#off;
  }

  #need(n: number, field: string): void {
    if (this.#end - this.#off < n) {
      throw new IbpError('IBP_ERR_PROTO_TRUNCATED', `${this.#frame}.${field}: needs ${n} bytes, ${this.#end - this.#off} left`, {
        details: { frame: this.#frame, field },
      });
    }
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.#buf[this.#off++]!;
  }

  u16(field: string): number {
    this.#need(2, field);
    const v = this.#buf.readUInt16BE(this.#off);
    this.#off += 2;
    return v;
  }

  u32(field: string): number {
    this.#need(4, field);
    const v = this.#buf.readUInt32BE(this.#off);
    this.#off += 4;
    return v;
  }

  /** A u64 read as two u32 (no BigInt); values past 2^53 - 1 are refused. */
  u64(field: string): number {
    this.#need(8, field);
    const hi = this.#buf.readUInt32BE(this.#off);
    const lo = this.#buf.readUInt32BE(this.#off + 4);
    if (hi > MAX_SAFE_HI) throw badField(this.#frame, field, `u64 value past 2^53 (high word 0x${hi.toString(16)})`);
    this.#off += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  /** A u16-length-prefixed UTF-8 string of at most `maxBytes` bytes (checked before reading it). */
  str(field: string, maxBytes: number): string {
    const len = this.u16(field);
    if (len > maxBytes) {
      throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `${this.#frame}.${field}: ${len} bytes, at most ${maxBytes} allowed`, {
        details: { frame: this.#frame, field, length: len, max: maxBytes },
      });
    }
    this.#need(len, field);
    const start = this.#off;
    this.#off += len;
    if (len === 0) return '';
    const bytes = this.#buf.subarray(start, start + len);
    if (!isAscii(bytes) && !isUtf8(bytes)) throw badField(this.#frame, field, 'not valid UTF-8');
    return bytes.toString('utf8');
  }

  /** Exactly `n` bytes, as a view (no copy). */
  bytes(field: string, n: number): Buffer {
    this.#need(n, field);
    const b = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return b;
  }

  /** The rest of the payload, without copying. */
  rest(): Buffer {
    const b = this.#buf.subarray(this.#off, this.#end);
    this.#off = this.#end;
    return b;
  }

  /** Refuses bytes left over after the last field. */
  end(): void {
    if (this.#off !== this.#end) throw badField(this.#frame, 'end', `${this.#end - this.#off} unexpected trailing bytes`);
  }
}

function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return false;
  return true;
}

export function badField(frame: string, field: string, what: string): IbpError {
  return new IbpError('IBP_ERR_PROTO_BAD_FIELD', `${frame}.${field}: ${what}`, { details: { frame, field } });
}

/** Bytes a u16-prefixed string takes on the wire. */
export function strSize(s: string): number {
  return 2 + Buffer.byteLength(s, 'utf8');
}

/** Writes a u16-prefixed string at `off`; returns the offset after it. The caller checked the length. */
export function writeStr(buf: Buffer, off: number, s: string): number {
  const n = s.length === 0 ? 0 : buf.write(s, off + 2, 'utf8');
  buf.writeUInt16BE(n, off);
  return off + 2 + n;
}

/** Writes a u64 as two u32 (sizes up to 2^53 - 1). */
export function writeU64(buf: Buffer, off: number, v: number): number {
  buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), off);
  buf.writeUInt32BE(v >>> 0, off + 4);
  return off + 8;
}

/**
 * Checks a string a sender is about to put on the wire: at most `maxBytes` UTF-8 bytes; returns its byte
 * length. Used by encoders so that a frame we write is always one our own decoder accepts.
 */
export function checkStr(frame: string, field: string, s: string, maxBytes: number): number {
  if (typeof s !== 'string') throw badField(frame, field, `expected a string, got ${typeof s}`);
  const n = s.length === 0 ? 0 : Buffer.byteLength(s, 'utf8');
  if (n > maxBytes) {
    throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `${frame}.${field}: ${n} bytes, at most ${maxBytes} allowed`, {
      details: { frame, field, length: n, max: maxBytes },
    });
  }
  return n;
}
