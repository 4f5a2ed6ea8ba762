/**
 * The sealed message (docs/protocol.md §Security): how one protected payload is laid out, and the two
 * functions that make and open one. A sealed payload is
 *
 *   mode u8 | kcv 8 (sign or encrypt) | iv 12 (encrypt) | data | tag 16 (sign or encrypt)
 *
 * `mode` bit 0 sign (HMAC-SHA256, first 16 bytes), bit 1 deflated (raw deflate), bit 2 encrypt
 * (AES-256-GCM; its tag is the signature, so sign+encrypt uses no separate HMAC). The MAC or the GCM
 * additional data covers the {@link AadFields}: direction, frame type, mode, kcv, the connection nonce, the
 * transaction number on the connection, the frame's number within the transaction, and a context (the
 * PRE_REQUEST payload for REQUEST, the RESPONSE head for RESPONSE). A message replayed from another
 * connection or another place in this one, cut short, or changed in any byte fails to open.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { IbpError } from '../../core/errors.js';
import { KCV_BYTES, type DerivedKey } from './keys.js';

export const MODE_SIGN = 0x01;
export const MODE_DEFLATE = 0x02;
export const MODE_ENCRYPT = 0x04;
/** Bits of `mode` that need a key. */
export const MODE_KEYED = MODE_SIGN | MODE_ENCRYPT;

export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 16;
/** The most bytes sealing adds to a message (mode, kcv, iv, tag). */
export const SEAL_OVERHEAD_MAX = 1 + KCV_BYTES + IV_BYTES + TAG_BYTES;
/** First bytes of every AAD (ASCII). */
export const AAD_LABEL = Buffer.from('IBP2SEC1', 'ascii');
const AAD_FIXED_BYTES = 8 + 1 + 1 + 1 + KCV_BYTES + NONCE_BYTES + 4 + 4 + 4;

/** Which way a message goes (the AAD's direction byte). */
export const DIR_C2S = 1;
export const DIR_S2C = 2;

/** What a message's MAC or GCM tag binds besides its data. */
export interface AadFields {
  /** DIR_C2S or DIR_S2C. */
  dir: number;
  /** The IB2 frame type byte. */
  type: number;
  /** The connection nonce from PRE_RESPONSE (16 bytes). */
  nonce: Buffer;
  /** The transaction number on the connection (PRE_REQUESTs before this one). */
  seq: number;
  /** Protected frames before this one in this direction within the transaction. */
  frameNo: number;
  /** REQUEST: the PRE_REQUEST payload; RESPONSE: the RESPONSE head; otherwise empty. */
  ctx: Buffer;
}

/** The AAD bytes: label, dir, type, mode, kcv, nonce, seq u32, frameNo u32, ctx length u32, ctx. */
export function aadBytes(f: AadFields, mode: number, kcv: Buffer): Buffer {
  const b = Buffer.allocUnsafe(AAD_FIXED_BYTES + f.ctx.length);
  AAD_LABEL.copy(b, 0);
  b[8] = f.dir;
  b[9] = f.type;
  b[10] = mode;
  kcv.copy(b, 11, 0, KCV_BYTES);
  if (f.nonce.length !== NONCE_BYTES) throw new IbpError('IBP_ERR_INTERNAL', `connection nonce must be ${NONCE_BYTES} bytes, got ${f.nonce.length}`);
  f.nonce.copy(b, 19);
  b.writeUInt32BE(f.seq >>> 0, 35);
  b.writeUInt32BE(f.frameNo >>> 0, 39);
  b.writeUInt32BE(f.ctx.length, 43);
  f.ctx.copy(b, AAD_FIXED_BYTES);
  return b;
}

// GCM IVs: a random 96-bit base per process, the low 64 bits XORed with a counter, so no IV repeats in a
// process and processes collide only by chance on 96 random bits. The IV travels in the message.
const IV_BASE = randomBytes(IV_BYTES);
let ivCounter = 0;

