/**
 * The incremental IB2 frame decoder: feed it socket chunks, get whole frames. It checks the magic byte by
 * byte, refuses an unknown type or a declared length past the limit as soon as the header is in (before
 * any payload is read), and holds at most the bytes of one incomplete frame. A frame that lies inside one
 * chunk is returned as a view of that chunk (no copy).
 */
import { IbpError } from '../core/errors.js';
import { FrameType, IB2_HEADER_BYTES, frameTypeName, maxPayloadBytes, type FrameTypeCode } from './ib2-frames.js';
import type { ProtocolLimits } from './types.js';

/** One whole frame: its type byte and its payload. */
export interface Ib2Frame {
  type: FrameTypeCode;
  payload: Buffer;
}

/** What a FrameReader needs from a decoder (IB2 and IB1 decoders both have this shape). */
export interface IncrementalDecoder<F> {
  /** Appends the frames completed by `chunk` to `out`; throws a coded IbpError on malformed input. */
  push(chunk: Buffer, out: F[]): void;
  /** True while bytes of an incomplete frame are held. */
  readonly partial: boolean;
}

const MAGIC = [0x49, 0x42, 0x32];
const EMPTY = Buffer.alloc(0);

export class Ib2FrameDecoder implements IncrementalDecoder<Ib2Frame> {
  #limits: ProtocolLimits;
  #header = Buffer.alloc(IB2_HEADER_BYTES);
  #headerBytes = 0;
  /** Payload being collected: type, declared length, parts so far. */
  #type: FrameTypeCode = FrameType.GOAWAY;
  #need = -1;
  #parts: Buffer[] = [];
  #have = 0;
  #failed: IbpError | undefined;

  constructor(limits: ProtocolLimits) {
    this.#limits = limits;
  }

  get partial(): boolean {
    return this.#headerBytes > 0 || this.#need >= 0;
  }

  push(chunk: Buffer, out: Ib2Frame[]): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk, out);
    } catch (err) {
      this.#failed = err as IbpError;
      throw err;
    }
  }

  #push(chunk: Buffer, out: Ib2Frame[]): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.#need < 0) {
        // Header. Fast path: a whole header inside the chunk.
        if (this.#headerBytes === 0 && len - off >= IB2_HEADER_BYTES) {
          this.#checkMagic(chunk, off, 3);
          off = this.#startPayload(chunk[off + 3]!, chunk.readUInt32BE(off + 4), off + IB2_HEADER_BYTES);
        } else {
          const take = Math.min(IB2_HEADER_BYTES - this.#headerBytes, len - off);
          chunk.copy(this.#header, this.#headerBytes, off, off + take);
          const before = this.#headerBytes;
          this.#headerBytes += take;
          off += take;
          if (before < 3) this.#checkMagic(this.#header, 0, Math.min(3, this.#headerBytes));
          if (this.#headerBytes === IB2_HEADER_BYTES) {
            this.#headerBytes = 0;
            this.#startPayload(this.#header[3]!, this.#header.readUInt32BE(4), off);
          }
        }
        if (this.#need === 0) {
          out.push({ type: this.#type, payload: EMPTY });
          this.#need = -1;
        }
        continue;
      }
      // Payload.
      const avail = len - off;
      if (this.#have === 0 && avail >= this.#need) {
        out.push({ type: this.#type, payload: chunk.subarray(off, off + this.#need) });
        off += this.#need;
        this.#need = -1;
        continue;
      }
      const take = Math.min(this.#need - this.#have, avail);
      this.#parts.push(chunk.subarray(off, off + take));
      this.#have += take;
      off += take;
      if (this.#have === this.#need) {
        const payload = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#need);
        out.push({ type: this.#type, payload });
        this.#parts = [];
        this.#have = 0;
        this.#need = -1;
      }
    }
  }

  #checkMagic(buf: Buffer, at: number, n: number): void {
    for (let i = 0; i < n; i++) {
      if (buf[at + i] !== MAGIC[i]) {
        const got = buf.subarray(at, at + n).toString('hex');
        throw new IbpError('IBP_ERR_PROTO_BAD_MAGIC', `IB2 frame does not start with 494232 (got ${got})`, {
          details: { got },
        });
      }
    }
  }

  /** Validates a header; returns `next` (the payload starts there). */
  #startPayload(type: number, length: number, next: number): number {
    const name = frameTypeName(type);
    if (name === undefined) {
      throw new IbpError('IBP_ERR_PROTO_BAD_FIELD', `IB2 frame type 0x${type.toString(16).padStart(2, '0')} is unknown`, {
        details: { field: 'type', type },
      });
    }
    const max = maxPayloadBytes(type, this.#limits);
    if (length > max) {
      throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `IB2 ${name} frame declares ${length} payload bytes, at most ${max} allowed`, {
        details: { frame: name, length, max },
      });
    }
    this.#type = type as FrameTypeCode;
    this.#need = length;
    return next;
  }
}
