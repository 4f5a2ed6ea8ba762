/**
 * The registry's configuration store: the cluster in memory, every admin change journaled before it is
 * acknowledged, pending nodes, published views and versions that survive restarts, `.conf` saving and
 * `.bin` building. docs/registry-store.md describes the files and the recovery rules.
 */
import type { ClusterConfig } from '../../core/cluster-model.js';
import { IbpError } from '../../core/errors.js';
import { planChange } from './change-plan.js';
import { parseClusterConfFiles, readConfBytes, saveClusterFiles, setIdOf, sha256Hex, statKey, writeBinImage } from './cluster-files.js';
import type { ClusterState } from './cluster-state.js';
import { deriveView } from './derive.js';
import type { JournalWriter } from './journal.js';
import { PackageCache } from './packages.js';
import { writeCheckpoint } from './run-files.js';
import { applyOps, type JournalRecord, type RunState, type StoreOp } from './store-ops.js';
import { recoverStore, type Recovered, type storeRunPaths } from './store-recovery.js';
import {
  CLUSTER_KINDS, type AdminCommand, type ApplyResult, type ClusterKind, type KeyState, type LoadSource, type PackageInfo,
  type PublishedView, type RegistryStoreOptions, type StoreLogger,
} from './types.js';
import type { ViewShelf } from './view-shelf.js';

const DEFAULT_JOURNAL_MAX_BYTES = 64 * 1024 * 1024;

export class RegistryStore {
  readonly #paths: Record<ClusterKind, string>;
  readonly #files: ReturnType<typeof storeRunPaths>;
  readonly #now: () => number;
  readonly #log: StoreLogger | undefined;
  readonly #newKeyEnableElapseSec: number;
  readonly #oldKeyDisableElapseSec: number;
  readonly #journalMaxBytes: number;
  readonly #state: ClusterState;
  readonly #run: RunState;
  readonly #shelf: ViewShelf;
  readonly #packages: PackageCache;
  readonly #loadedFrom: Record<ClusterKind, LoadSource>;
  #journal: JournalWriter;
  #seq: number;
  /** Cluster records changed since the `.conf` files were saved (`n:`/`a:`/`p:` + name). */
  #unsaved: Set<string>;
  /** sha256 of the `.conf` bytes the unchanged records came from. */
  #confSha: Record<ClusterKind, string>;
  #closed = false;

  private constructor(init: Recovered & { opts: RegistryStoreOptions }) {
    const { opts } = init;
    this.#paths = init.paths;
    this.#files = init.files;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger;
    this.#newKeyEnableElapseSec = opts.conf.ibms.security.new_key_enable_elapse;
    this.#oldKeyDisableElapseSec = opts.conf.ibms.security.old_key_disable_elapse;
    this.#journalMaxBytes = opts.journalMaxBytes ?? DEFAULT_JOURNAL_MAX_BYTES;
    this.#state = init.state;
    this.#run = init.run;
    this.#shelf = init.shelf;
    this.#packages = new PackageCache(opts.home.so);
    this.#journal = init.journal;
    this.#seq = init.seq;
    this.#unsaved = init.unsaved;
    this.#confSha = init.confSha;
    this.#loadedFrom = init.loadedFrom;
  }

  /**
   * Loads the cluster (each `.conf.bin` when it matches its `.conf`, else the `.conf`), then the checkpoint
   * and the journal in `run/ibms/`, then the published views. Nodes never published are pending.
   * @throws IbpError IBP_ERR_CONFIG_* naming the `.conf`, IBP_ERR_REGISTRY_JOURNAL naming a corrupt file,
   *   IBP_ERR_REGISTRY_INVALID when the replayed journal leaves the cluster inconsistent.
   * @example const store = RegistryStore.open({ home, conf: loadIbmsConf(join(home.etc, 'ibms.conf')) });
   */
  static open(opts: RegistryStoreOptions): RegistryStore {
    const t0 = performance.now();
    const r = recoverStore(opts);
    const store = new RegistryStore({ opts, ...r });
    opts.logger?.info({ loadedFrom: r.loadedFrom, replayed: r.replayed, seq: r.seq, version: r.run.version, pending: r.run.pending.size, ms: Math.round(performance.now() - t0) }, 'registry store open');
    store.#maybeCheckpoint();
    if (r.refusedBins.length > 0) store.#rebuildImages(r.refusedBins);
    return store;
  }

