/**
 * Encoding a published view for the node that asks for it (`GET /v1/view`): the view as JSON with every
 * node's `keyExp`/`oldKeyExp` replaced by `keyExpEnc`/`oldKeyExpEnc`, RSA-OAEP under the requester's public
 * key. Built from parts made once and reused:
 *
 * - the JSON of each app record and of each node entry (without its keys), kept per record object: views
 *   published together share those objects (and app records are shared with the cluster), and records are
 *   replaced whole, never edited, so an object's JSON never changes;
 * - the encryption of each key for each requesting node, kept across versions: keys rarely change, so a
 *   KV or app change re-encrypts nothing. A new public key for the node (another KeyObject) starts afresh.
 *
 * The bytes equal `JSON.stringify` of the wire view built field by field (same order), with the cached
 * encryptions in place of new ones (RSA-OAEP is randomised, so any valid encryption is as good).
 */
import type { KeyObject } from 'node:crypto';
import type { SnapshotNode } from '../agent/index.js';
import type { AppConfig } from '../core/cluster-model.js';
import { encryptForNode } from './node-keys.js';
import type { PublishedView } from './store/index.js';

/** Encryptions kept per requesting node before its cache is cleared (keys of peers, old and new). */
const MAX_KEYS_PER_NODE = 4096;


/** Encodes views for their requesters (one per worker). */
export class ViewEncoder {
  readonly #encrypt: (key: KeyObject, plain: string) => string;
  readonly #appJson = new WeakMap<AppConfig, string>();
  /** A node entry's JSON without its keys and without the closing brace. */
  readonly #nodeJson = new WeakMap<SnapshotNode, string>();
  readonly #keys = new Map<string, { key: KeyObject; enc: Map<string, string> }>();

  /** `encrypt` is for tests; the default is encryptForNode (RSA-OAEP SHA-256, base64, '' stays ''). */
  constructor(encrypt: (key: KeyObject, plain: string) => string = encryptForNode) {
    this.#encrypt = encrypt;
  }

  /**
   * The JSON bytes of `view` for `requester`, whose public key is `key`.
   * @throws IbpError IBP_ERR_REGISTRY_AUTH when a key does not fit the requester's RSA key.
   */
  encode(view: PublishedView, requester: string, key: KeyObject): Buffer {
    let out = '';
    let sep = '{';
    for (const [field, value] of Object.entries(view)) {
      if (value === undefined) continue;
      out += `${sep}${JSON.stringify(field)}:`;
      sep = ',';
      if (field === 'nodes') {
        const list = value as SnapshotNode[];
        const parts = new Array<string>(list.length);
        for (let i = 0; i < list.length; i++) parts[i] = this.#node(list[i]!, requester, key);
        out += `[${parts.join(',')}]`;
      } else if (field === 'apps') {
        const list = value as AppConfig[];
        const parts = new Array<string>(list.length);
        for (let i = 0; i < list.length; i++) {
          const a = list[i]!;
          let json = this.#appJson.get(a);
          if (json === undefined) this.#appJson.set(a, (json = JSON.stringify(a)));
          parts[i] = json;
        }
        out += `[${parts.join(',')}]`;
      } else {
        out += JSON.stringify(value);
      }
    }
    return utf8Bytes(sep === '{' ? '{}' : `${out}}`);
  }

  /** Drops the kept encryptions of a node (its public key file is gone). */
  forgetNode(node: string): void {
    this.#keys.delete(node);
  }

  #node(n: SnapshotNode, requester: string, key: KeyObject): string {
    let json = this.#nodeJson.get(n);
    if (json === undefined) {
      const { keyExp: _k, oldKeyExp: _o, ...rest } = n;
      const full = JSON.stringify(rest);
      json = full.length > 2 ? `${full.slice(0, -1)},` : '{';
      this.#nodeJson.set(n, json);
    }
    return `${json}"keyExpEnc":${JSON.stringify(this.#enc(requester, key, n.keyExp ?? ''))},"oldKeyExpEnc":${JSON.stringify(this.#enc(requester, key, n.oldKeyExp ?? ''))}}`;
  }

  #enc(requester: string, key: KeyObject, plain: string): string {
    if (plain === '') return '';
    let mine = this.#keys.get(requester);
    if (mine === undefined || mine.key !== key || mine.enc.size >= MAX_KEYS_PER_NODE) this.#keys.set(requester, (mine = { key, enc: new Map() }));
    let e = mine.enc.get(plain);
    if (e === undefined) mine.enc.set(plain, (e = this.#encrypt(key, plain)));
    return e;
  }
}

/** The UTF-8 bytes of `s`; an ASCII string (the usual view) is copied as Latin-1, the same bytes much faster. */
function utf8Bytes(s: string): Buffer {
  return Buffer.byteLength(s, 'utf8') === s.length ? Buffer.from(s, 'latin1') : Buffer.from(s, 'utf8');
}
