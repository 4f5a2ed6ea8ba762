/**
 * The protection of one IB2 transaction, on either side: which frames are sealed, with which key, and the
 * numbering that binds each sealed frame to its place (connection nonce, transaction number, direction,
 * frame number). docs/protocol.md §Security has the rules; this is where both sides apply them.
 *
 * - REQUEST and the RESPONSE body are sealed whenever any flag was agreed (compression alone: a mode byte).
 * - FILE_BEGIN and FILE_DATA are sealed when signing or encryption was agreed (never compressed).
 * - The initiator picks its key by the rotation windows ({@link sendingKey}); the processor picks the key
 *   named by the first sealed frame's check value ({@link acceptedKey}) and answers with the same key; every
 *   later frame of the transaction must use it too.
 */
import { IbpError } from '../../core/errors.js';
import { FILE_DATA_MAX_BYTES, FrameType } from '../ib2-frames.js';
import type { SecurityFlags } from '../types.js';
import { KCV_BYTES, acceptedKey, nowSec, sendingKey, type DerivedKey, type NodeKeys } from './keys.js';
import { DIR_C2S, DIR_S2C, MODE_DEFLATE, MODE_ENCRYPT, MODE_KEYED, MODE_SIGN, open, seal, type AadFields } from './seal.js';

/** Largest FILE_BEGIN fields (index, size, name ≤ 255). */
const FILE_BEGIN_PLAIN_MAX = 1 + 8 + 2 + 255;
const EMPTY = Buffer.alloc(0);

/** The mode bits a set of flags agrees on. */
export function agreedMode(f: SecurityFlags): number {
  return (f.sign ? MODE_SIGN : 0) | (f.compress ? MODE_DEFLATE : 0) | (f.encrypt ? MODE_ENCRYPT : 0);
}

/** True when any protection was agreed. */
export function anySecurity(f: SecurityFlags | undefined): boolean {
  return f !== undefined && (f.sign || f.compress || f.encrypt);
}

/** True when the flags need a key and a connection nonce. */
export function keyedSecurity(f: SecurityFlags | undefined): boolean {
  return f !== undefined && (f.sign || f.encrypt);
}

export interface TxSecurityOptions {
  role: 'client' | 'server';
  flags: SecurityFlags;
  /** The connection nonce of PRE_RESPONSE (16 bytes; needed when signing or encryption was agreed). */
  nonce: Buffer | undefined;
  /** The transaction number on the connection. */
  seq: number;
  /** The server node's keys (client: to seal with; server: the keys it accepts). */
  keys: NodeKeys | undefined;
  /** The server node's name, for messages. */
  node: string;
  /** Server: the newest keys, asked once when a check value names no key in `keys` (see SecurityContext). */
  refreshKeys?: () => NodeKeys | undefined;
  /** Bodies of at least this many bytes are compressed when compression was agreed. */
  minCompressSize: number;
  maxBodyBytes: number;
  /** Epoch seconds (default now): picks the key by the rotation windows. */
  now?: number;
}

export class TxSecurity {
  readonly agreed: number;
  /** Files are sealed (signing or encryption agreed). */
  readonly protectsFiles: boolean;
  #o: TxSecurityOptions;
  #now: number;
  #key: DerivedKey | undefined;
  #out: number;
  #in: number;
  #outNo = 0;
  #inNo = 0;
  #resolve = (payload: Buffer, at: number): DerivedKey => this.#resolveKey(payload, at);

  /** @throws IbpError IBP_ERR_SEC_NO_KEY (client) when signing or encryption was agreed and the node has no key. */
  constructor(o: TxSecurityOptions) {
    this.#o = o;
    this.agreed = agreedMode(o.flags);
    this.protectsFiles = (this.agreed & MODE_KEYED) !== 0;
    this.#now = o.now ?? nowSec();
    this.#out = o.role === 'client' ? DIR_C2S : DIR_S2C;
    this.#in = o.role === 'client' ? DIR_S2C : DIR_C2S;
    if (this.protectsFiles) {
      if (o.nonce === undefined) throw new IbpError('IBP_ERR_SEC_MALFORMED', 'signing or encryption was agreed but PRE_RESPONSE carried no connection nonce');
      if (o.role === 'client') this.#key = sendingKey(o.keys, o.node, this.#now);
      else if (o.keys === undefined || o.keys.keyExp.length === 0) this.#key = sendingKey(undefined, o.node, this.#now);
    }
  }

