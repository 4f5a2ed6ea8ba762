/**
 * Node keys for message security (docs/protocol.md §Security): a node's key in the replica (`keyExp`) is a
 * text; the 32-byte AES-256-GCM and HMAC-SHA256 keys are derived from it with HKDF-SHA256 (distinct info
 * labels), and its **key check value** (KCV) is the first 8 bytes of HMAC-SHA256(keyExp, "IBP-KCV").
 *
 * Key rotation follows the original's two windows (SPEC §3.3): an initiator seals with the old key until
 * `newKeyEnableAt`, then with the new one; a processor accepts the new key always and the old one until
 * `oldKeyDisableAt`. The KCV in every protected message tells the processor which key was used.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { IbpError } from '../../core/errors.js';

/** Bytes of a key check value on the wire. */
export const KCV_BYTES = 8;

/** HKDF-SHA256 salt and info labels (ASCII). */
export const HKDF_SALT = 'IBP2 security v1';
export const HKDF_INFO_ENC = 'IBP2 aes-256-gcm';
export const HKDF_INFO_MAC = 'IBP2 hmac-sha256';
/** The message HMAC'ed with the key text to make its check value. */
export const KCV_LABEL = 'IBP-KCV';

/** The key fields of a node record in the local config replica (`SnapshotNode` has this shape). */
export interface NodeKeys {
  /** The node's current key ('' when none). */
  readonly keyExp: string;
  /** The key being replaced during a rotation ('' or absent when none). */
  readonly oldKeyExp?: string;
  /** Epoch seconds from which initiators use `keyExp` (0 = no rotation pending). */
  readonly newKeyEnableAt: number;
  /** Epoch seconds after which `oldKeyExp` is no longer accepted (0 = none). */
  readonly oldKeyDisableAt: number;
}

/** The working keys derived from one key text. */
export class DerivedKey {
  /** The key check value: first 8 bytes of HMAC-SHA256(keyExp, "IBP-KCV"). */
  readonly kcv: Buffer;
  /** AES-256-GCM key (HKDF info "IBP2 aes-256-gcm"). */
  readonly encKey: KeyObject;
  /** HMAC-SHA256 key (HKDF info "IBP2 hmac-sha256"). */
  readonly macKey: KeyObject;
  /** The raw derived bytes, for test vectors. */
  readonly encBytes: Buffer;
  readonly macBytes: Buffer;

  constructor(keyExp: string) {
    const ikm = Buffer.from(keyExp, 'utf8');
    this.encBytes = Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, HKDF_INFO_ENC, 32));
    this.macBytes = Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, HKDF_INFO_MAC, 32));
    this.encKey = createSecretKey(this.encBytes);
    this.macKey = createSecretKey(this.macBytes);
    this.kcv = createHmac('sha256', ikm).update(KCV_LABEL, 'ascii').digest().subarray(0, KCV_BYTES);
  }

  /** True when `kcv` (8 bytes at `at` of `buf`) is this key's check value. */
  matches(buf: Buffer, at: number): boolean {
    return buf.compare(this.kcv, 0, KCV_BYTES, at, at + KCV_BYTES) === 0;
  }
}

/** Derived keys by key text: derivation costs two HKDF runs, a rotation brings one new key. */
const CACHE_MAX = 64;
const cache = new Map<string, DerivedKey>();

/** The derived keys of a key text (cached). @throws IbpError IBP_ERR_SEC_NO_KEY for ''. */
export function deriveKey(keyExp: string): DerivedKey {
  let k = cache.get(keyExp);
  if (k !== undefined) return k;
  if (keyExp.length === 0) throw new IbpError('IBP_ERR_SEC_NO_KEY', 'the node has no key (key_exp is empty)');
  k = new DerivedKey(keyExp);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(keyExp, k);
  return k;
}

/** Now, in epoch seconds (fractional): the unit of the rotation times. */
export function nowSec(): number {
  return Date.now() / 1000;
}

/**
 * The key text an initiator seals with at `now`: the old key while `now < newKeyEnableAt` (and the old key
 * is still accepted), else the current key. '' when the node has none.
 */
export function sendingKeyExp(k: NodeKeys, now: number): string {
  const old = k.oldKeyExp ?? '';
  if (old.length > 0 && now < k.newKeyEnableAt && now < k.oldKeyDisableAt) return old;
  return k.keyExp;
}

/**
 * The initiator's key at `now`.
 * @throws IbpError IBP_ERR_SEC_NO_KEY when the node has no key to seal with.
 */
export function sendingKey(k: NodeKeys | undefined, node: string, now: number): DerivedKey {
  const text = k === undefined ? '' : sendingKeyExp(k, now);
  if (text.length === 0) {
    throw new IbpError('IBP_ERR_SEC_NO_KEY', `signing or encryption was agreed but node ${node || '(unknown)'} has no key in the local config replica`, {
      details: { node },
    });
  }
  return deriveKey(text);
}

/**
 * The key a processor accepts for the check value at `kcvAt` of `buf`: the current key, or the old key while
 * `now < oldKeyDisableAt`; undefined when neither matches.
 */
export function acceptedKey(k: NodeKeys | undefined, buf: Buffer, kcvAt: number, now: number): DerivedKey | undefined {
  if (k === undefined) return undefined;
  if (k.keyExp.length > 0) {
    const cur = deriveKey(k.keyExp);
    if (cur.matches(buf, kcvAt)) return cur;
  }
  const old = k.oldKeyExp ?? '';
  if (old.length > 0 && now < k.oldKeyDisableAt) {
    const prev = deriveKey(old);
    if (prev.matches(buf, kcvAt)) return prev;
  }
  return undefined;
}
