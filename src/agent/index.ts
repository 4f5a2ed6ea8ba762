/**
 * The agent part (the original's ibma): the local config replica and its read API, the shared load
 * table, and the derivation of a node's view. Other parts import only from here.
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

/** The load table's file name inside the replica directory. */
export const LOAD_TABLE_FILE = 'load.table';
