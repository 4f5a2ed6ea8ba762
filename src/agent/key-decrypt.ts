/**
 * Node keys on their way from the registry to the agent: the registry encrypts every communication key
 * (`key_exp`) of a view with the requesting node's RSA public key (RSA-OAEP, SHA-256, base64); the agent
 * decrypts them with the node's private key `keys/<NODE>.key` (PEM, PKCS#8, written by `ibpgenrsakeys`).
 * The same private key signs the agent's requests to the registry.
 */
import { constants, createPrivateKey, privateDecrypt, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbpError } from '../core/errors.js';

/** The file name of a node's private key inside `keys/`. */
export function nodePrivateKeyFile(node: string): string {
  return `${node}.key`;
}

/** A node's private key, as text (for signing requests) and as a key object (for decryption). */
export interface NodePrivateKey {
  path: string;
  pem: string;
  key: KeyObject;
}

/**
 * Reads `<keysDir>/<node>.key`. Throws IBP_ERR_AGENT_KEY naming the file when it is missing, unreadable,
 * or not an RSA private key in PEM.
 */
export function loadNodePrivateKey(keysDir: string, node: string): NodePrivateKey {
  const path = join(keysDir, nodePrivateKeyFile(node));
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new IbpError(
      'IBP_ERR_AGENT_KEY',
      missing
        ? `no private key ${path}: run \`ibpgenrsakeys ${node}\` on the registry and copy ${nodePrivateKeyFile(node)} to this host's keys/`
        : `cannot read the private key ${path}: ${(err as Error).message}`,
      { cause: err, details: { path } },
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new IbpError('IBP_ERR_AGENT_KEY', `${path} is not a private key in PEM: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new IbpError('IBP_ERR_AGENT_KEY', `${path} holds a ${key.asymmetricKeyType ?? 'non-RSA'} key, expected RSA`, { details: { path } });
  }
  return { path, pem, key };
}

/**
 * Decrypts one key the registry sent (`keyExpEnc` / `oldKeyExpEnc`): base64 of RSA-OAEP(SHA-256).
 * `''` stays `''` (no key). Throws IBP_ERR_AGENT_KEY when it cannot be decrypted with `key` (another
 * node's key pair, or the pair was regenerated on the registry and not copied here).
 * @param what names the field in the error, e.g. `node CORE keyExpEnc`.
 */
export function decryptKeyExp(key: KeyObject, enc: string, what = 'key'): string {
  if (enc === '') return '';
  const bytes = Buffer.from(enc, 'base64');
  if (bytes.length === 0 || bytes.toString('base64').replace(/=+$/, '') !== enc.replace(/=+$/, '')) {
    throw new IbpError('IBP_ERR_AGENT_KEY', `${what}: not base64`);
  }
  try {
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, bytes).toString('utf8');
  } catch (err) {
    throw new IbpError(
      'IBP_ERR_AGENT_KEY',
      `${what}: cannot decrypt with this node's private key (does keys/ hold the key pair the registry has?)`,
      { cause: err },
    );
  }
}