  /** Rebuilds the images found unusable at open (from the `.conf` files); a failure is only logged. */
  #rebuildImages(kinds: ClusterKind[]): void {
    try {
      const files = this.buildConfig();
      this.#log?.info({ refused: kinds, files }, `rebuilt the .bin images of ${kinds.join(', ')} from the .conf files`);
    } catch (err) {
      this.#log?.warn({ refused: kinds, code: (err as IbpError).code, err: (err as Error).message }, `could not rebuild the .bin images: ${(err as Error).message}`);
    }
  }

  /** The cluster now (shared, read-only records; the arrays are rebuilt after a change). */
  get cluster(): Readonly<ClusterConfig> {
    return this.#state.toCluster();
  }

  /** Where each cluster file came from at open. */
  get loadedFrom(): Readonly<Record<ClusterKind, LoadSource>> {
    return this.#loadedFrom;
  }

  /** The last journal sequence number written (or recovered). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** The last published version (0 = none yet). */
  get version(): number {
    return this.#run.version;
  }

  /** How many node/app/project records changed since the `.conf` files were last saved. */
  get unsavedChanges(): number {
    return this.#unsaved.size;
  }

  /** A node's key rotation state, if a rotation was started. */
  keyState(node: string): Readonly<KeyState> | undefined {
    return this.#run.keys.get(node);
  }

  /**
   * Checks, journals (append + fdatasync) BEFORE returning, applies, and marks the affected nodes pending.
   * @throws IbpError IBP_ERR_REGISTRY_BAD_ARG / _NOT_FOUND / _EXISTS / _INVALID (nothing applied),
   *   IBP_ERR_REGISTRY_JOURNAL (could not be made durable: nothing applied).
   * @example store.apply({ action: 'add_node_host', node: 'CORE', ip: '10.0.0.1', port: '-18001' })
   */
  apply(cmd: AdminCommand): ApplyResult {
    this.#assertOpen();
    const nowMs = this.#now();
    const plan = planChange(cmd, {
      state: this.#state, nowMs, newKeyEnableElapseSec: this.#newKeyEnableElapseSec, oldKeyDisableElapseSec: this.#oldKeyDisableElapseSec,
    });
    const removed = new Set(plan.ops.flatMap((op) => (op.op === 'del_node' ? [op.node] : [])));
    const added = new Set(plan.ops.flatMap((op) => (op.op === 'put_node' ? [op.node.node] : [])));
    const changedNodes = plan.changedNodes.filter((n) => !removed.has(n) && (added.has(n) || this.#state.getNode(n) !== undefined));
    const ops: StoreOp[] = changedNodes.length > 0 ? [...plan.ops, { op: 'pending', nodes: changedNodes }] : plan.ops;
    const rec = this.#append(cmd.action, ops, nowMs);
    for (const n of removed) this.#shelf.drop(n);
    this.#maybeCheckpoint();
    return { changedNodes, seq: rec.seq };
  }

  /** Nodes with changes not yet distributed, sorted. */
  pendingNodes(): string[] {
    return [...this.#run.pending].sort();
  }

  /** Derives and publishes the view of every pending node under one new version, clears them. Persisted. */
  distribute(): { nodes: string[]; version: number } {
    this.#assertOpen();
    const nodes = this.pendingNodes();
    if (nodes.length === 0) return { nodes, version: this.#run.version };
    return { nodes, version: this.#publish(nodes, 'distribute_config') };
  }

  /** Publishes one node's full view under a new version even if nothing changed. @throws IBP_ERR_REGISTRY_NOT_FOUND */
  downloadConfig(node: string): { version: number } {
    this.#assertOpen();
    if (!this.#state.getNode(node)) throw new IbpError('IBP_ERR_REGISTRY_NOT_FOUND', `download_config: node ${JSON.stringify(node)} is not defined`);
    return { version: this.#publish([node], 'download_config') };
  }

  /** The last view published to a node. */
  published(node: string): PublishedView | undefined {
    return this.#shelf.get(node);
  }

  /**
   * Writes the three `.conf` files atomically (formatClusterConfig), then checkpoints and starts a new
   * journal, so that saved changes are not replayed again. Returns the paths written.
   */
  saveConfig(): string[] {
    this.#assertOpen();
    this.#confSha = saveClusterFiles(this.#paths, this.#state.toCluster());
    this.#unsaved.clear();
    this.#checkpoint();
    return CLUSTER_KINDS.map((k) => this.#paths[k]);
  }

  /**
   * Writes `<conf>.bin` for the three files as they are on disk: from memory when they hold exactly the
   * saved records, else by parsing them (their errors are thrown, naming file:line:col). Returns the paths.
   */
  buildConfig(): string[] {
    this.#assertOpen();
    const sha = {} as Record<ClusterKind, string>;
    const stat = {} as Record<ClusterKind, string | undefined>;
    const bytes = {} as Record<ClusterKind, Buffer>;
    for (const k of CLUSTER_KINDS) {
      const before = statKey(this.#paths[k]);
      bytes[k] = readConfBytes(this.#paths[k]);
      stat[k] = statKey(this.#paths[k]) === before ? before : undefined;
      sha[k] = sha256Hex(bytes[k]);
    }
    const dirtyKinds = new Set([...this.#unsaved].map((u) => u[0]));
    const clean = CLUSTER_KINDS.every((k) => sha[k] === this.#confSha[k] && !dirtyKinds.has(k[0] as string));
    const cluster = clean ? this.#state.toCluster() : parseClusterConfFiles(this.#paths, bytes);
    const setId = setIdOf(sha);
    return [
      writeBinImage('nodes', this.#paths.nodes, cluster.nodes, sha.nodes, setId, stat.nodes),
      writeBinImage('apps', this.#paths.apps, cluster.apps, sha.apps, setId, stat.apps),
      writeBinImage('projects', this.#paths.projects, cluster.projects, sha.projects, setId, stat.projects),
    ];
  }

  /**
   * Looks at `so/<bin>` again (all package files when `bins` is absent): a node whose published view lists
   * a package that is now different (or gone, or new) becomes pending (journaled). Returns those nodes.
   */
  refreshPackages(bins?: string[]): string[] {
    this.#assertOpen();
    const made = new Set<string>();
    const byNode = new Map<string, Map<string, PackageInfo | null>>();
    const publishedPackages = (view: PublishedView) => {
      let m = byNode.get(view.node);
      if (!m) {
        m = new Map(view.servedApps.map((a) => [a, null]));
        for (const p of view.packages) m.set(p.app, p);
        byNode.set(view.node, m);
      }
      return m;
    };
    for (const bin of bins ?? this.#state.bins()) {
      const now = this.#packages.get(bin);
      for (const app of this.#state.appsOfBin(bin)) {
        for (const node of this.#state.servingNodes(app)) {
          if (made.has(node) || this.#run.pending.has(node)) continue;
          const view = this.#shelf.get(node);
          if (!view) continue;
          const pub = publishedPackages(view).get(app);
          if (pub === undefined) continue; // not served in the published view: a pending project change covers it
          if ((pub === null) !== (now === undefined) || (pub !== null && now !== undefined && (pub.sha256 !== now.sha256 || pub.size !== now.size || pub.bin !== bin))) {
            made.add(node);
          }
        }
      }
    }
    const nodes = [...made].sort();
    if (nodes.length > 0) {
      this.#append('refresh_packages', [{ op: 'pending', nodes }], this.#now());
      this.#maybeCheckpoint();
    }
    return nodes;
  }

  /** Closes the journal; later calls fail. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#journal.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', 'the registry store is closed');
  }

  /** Journals a record (durable when this returns), then applies it. */
  #append(action: string, ops: StoreOp[], at: number): JournalRecord {
    const rec: JournalRecord = { seq: this.#seq + 1, at, action, ops };
    this.#journal.append(rec);
    this.#seq = rec.seq;
    applyOps(rec.ops, this.#state, this.#run, this.#unsaved);
    return rec;
  }

  /**
   * Checkpoints when the journal has grown past its bound (at the end of a call, when all is consistent).
   * A failure is only logged: the change is durable in the journal already, and the next call tries again.
   */
  #maybeCheckpoint(): void {
    if (this.#journal.size <= this.#journalMaxBytes) return;
    try {
      this.#checkpoint();
    } catch (err) {
      this.#log?.warn({ err }, `registry store checkpoint failed (the journal keeps growing): ${(err as Error).message}`);
    }
  }

  #publish(nodes: string[], action: string): number {
    const version = this.#run.version + 1;
    const seq = this.#seq + 1;
    const segment = `pub-${seq}`;
    const nowMs = this.#now();
    const inputs = { keys: this.#run.keys, nowMs, packageOf: this.#packages.memo(), peers: new Map() };
    const views = nodes.map((n) => deriveView(this.#state, n, version, inputs));
    this.#shelf.write(segment, views);
    try {
      this.#append(action, [{ op: 'publish', version, segment, nodes }], nowMs);
    } catch (err) {
      this.#shelf.discard(segment);
      throw err;
    }
    this.#shelf.commit(segment, views);
    this.#maybeCheckpoint();
    return version;
  }

  /** Writes a checkpoint of everything up to the last record and starts an empty journal. */
  #checkpoint(): void {
    const unsaved: StoreOp[] = [];
    for (const u of this.#unsaved) {
      const name = u.slice(2);
      if (u[0] === 'n') {
        const rec = this.#state.getNode(name);
        unsaved.push(rec ? { op: 'put_node', node: rec } : { op: 'del_node', node: name });
      } else if (u[0] === 'a') {
        const rec = this.#state.getApp(name);
        unsaved.push(rec ? { op: 'put_app', app: rec } : { op: 'del_app', app: name });
      } else {
        const rec = this.#state.getProject(name);
        unsaved.push(rec ? { op: 'put_project', project: rec } : { op: 'del_project', project: name });
      }
    }
    this.#shelf.compactIfWorth(`ckpt-${this.#seq}`, this.#run);
    writeCheckpoint(this.#files.checkpoint, { seq: this.#seq, run: this.#run, unsaved });
    this.#journal.reset();
    this.#shelf.collect(this.#run);
    this.#log?.info({ seq: this.#seq, unsaved: unsaved.length, version: this.#run.version }, 'registry store checkpoint written, journal restarted');
  }
}
