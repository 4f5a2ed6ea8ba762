/**
 * The registry part (the original's ibms): the daemon (monitor + worker, HTTP API), its client, node key
 * pairs and the wire shapes. Other parts import only from here. See docs/registry.md.
 */
export { RegistryClient, decryptViewKeys, viewIndexOf, type RegistryClientOptions } from './client.js';
export {
  signNodeRequest, verifyNodeSignature, generateNodeKeyPair, encryptForNode, decryptForNode, toPrivateKey, toPublicKey,
  NODE_KEY_BITS, type NodeKeyPair,
} from './node-keys.js';
export * from './wire.js';
