/**
 * The shapes of the registry's configuration store (contract: .notes/registry-contract.md §1): admin
 * commands as the CLI gives them, apply results, published views and the store's options.
 */
import type { SnapshotNode } from '../../agent/index.js';
import type { AppConfig } from '../../core/cluster-model.js';
import type { IbmsConfig } from '../../core/config/index.js';
import type { IbpHome } from '../../core/home.js';

/** Every admin action `apply` takes (the `ibms -a` commands that edit the cluster). */
export const ADMIN_ACTIONS = [
  'add_node', 'set_node', 'remove_node', 'add_node_host', 'remove_node_host',
  'add_app', 'set_app', 'update_app', 'remove_app',
  'add_project', 'set_project', 'remove_project',
  'add_node_kv', 'set_node_kv', 'remove_node_kv',
] as const;

/** One admin action (an `ibms -a` command that edits the cluster). */
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/**
 * The CLI flags of SPEC §2.2, named as on the command line without "--" and with '-' → '_'. All strings:
 * the store parses and validates numbers and flags and names the bad field in its error.
 */
export interface AdminCommand {
  action: AdminAction;
  node?: string;
  invalid?: string;
  key_exp?: string;
  ip?: string;
  /** A negative port registers a client-only host. */
  port?: string;
  app?: string;
  desc?: string;
  bin?: string;
  timeout?: string;
  timeout2?: string;
  server_node?: string;
  project?: string;
  /** Space- (or comma-) separated node names. */
  server_nodes?: string;
  client_nodes?: string;
  /** Space-separated app codes. */
  apps?: string;
  key?: string;
  value?: string;
}

/** The field names an AdminCommand may carry besides `action`. */
export type AdminField = Exclude<keyof AdminCommand, 'action'>;

/** What `apply` did: the nodes whose view the change touched (now pending) and the journal record's number. */
export interface ApplyResult {
  changedNodes: string[];
  seq: number;
}

/** One app package of a published view: `so/<bin>` of an app the node serves. */
export interface PackageInfo {
  app: string;
  bin: string;
  /** sha256 of the file's bytes, lower-case hex. */
  sha256: string;
  size: number;
}

/** One node's view as the registry publishes it (wire form, JSON-safe). */
export interface PublishedView {
  node: string;
  /** Global, strictly increasing across all publishes (and restarts). */
  version: number;
  /** This node first, then the server nodes it may call; key fields filled from the store's key state. */
  nodes: SnapshotNode[];
  apps: AppConfig[];
  servedApps: string[];
  /** This node's KV (also in nodes[0].kv). */
  kv: Record<string, string>;
  /** The packages of `servedApps` whose file exists in the registry's so/. */
  packages: PackageInfo[];
}

/** Where a log line of the store goes (a pino logger fits). */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** How a `.bin` image is checked against its `.conf` before it is used. */
export type BinCheck = 'stat' | 'sha256';

export interface RegistryStoreOptions {
  /** The registry's home. */
  home: IbpHome;
  /** The loaded ibms.conf (file names, key rotation delays). */
  conf: IbmsConfig;
  /** Epoch ms, for key rotation times (tests). Default Date.now. */
  now?: () => number;
  /** Warnings (stale `.bin`, dropped views) and notices. Default: none. */
  logger?: StoreLogger;
  /**
   * `'stat'` (default): a `.bin` whose recorded size/inode/mtime/ctime of its `.conf` still hold is used
   * without reading the `.conf`; otherwise the `.conf` is hashed. `'sha256'`: always hash the `.conf`.
   */
  binCheck?: BinCheck;
  /** Rotate the journal into a checkpoint once it grows past this many bytes. Default 64 MiB. */
  journalMaxBytes?: number;
}

/** A node's key rotation state (epoch seconds; 0 = none). */
export interface KeyState {
  oldKeyExp: string;
  newKeyEnableAt: number;
  oldKeyDisableAt: number;
}

/** Which of the three cluster files. */
export type ClusterKind = 'nodes' | 'apps' | 'projects';
export const CLUSTER_KINDS: readonly ClusterKind[] = ['nodes', 'apps', 'projects'];

/** Where each cluster file was loaded from at start. */
export type LoadSource = 'bin' | 'conf';
