/**
 * The shared-secret handshake and the per-frame MACs (docs/rcmd.md, "Authentication").
 *
 * - The agent sends a fresh 32-byte nonce Ns (HELLO); the client answers with its own nonce Nc and
 *   `HMAC(secret, "ibcmd/1 client" ‖ Ns ‖ Nc)` (AUTH); the agent answers `HMAC(secret, "ibcmd/1 server" ‖ Ns ‖ Nc)`
 *   (AUTH_OK), so each side knows the other holds the secret, and the secret never crosses the wire.
 * - Each direction then has its own key, `HMAC(secret, "ibcmd/1 c2s" ‖ Ns ‖ Nc)` and `"… s2c"`, and every frame
 *   carries `HMAC(key, seq ‖ header ‖ body)` with `seq` a 64-bit counter from 0 per direction. A frame from
 *   another connection (other nonces), replayed, dropped or reordered in this one fails its MAC.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { IbpError } from '../core/errors.js';
import { MAC_SIZE } from './wire.js';

export const NONCE_SIZE = 32;
/** The protocol name in HELLO; a different one is refused. */
export const PROTOCOL_ID = Buffer.from('IBCMD/1', 'ascii');

const LABEL_CLIENT = Buffer.from('ibcmd/1 client', 'ascii');
const LABEL_SERVER = Buffer.from('ibcmd/1 server', 'ascii');
const LABEL_C2S = Buffer.from('ibcmd/1 c2s', 'ascii');
const LABEL_S2C = Buffer.from('ibcmd/1 s2c', 'ascii');

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A fresh random nonce. */
export function newNonce(): Buffer {
  return randomBytes(NONCE_SIZE);
}

/** What the client proves in AUTH. */
export function clientProof(secret: Buffer, serverNonce: Buffer, clientNonce: Buffer): Buffer {
  return hmac(secret, LABEL_CLIENT, serverNonce, clientNonce);
}

/** What the agent proves in AUTH_OK. */
export function serverProof(secret: Buffer, serverNonce: Buffer, clientNonce: Buffer): Buffer {
  return hmac(secret, LABEL_SERVER, serverNonce, clientNonce);
}

/** Constant-time comparison of two MACs (false when lengths differ). */
export function sameMac(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Signs frames in one direction: `HMAC(key, seq ‖ header ‖ body)`, seq counting from 0. */
export class FrameSigner {
  readonly #key: Buffer;
  #seq = 0n;

  constructor(key: Buffer) {
    this.#key = key;
  }

  sign(header: Buffer, body: Buffer): Buffer {
    const seq = Buffer.allocUnsafe(8);
    seq.writeBigUInt64BE(this.#seq++);
    return hmac(this.#key, seq, header, body);
  }
}

/** Verifies frames in one direction, in order. */
export class FrameVerifier {
  readonly #signer: FrameSigner;

  constructor(key: Buffer) {
    this.#signer = new FrameSigner(key);
  }

  /** @throws IbpError IBP_ERR_RCMD_BAD_MAC when the MAC is missing or wrong (the sequence moves on either way). */
  verify(header: Buffer, body: Buffer, mac: Buffer | undefined): void {
    const expected = this.#signer.sign(header, body);
    if (mac === undefined || mac.length !== MAC_SIZE || !sameMac(mac, expected)) {
      throw new IbpError('IBP_ERR_RCMD_BAD_MAC', mac === undefined
        ? 'a frame without a MAC after authentication'
        : 'a frame MAC does not verify (tampered, replayed or out of order)');
    }
  }
}

/** The two directions' keys of one session. */
export interface SessionKeys {
  clientToServer: Buffer;
  serverToClient: Buffer;
}

/** Derives the session keys from the secret and both nonces. */
export function sessionKeys(secret: Buffer, serverNonce: Buffer, clientNonce: Buffer): SessionKeys {
  return {
    clientToServer: hmac(secret, LABEL_C2S, serverNonce, clientNonce),
    serverToClient: hmac(secret, LABEL_S2C, serverNonce, clientNonce),
  };
}
