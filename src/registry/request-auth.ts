/**
 * Who a registry request comes from: an admin (bearer token from `keys/ibms.admin.token`) or a node
 * (RSA-SHA256 signature checked with `keys/NODE.pub`, time within 300 s). Public keys are cached and
 * re-read when their file changes, so `ibpgenrsakeys` on a running registry takes effect at once.
 */
import { statSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { nodeNameProblem } from '../core/config/fields.js';
import { IbpError } from '../core/errors.js';
import { toPublicKey, verifyNodeSignature } from './node-keys.js';
import { readAdminToken, tokenMatches } from './settings.js';
import { HEADER_NODE, HEADER_SIGN, HEADER_TIME, MAX_CLOCK_SKEW_MS } from './wire.js';

interface CachedKey {
  mtimeMs: number;
  size: number;
  key: KeyObject;
}

/** Options of `RequestAuth`. */
export interface RequestAuthOptions {
  /** The registry home's `keys/` directory (NODE.pub files). */
  keysDir: string;
  /** The admin token file. */
  tokenPath: string;
  now?: () => number;
}

/** Checks admin tokens and node signatures. */
export class RequestAuth {
  readonly #keysDir: string;
  readonly #tokenPath: string;
  readonly #now: () => number;
  readonly #keys = new Map<string, CachedKey>();
  #token: { mtimeMs: number; text: string } | undefined;

  constructor(opts: RequestAuthOptions) {
    this.#keysDir = opts.keysDir;
    this.#tokenPath = opts.tokenPath;
    this.#now = opts.now ?? Date.now;
  }

  /** Throws IBP_ERR_REGISTRY_AUTH unless the request carries `Authorization: Bearer <the admin token>`. */
  checkAdmin(req: IncomingMessage): void {
    const h = String(req.headers.authorization ?? '');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) throw new IbpError('IBP_ERR_REGISTRY_AUTH', 'admin call without "Authorization: Bearer <token>" (the token is in keys/ibms.admin.token of the registry home)');
    if (!tokenMatches(m[1]!, this.#adminToken())) throw new IbpError('IBP_ERR_REGISTRY_AUTH', 'wrong admin token (use keys/ibms.admin.token of the registry home)');
  }

  /**
   * The node a signed request comes from.
   * @throws IbpError IBP_ERR_REGISTRY_AUTH naming what is wrong (missing header, bad name, clock, no key, bad signature).
   */
  checkNode(req: IncomingMessage, method: string, pathWithQuery: string): string {
    const node = header(req, HEADER_NODE);
    const time = header(req, HEADER_TIME);
    const sign = header(req, HEADER_SIGN);
    if (node === '' || time === '' || sign === '') {
      throw new IbpError('IBP_ERR_REGISTRY_AUTH', 'node call without X-IBP-Node, X-IBP-Time and X-IBP-Sign headers');
    }
    const bad = nodeNameProblem(node);
    if (bad !== undefined || node.startsWith('.') || node.includes('/') || node.includes('\\')) {
      throw new IbpError('IBP_ERR_REGISTRY_AUTH', `X-IBP-Node ${JSON.stringify(node.slice(0, 64))} is not a node name${bad ? `: ${bad}` : ''}`);
    }
    const t = Number(time);
    if (!/^\d{1,16}$/.test(time) || !Number.isSafeInteger(t)) throw new IbpError('IBP_ERR_REGISTRY_AUTH', `X-IBP-Time ${JSON.stringify(time.slice(0, 32))} is not epoch milliseconds`);
    const skew = Math.abs(this.#now() - t);
    if (skew > MAX_CLOCK_SKEW_MS) {
      throw new IbpError('IBP_ERR_REGISTRY_AUTH', `node ${node}: request time is ${Math.round(skew / 1000)} s away from the registry's clock (300 s allowed): synchronise the clocks (NTP)`);
    }
    const key = this.#publicKey(node);
    if (!verifyNodeSignature(key, node, time, method, pathWithQuery, sign)) {
      throw new IbpError('IBP_ERR_REGISTRY_AUTH', `node ${node}: bad signature (keys/${node}.key on the node does not match keys/${node}.pub on the registry)`);
    }
    return node;
  }

  /** The public key of a node (cached), for encrypting the keys sent to it. @throws IbpError IBP_ERR_REGISTRY_AUTH. */
  publicKey(node: string): KeyObject {
    return this.#publicKey(node);
  }

  #publicKey(node: string): KeyObject {
    const path = join(this.#keysDir, `${node}.pub`);
    let st;
    try {
      st = statSync(path);
    } catch {
      this.#keys.delete(node);
      throw new IbpError('IBP_ERR_REGISTRY_AUTH', `no public key for node ${node}: run ibpgenrsakeys ${node} on the registry`);
    }
    const cached = this.#keys.get(node);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.key;
    let key: KeyObject;
    try {
      key = toPublicKey(readFileSync(path, 'utf8'), `keys/${node}.pub`);
    } catch (err) {
      throw err instanceof IbpError ? err : new IbpError('IBP_ERR_REGISTRY_AUTH', `cannot read keys/${node}.pub: ${(err as Error).message}`, { cause: err });
    }
    if (key.asymmetricKeyType !== 'rsa') throw new IbpError('IBP_ERR_REGISTRY_AUTH', `keys/${node}.pub is not an RSA key: run ibpgenrsakeys ${node} --force`);
    this.#keys.set(node, { mtimeMs: st.mtimeMs, size: st.size, key });
    return key;
  }

  #adminToken(): string {
    let mtimeMs = -1;
    try {
      mtimeMs = statSync(this.#tokenPath).mtimeMs;
    } catch {
      /* readAdminToken says why */
    }
    if (this.#token === undefined || this.#token.mtimeMs !== mtimeMs) this.#token = { mtimeMs, text: readAdminToken(this.#tokenPath) };
    return this.#token.text;
  }
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? '';
}
