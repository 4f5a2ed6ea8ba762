/**
 * One loaded, immutable config snapshot with O(1) lookups by node, host, app and KV key: the in-memory
 * form of the original's config shm (node hash, host ranges, app hash, KV hash).
 */
import type { AppConfig } from '../core/cluster-model.js';
import type { IbmsServerAddress, SnapshotHost, SnapshotNode, SnapshotRecord } from './snapshot-format.js';

/**
 * The key naming one host of one node in the replica and in the load table: `"<node>/<ip>:<port>"`,
 * with the absolute port.
 */
export function hostKey(node: string, ip: string, port: number): string {
  return `${node}/${ip}:${port < 0 ? -port : port}`;
}

/**
 * A frozen view of one snapshot. Everything it returns is frozen too; lookups are Map hits.
 * @example
 * const snap = replica.snapshot;
 * const app = snap.app('ibp_test_echo');
 * const server = snap.node(app?.serverNode ?? 'ECIF');
 * for (const h of server?.hosts ?? []) if (!h.invalid && !h.clientOnly) connect(h.ip, h.port);
 */
export class ConfigSnapshot {
  /** Monotonic version of this snapshot. */
  readonly version: number;
  /** When the snapshot was written, epoch milliseconds. */
  readonly createdAtMs: number;
  /** This node's name (`ibma.this_node`). */
  readonly thisNode: string;
  /** `ibac.retry_connect_timeval`, seconds. */
  readonly retryConnectTimevalSec: number;
  /** `ibac.connecting_timeout`, seconds. */
  readonly connectingTimeoutSec: number;
  /** `ibma.comm.min_compress_size`: compress bodies of at least this many bytes. */
  readonly minCompressSize: number;
  /** The registry address. */
  readonly ibmsServer: Readonly<IbmsServerAddress>;
  #nodes: Map<string, Readonly<SnapshotNode>>;
  #hosts: Map<string, Readonly<SnapshotHost>>;
  #apps: Map<string, Readonly<AppConfig>>;
  #served: ReadonlySet<string>;
  #servedList: readonly string[];
  #kv: Map<string, string>;
  #self: Readonly<SnapshotNode>;

  /** Builds the view from a checked record (see `readCurrentSnapshot`); the record is frozen in place. */
  constructor(record: SnapshotRecord) {
    deepFreeze(record);
    this.version = record.version;
    this.createdAtMs = record.createdAtMs;
    this.thisNode = record.thisNode;
    this.retryConnectTimevalSec = record.retryConnectTimevalSec;
    this.connectingTimeoutSec = record.connectingTimeoutSec;
    this.minCompressSize = record.minCompressSize;
    this.ibmsServer = record.ibmsServer;
    this.#nodes = new Map();
    this.#hosts = new Map();
    for (const node of record.nodes) {
      this.#nodes.set(node.name, node);
      for (const h of node.hosts) this.#hosts.set(hostKey(node.name, h.ip, h.port), h);
    }
    this.#apps = new Map(record.apps.map((a) => [a.app, a]));
    this.#servedList = record.servedApps;
    this.#served = new Set(record.servedApps);
    const self = this.#nodes.get(record.thisNode);
    if (!self) throw new Error(`snapshot ${record.version}: thisNode ${record.thisNode} missing (checked on decode)`);
    this.#self = self;
    this.#kv = new Map(Object.entries(self.kv));
    Object.freeze(this);
  }

  /** This node's own record. */
  thisNodeConfig(): Readonly<SnapshotNode> {
    return this.#self;
  }

  /** A node this node may see, or undefined. */
  node(name: string): Readonly<SnapshotNode> | undefined {
    return this.#nodes.get(name);
  }

  /** Every node in the replica, this node included. */
  nodes(): IterableIterator<Readonly<SnapshotNode>> {
    return this.#nodes.values();
  }

  /** Number of nodes, this node included (`IBMAGetNodeCount`). */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  /** One host of a node (the port may be given negative, as in the files), or undefined. */
  host(node: string, ip: string, port: number): Readonly<SnapshotHost> | undefined {
    return this.#hosts.get(hostKey(node, ip, port));
  }

  /** An app (transaction code) this node may call or serves, or undefined. */
  app(code: string): Readonly<AppConfig> | undefined {
    return this.#apps.get(code);
  }

  /** Every app in the replica. */
  apps(): IterableIterator<Readonly<AppConfig>> {
    return this.#apps.values();
  }

  /** Number of apps (`IBMAGetAppCount`). */
  get appCount(): number {
    return this.#apps.size;
  }

  /** True when this node is a server node of a project that lists `code`. */
  servesApp(code: string): boolean {
    return this.#served.has(code);
  }

  /** The apps this node serves. */
  servedApps(): readonly string[] {
    return this.#servedList;
  }

  /** A value of this node's KV config, or undefined. */
  kv(key: string): string | undefined {
    return this.#kv.get(key);
  }

  /** This node's KV entries. */
  kvs(): IterableIterator<[string, string]> {
    return this.#kv.entries();
  }
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}