function writeIv(out: Buffer, at: number): void {
  ivCounter++;
  IV_BASE.copy(out, at);
  out.writeUInt32BE((IV_BASE.readUInt32BE(4) ^ Math.floor(ivCounter / 0x1_0000_0000)) >>> 0, at + 4);
  out.writeUInt32BE((IV_BASE.readUInt32BE(8) ^ ivCounter) >>> 0, at + 8);
}

/** Level 1 (Z_BEST_SPEED): messages are small and latency counts; any level inflates the same. */
const DEFLATE_OPTIONS = { level: 1 } as const;

export interface SealOptions {
  /** The agreed protection: MODE_SIGN, MODE_ENCRYPT, and MODE_DEFLATE when compression was agreed. */
  agreed: number;
  /** The key (needed when sign or encrypt was agreed). */
  key: DerivedKey | undefined;
  /** Data of at least this many bytes is deflated when compression was agreed (kept only if smaller). */
  minCompressSize: number;
  aad: AadFields;
  /** A fixed IV, for test vectors only. */
  iv?: Buffer;
}

/** Seals `data` as the agreed protection says. */
export function seal(data: Buffer, o: SealOptions): Buffer {
  let mode = o.agreed & MODE_KEYED;
  if ((o.agreed & MODE_DEFLATE) !== 0 && data.length >= o.minCompressSize && data.length > 0) {
    const d = deflateRawSync(data, DEFLATE_OPTIONS);
    if (d.length < data.length) {
      data = d;
      mode |= MODE_DEFLATE;
    }
  }
  if ((mode & MODE_KEYED) === 0) {
    const out = Buffer.allocUnsafe(1 + data.length);
    out[0] = mode;
    data.copy(out, 1);
    return out;
  }
  const key = o.key;
  if (key === undefined) throw new IbpError('IBP_ERR_SEC_NO_KEY', 'signing or encryption was agreed but there is no key');
  const aad = aadBytes(o.aad, mode, key.kcv);
  if ((mode & MODE_ENCRYPT) !== 0) {
    const out = Buffer.allocUnsafe(1 + KCV_BYTES + IV_BYTES + data.length + TAG_BYTES);
    out[0] = mode;
    key.kcv.copy(out, 1);
    const ivAt = 1 + KCV_BYTES;
    if (o.iv) o.iv.copy(out, ivAt, 0, IV_BYTES);
    else writeIv(out, ivAt);
    const c = createCipheriv('aes-256-gcm', key.encKey, out.subarray(ivAt, ivAt + IV_BYTES), { authTagLength: TAG_BYTES });
    c.setAAD(aad);
    const at = ivAt + IV_BYTES;
    const ct = c.update(data);
    ct.copy(out, at);
    const fin = c.final();
    if (fin.length > 0) fin.copy(out, at + ct.length);
    c.getAuthTag().copy(out, out.length - TAG_BYTES);
    return out;
  }
  const out = Buffer.allocUnsafe(1 + KCV_BYTES + data.length + TAG_BYTES);
  out[0] = mode;
  key.kcv.copy(out, 1);
  data.copy(out, 1 + KCV_BYTES);
  createHmac('sha256', key.macKey).update(aad).update(data).digest().copy(out, out.length - TAG_BYTES, 0, TAG_BYTES);
  return out;
}

export interface OpenOptions {
  agreed: number;
  /** The key for the check value at `kcvAt` of `payload`. @throws IbpError IBP_ERR_SEC_UNKNOWN_KEY */
  resolveKey(payload: Buffer, kcvAt: number): DerivedKey;
  /** Largest plain (inflated) data. */
  maxPlainBytes: number;
  aad: AadFields;
  /** The frame name for messages ("REQUEST"). */
  what: string;
}

/** An opened message: its plain data and the key it was sealed with. */
export interface Opened {
  data: Buffer;
  key: DerivedKey | undefined;
}

