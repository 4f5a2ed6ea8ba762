/**
 * Node key pairs (`ibpgenrsakeys`): RSA 2048, the private key `keys/NODE.key` (PKCS#8 PEM, 0600) on the
 * node's host, the public key `keys/NODE.pub` (SPKI PEM) on the registry. A node signs its requests with
 * the private key (RSA-SHA256); the registry encrypts the communication keys it sends the node with the
 * public key (RSA-OAEP, SHA-256).
 */
import {
  constants, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, sign, verify,
  type KeyObject,
} from 'node:crypto';
import { IbpError } from '../core/errors.js';
import { HEADER_NODE, HEADER_SIGN, HEADER_TIME, signingText } from './wire.js';

/** RSA modulus length of the keys `ibpgenrsakeys` makes. */
export const NODE_KEY_BITS = 2048;

/** A node's key pair as PEM text. */
export interface NodeKeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

/** Makes a new RSA key pair (PKCS#8 private, SPKI public, PEM). */
export function generateNodeKeyPair(bits = NODE_KEY_BITS): NodeKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** A private key object from PEM text. @throws IbpError IBP_ERR_REGISTRY_AUTH when it is not a private key. */
export function toPrivateKey(key: string | KeyObject, what = 'node private key'): KeyObject {
  if (typeof key !== 'string') return key;
  try {
    return createPrivateKey(key);
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_AUTH', `${what} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
}

/** A public key object from PEM text. @throws IbpError IBP_ERR_REGISTRY_AUTH when it is not a public key. */
export function toPublicKey(key: string | KeyObject, what = 'node public key'): KeyObject {
  if (typeof key !== 'string') return key;
  try {
    return createPublicKey(key);
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_AUTH', `${what} is not a PEM public key: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The headers that authenticate a request as `node`: `X-IBP-Node`, `X-IBP-Time` (epoch ms) and
 * `X-IBP-Sign` (base64 RSA-SHA256 of `NODE\n<time>\n<METHOD>\n<path with query>`).
 * @example
 * const h = signNodeRequest('ECIF', readFileSync('keys/ECIF.key', 'utf8'), 'GET', '/v1/view?index=3&wait=30');
 */
export function signNodeRequest(
  node: string,
  privateKey: string | KeyObject,
  method: string,
  pathWithQuery: string,
  timeMs: number = Date.now(),
): Record<string, string> {
  const key = toPrivateKey(privateKey, `private key of node ${node}`);
  const time = String(Math.trunc(timeMs));
  const signature = sign('sha256', Buffer.from(signingText(node, time, method, pathWithQuery)), key);
  return { [HEADER_NODE]: node, [HEADER_TIME]: time, [HEADER_SIGN]: signature.toString('base64') };
}

/** True when `signatureB64` is `node`'s signature of the request (bad base64 or key type: false). */
export function verifyNodeSignature(
  publicKey: KeyObject,
  node: string,
  time: string,
  method: string,
  pathWithQuery: string,
  signatureB64: string,
): boolean {
  try {
    return verify('sha256', Buffer.from(signingText(node, time, method, pathWithQuery)), publicKey, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

/**
 * Encrypts a communication key for a node: base64 RSA-OAEP(SHA-256) under its public key; '' stays ''.
 * @throws IbpError IBP_ERR_REGISTRY_AUTH when the key is too long for the node's RSA key (190 bytes for 2048 bits).
 */
export function encryptForNode(publicKey: KeyObject, plain: string): string {
  if (plain === '') return '';
  try {
    return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(plain)).toString('base64');
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_AUTH', `cannot encrypt a ${Buffer.byteLength(plain)}-byte key with the node's public key: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decrypts what `encryptForNode` made with the node's private key; '' stays ''.
 * @throws IbpError IBP_ERR_REGISTRY_AUTH when it was not encrypted for this key.
 */
export function decryptForNode(privateKey: KeyObject, encB64: string): string {
  if (encB64 === '') return '';
  try {
    return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(encB64, 'base64')).toString();
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_AUTH', `cannot decrypt a key sent by the registry: it was encrypted for another key pair (re-copy keys/NODE.key, or run ibpgenrsakeys again)`, { cause: err });
  }
}
