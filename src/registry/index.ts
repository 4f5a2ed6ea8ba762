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
export {
  resolveRegistrySettings, runningPid, readRunningAddress, ensureAdminToken, readAdminToken, ADMIN_TOKEN_FILE, PID_FILE, ADDR_FILE,
  type RegistrySettings,
} from './settings.js';
// The daemon: nothing here loads the store at import time (the worker process does), so a client-only user
// of this index (an agent) does not pull the registry's store in.
export { runRegistryMonitor, type RunningRegistry } from './monitor-run.js';
export { RegistryMonitor, type MonitorState } from './registry-monitor.js';