  /** The key in use (client: chosen; server: named by the first sealed frame); for tests and logs. */
  get key(): DerivedKey | undefined {
    return this.#key;
  }

  sealRequest(body: Buffer, preRequestPayload: Buffer): Buffer {
    return this.#seal(body, FrameType.REQUEST, preRequestPayload, (this.agreed & MODE_DEFLATE) !== 0);
  }

  openRequest(payload: Buffer, preRequestPayload: Buffer): Buffer {
    return this.#open(payload, FrameType.REQUEST, 'REQUEST', preRequestPayload, this.#o.maxBodyBytes);
  }

  /**
   * Seals a RESPONSE body; `head` = the RESPONSE payload before the body (status, load, names, error). RESPONSE is
   * always the first frame from the server in a transaction (number 0), so sealing it again (another outcome)
   * is allowed; the response files that follow are numbered from 1.
   */
  sealResponse(body: Buffer, head: Buffer): Buffer {
    this.#outNo = 0;
    return this.#seal(body, FrameType.RESPONSE, head, (this.agreed & MODE_DEFLATE) !== 0);
  }

  openResponse(payload: Buffer, head: Buffer): Buffer {
    this.#inNo = 0;
    return this.#open(payload, FrameType.RESPONSE, 'RESPONSE', head, this.#o.maxBodyBytes);
  }

  sealFileBegin(fields: Buffer): Buffer {
    return this.#seal(fields, FrameType.FILE_BEGIN, EMPTY, false);
  }

  openFileBegin(payload: Buffer): Buffer {
    return this.#open(payload, FrameType.FILE_BEGIN, 'FILE_BEGIN', EMPTY, FILE_BEGIN_PLAIN_MAX);
  }

  sealFileData(chunk: Buffer): Buffer {
    return this.#seal(chunk, FrameType.FILE_DATA, EMPTY, false);
  }

  openFileData(payload: Buffer): Buffer {
    return this.#open(payload, FrameType.FILE_DATA, 'FILE_DATA', EMPTY, FILE_DATA_MAX_BYTES);
  }

  #aad(dir: number, type: number, frameNo: number, ctx: Buffer): AadFields {
    return { dir, type, nonce: this.#o.nonce ?? EMPTY, seq: this.#o.seq, frameNo, ctx };
  }

  #seal(data: Buffer, type: number, ctx: Buffer, compress: boolean): Buffer {
    const agreed = compress ? this.agreed : this.agreed & MODE_KEYED;
    if (this.#o.role === 'server' && this.#key === undefined && (agreed & MODE_KEYED) !== 0) {
      // A server seals only after it opened the client's first frame (which names the key).
      throw new IbpError('IBP_ERR_INTERNAL', 'the server seals before the client named a key');
    }
    return seal(data, {
      agreed, key: this.#key, minCompressSize: this.#o.minCompressSize, aad: this.#aad(this.#out, type, this.#outNo++, ctx),
    });
  }

  #open(payload: Buffer, type: number, what: string, ctx: Buffer, maxPlainBytes: number): Buffer {
    const agreed = type === FrameType.REQUEST || type === FrameType.RESPONSE ? this.agreed : this.agreed & MODE_KEYED;
    const r = open(payload, { agreed, resolveKey: this.#resolve, maxPlainBytes, aad: this.#aad(this.#in, type, this.#inNo++, ctx), what });
    return r.data;
  }

  #resolveKey(payload: Buffer, at: number): DerivedKey {
    const mine = this.#key;
    if (mine !== undefined) {
      if (mine.matches(payload, at)) return mine;
      throw unknownKey(this.#o.node, payload, at, this.#o.role === 'client'
        ? 'not the key this call was sealed with'
        : 'not the key the earlier frames of this transaction used');
    }
    let k = acceptedKey(this.#o.keys, payload, at, this.#now);
    if (k === undefined && this.#o.refreshKeys !== undefined) k = acceptedKey(this.#o.refreshKeys(), payload, at, this.#now);
    if (k === undefined) throw unknownKey(this.#o.node, payload, at, 'neither the current key nor an old key still accepted');
    this.#key = k;
    return k;
  }
}

function unknownKey(node: string, payload: Buffer, at: number, why: string): IbpError {
  const kcv = payload.subarray(at, at + KCV_BYTES).toString('hex');
  return new IbpError('IBP_ERR_SEC_UNKNOWN_KEY', `key check value ${kcv} names no key node ${node || '(this node)'} accepts: ${why}`, {
    details: { node, kcv },
  });
}
