/**
 * The agent part (the original's ibma): the local config replica and its read API, the shared load
 * table, the derivation of a node's view, and the agent daemon (sync loop, package replacement, key
 * decryption, snapshot pruning). Other parts import only from here.
 */
export { ConfigReplica, type ConfigReplicaOptions } from './config-replica.js';
export { ConfigSnapshot, hostKey } from './config-snapshot.js';
export {
  INDEX_FILE,
  REPLICA_FORMAT,
  snapshotFileName,
  type IbmsServerAddress,
  type SnapshotData,
  type SnapshotHost,
  type SnapshotNode,
  type SnapshotRecord,
} from './snapshot-format.js';
export { writeSnapshot, pruneSnapshots, readIndexVersion, readCurrentSnapshot } from './snapshot-store.js';
export { deriveNodeView, type NodeView } from './derive-view.js';
export { LoadTable, LOAD_TABLE_SLOTS, type HostLoad } from './load-table.js';
export {
  AgentDaemon,
  AGENT_HEARTBEAT_MS,
  AGENT_LONG_POLL_SEC,
  type AgentDaemonOptions,
  type AgentHeartbeat,
  type AgentReady,
  type AgentRegistryClient,
  type AgentState,
} from './agent-daemon.js';
export {
  runAgent,
  agentPidPath,
  livePid,
  AGENT_PID_FILE,
  type AgentClientOptions,
  type AgentStopKind,
  type RunAgentOptions,
  type RunningAgent,
} from './agent-run.js';
export {
  PackageSync,
  installPackage,
  checkPackageName,
  sha256Hex,
  updatePeriodFileName,
  UPDATE_PERIOD_SUFFIX,
  type PackageInfo,
  type PackageSyncResult,
} from './package-sync.js';
export { InstalledManifest, INSTALLED_MANIFEST_FILE } from './installed-manifest.js';
export { loadNodePrivateKey, decryptKeyExp, nodePrivateKeyFile, type NodePrivateKey } from './key-decrypt.js';
export { pruneUnusedSnapshots, AGENT_KEEP_SUPERSEDED, AGENT_SUPERSEDED_MIN_AGE_MS, type PruneUnusedOptions } from './snapshot-prune.js';
export { RetryBackoff, AGENT_RETRY_FIRST_MS, AGENT_RETRY_MAX_MS } from './retry-backoff.js';
export {
  parseRegistryView,
  viewToSnapshotData,
  sameSnapshotContent,
  type RegistryView,
  type RegistryViewNode,
  type SnapshotSettings,
} from './published-view.js';

/** The load table's file name inside the replica directory. */
export const LOAD_TABLE_FILE = 'load.table';
