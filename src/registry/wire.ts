/**
 * The registry's HTTP API as data: paths, header names, limits and the JSON shapes that cross the wire
 * (docs/registry.md, .notes/registry-contract.md §2). Shared by the server and `RegistryClient`; imports
 * nothing from the store, so a client builds without it.
 */
import type { AppConfig } from '../core/cluster-model.js';
import type { SnapshotNode } from '../agent/index.js';

/** Every path of the API starts with this. */
export const API_PREFIX = '/v1';

/** Node authentication headers (lower case, as node:http gives them). */
export const HEADER_NODE = 'x-ibp-node';
export const HEADER_TIME = 'x-ibp-time';
export const HEADER_SIGN = 'x-ibp-sign';
/** The published version of a view reply. */
export const HEADER_INDEX = 'x-ibp-index';
/** The sha256 (hex) of a package reply's bytes (before any transfer compression). */
export const HEADER_SHA256 = 'x-ibp-sha256';
/** Optional: the caller's pid, shown by `-s sessions`. */
export const HEADER_PID = 'x-ibp-pid';
/**
 * Optional: the caller's compression threshold in bytes (an agent sends its `ibma.comm.min_compress_size`).
 * The registry gzips a reply body of at least this many bytes for that request (when `Accept-Encoding`
 * names gzip); without the header it uses {@link DEFAULT_MIN_COMPRESS_SIZE}.
 */
export const HEADER_MIN_COMPRESS_SIZE = 'x-ibp-min-compress-size';
/** The largest value `X-IBP-Min-Compress-Size` takes (2^31 - 1). */
export const MAX_MIN_COMPRESS_SIZE = 2 ** 31 - 1;

/** How far a signed request's time may be from the registry's clock, ms. */
export const MAX_CLOCK_SKEW_MS = 300_000;
/** The longest a view long-poll is held, and the hold when `wait` is absent (seconds). */
export const MAX_VIEW_WAIT_SEC = 60;
export const DEFAULT_VIEW_WAIT_SEC = 30;
/**
 * Replies of at least this many bytes are gzip'd (when the caller accepts gzip) for a caller that does not
 * state its own threshold with `X-IBP-Min-Compress-Size` (the admin CLI, curl).
 */
export const DEFAULT_MIN_COMPRESS_SIZE = 1024;
/** Heartbeat period of agents and platforms (ms); a session is live for 3 periods. */
export const HEARTBEAT_PERIOD_MS = 5_000;

/** Node roles a heartbeat may declare. */
export type PeerRole = 'ibma' | 'ibas';

/** Body of `POST /v1/heartbeat`. */
export interface HeartbeatBody {
  role: PeerRole;
  host: { ip: string; port: number };
  pid: number;
  viewVersion?: number;
  load?: { busy: number; total: number };
  stats?: { tps?: number; txCount?: number };
}

/** One package of a view: `so/<bin>` of an app the node serves. */
export interface WirePackage {
  app: string;
  bin: string;
  sha256: string;
  size: number;
}

/**
 * One node of a view as it crosses the wire: the keys are replaced by their RSA-OAEP(SHA-256) encryption
 * under the requesting node's public key, base64 ('' when the node has no such key).
 */
export interface WireNode extends Omit<SnapshotNode, 'keyExp' | 'oldKeyExp'> {
  keyExpEnc: string;
  oldKeyExpEnc: string;
}

/** The reply of `GET /v1/view`: the node's published view with encrypted keys. */
export interface WireView {
  node: string;
  version: number;
  nodes: WireNode[];
  apps: AppConfig[];
  servedApps: string[];
  kv: Record<string, string>;
  packages: WirePackage[];
}

/** A view with its keys decrypted (`decryptViewKeys`): the nodes carry `keyExp`/`oldKeyExp` again. */
export interface PlainView extends Omit<WireView, 'nodes'> {
  nodes: SnapshotNode[];
}

/** The `-a` actions that change the cluster (`POST /v1/admin/apply`; the store's `AdminAction`). */
export const ADMIN_ACTIONS = [
  'add_node', 'set_node', 'remove_node', 'add_node_host', 'remove_node_host',
  'add_app', 'set_app', 'update_app', 'remove_app',
  'add_project', 'set_project', 'remove_project',
  'add_node_kv', 'set_node_kv', 'remove_node_kv',
] as const;
export type AdminActionName = (typeof ADMIN_ACTIONS)[number];

/** The fields of an admin command (CLI flags without "--", '-' → '_'); all strings, checked by the store. */
export const ADMIN_COMMAND_FIELDS = [
  'node', 'invalid', 'key_exp', 'ip', 'port', 'app', 'desc', 'bin', 'timeout', 'timeout2', 'server_node',
  'project', 'server_nodes', 'client_nodes', 'apps', 'key', 'value',
] as const;
export type AdminCommandField = (typeof ADMIN_COMMAND_FIELDS)[number];

/** Body of `POST /v1/admin/apply` (the store's `AdminCommand`). */
export type AdminCommandBody = { action: AdminActionName } & { [K in AdminCommandField]?: string };

/** The `-s` shows of the admin API (`GET /v1/admin/<show>`). */
export const ADMIN_SHOWS = ['nodes', 'apps', 'projects', 'nodes_kv', 'sessions', 'nodes_changed'] as const;
export type AdminShow = (typeof ADMIN_SHOWS)[number];

/** One row of `-s sessions`. */
export interface SessionRow {
  role: 'ibma' | 'ibas' | 'view' | 'admin';
  node: string;
  /** `ip:port` the peer declared (heartbeat), else the address it came from. */
  host: string;
  remote: string;
  pid: number;
  sinceMs: number;
  lastSeenMs: number;
  viewVersion?: number;
  load?: { busy: number; total: number };
  stats?: { tps?: number; txCount?: number };
}

/** The text a node signs: `NODE\n<time ms>\n<METHOD>\n<path with query>`. */
export function signingText(node: string, timeMs: string | number, method: string, pathWithQuery: string): string {
  return `${node}\n${timeMs}\n${method.toUpperCase()}\n${pathWithQuery}`;
}
