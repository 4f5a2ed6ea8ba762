/**
 * The registry's configuration store (contract: .notes/registry-contract.md §1; files and recovery:
 * docs/registry-store.md). The daemon (src/registry) imports it from here.
 */
export { RegistryStore } from './registry-store.js';
export { storeRunPaths } from './store-recovery.js';
export {
  ADMIN_ACTIONS, CLUSTER_KINDS,
  type AdminAction, type AdminCommand, type AdminField, type ApplyResult, type BinCheck, type ClusterKind, type KeyState,
  type LoadSource, type PackageInfo, type PublishedView, type RegistryStoreOptions, type StoreLogger,
} from './types.js';
export { loadClusterFiles, loadClusterFilesNow, clusterConfPaths, binPathOf, type LoadedCluster, type LoadClusterOptions } from './cluster-files.js';
export { flagName } from './command-fields.js';
export { BinTable } from './bin-table.js';