/**
 * Opens a sealed payload.
 * @throws IbpError IBP_ERR_SEC_MALFORMED, IBP_ERR_SEC_FLAGS_MISMATCH, IBP_ERR_SEC_UNKNOWN_KEY, IBP_ERR_SEC_BAD_MAC,
 *   IBP_ERR_PROTO_FRAME_TOO_LARGE (inflates past `maxPlainBytes`).
 */
export function open(payload: Buffer, o: OpenOptions): Opened {
  if (payload.length < 1) throw secError('IBP_ERR_SEC_MALFORMED', o.what, 'empty sealed payload (no mode byte)');
  const mode = payload[0]!;
  if ((mode & ~(MODE_KEYED | MODE_DEFLATE)) !== 0) throw secError('IBP_ERR_SEC_MALFORMED', o.what, `unknown mode bits 0x${mode.toString(16)}`);
  if ((mode & MODE_KEYED) !== (o.agreed & MODE_KEYED) || ((mode & MODE_DEFLATE) !== 0 && (o.agreed & MODE_DEFLATE) === 0)) {
    throw new IbpError('IBP_ERR_SEC_FLAGS_MISMATCH', `${o.what}: protected with mode 0x${mode.toString(16)}, the handshake agreed 0x${o.agreed.toString(16)}`, {
      details: { frame: o.what, mode, agreed: o.agreed },
    });
  }
  let data: Buffer;
  let key: DerivedKey | undefined;
  if ((mode & MODE_KEYED) === 0) {
    data = payload.subarray(1);
  } else {
    const enc = (mode & MODE_ENCRYPT) !== 0;
    const head = 1 + KCV_BYTES + (enc ? IV_BYTES : 0);
    if (payload.length < head + TAG_BYTES) {
      throw secError('IBP_ERR_SEC_MALFORMED', o.what, `${payload.length} bytes, a sealed message has at least ${head + TAG_BYTES}`);
    }
    key = o.resolveKey(payload, 1);
    const aad = aadBytes(o.aad, mode, key.kcv);
    const body = payload.subarray(head, payload.length - TAG_BYTES);
    const tag = payload.subarray(payload.length - TAG_BYTES);
    if (enc) {
      const d = createDecipheriv('aes-256-gcm', key.encKey, payload.subarray(1 + KCV_BYTES, head), { authTagLength: TAG_BYTES });
      d.setAAD(aad);
      d.setAuthTag(tag);
      const plain = d.update(body);
      try {
        const fin = d.final();
        data = fin.length === 0 ? plain : Buffer.concat([plain, fin]);
      } catch (err) {
        throw badMac(o.what, err);
      }
    } else {
      const mac = createHmac('sha256', key.macKey).update(aad).update(body).digest();
      if (!timingSafeEqual(mac.subarray(0, TAG_BYTES), tag)) throw badMac(o.what, undefined);
      data = body;
    }
  }
  if ((mode & MODE_DEFLATE) !== 0) data = inflate(data, o);
  if (data.length > o.maxPlainBytes) {
    throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `${o.what}: ${data.length} plain bytes, at most ${o.maxPlainBytes} allowed`);
  }
  return { data, key };
}

function inflate(data: Buffer, o: OpenOptions): Buffer {
  try {
    return inflateRawSync(data, { maxOutputLength: Math.max(1, o.maxPlainBytes) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new IbpError('IBP_ERR_PROTO_FRAME_TOO_LARGE', `${o.what}: the compressed body inflates past ${o.maxPlainBytes} bytes`, { cause: err });
    }
    throw secError('IBP_ERR_SEC_MALFORMED', o.what, `the compressed body does not inflate: ${(err as Error).message}`, err);
  }
}

function badMac(what: string, cause: unknown): IbpError {
  return new IbpError('IBP_ERR_SEC_BAD_MAC', `${what}: the signature does not verify (tampered, truncated, replayed or from another connection)`, {
    cause, details: { frame: what },
  });
}

function secError(code: 'IBP_ERR_SEC_MALFORMED', what: string, msg: string, cause?: unknown): IbpError {
  return new IbpError(code, `${what}: ${msg}`, { cause, details: { frame: what } });
}
