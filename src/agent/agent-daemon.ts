/**
 * The agent's sync loop (the original's ibma): fetch this node's view from the registry, bring the app
 * packages in `so/` up to date, decrypt the keys, publish a new snapshot of the local replica, then follow
 * changes by long-polling. On any failure the last snapshot stays in force and the loop retries after
 * 100 ms, doubling up to 2 s. A heartbeat goes to the registry every 5 s. See docs/agent.md.
 *
 * It talks to the registry through {@link AgentRegistryClient}, which the registry's `RegistryClient`
 * satisfies; the agent part does not import the registry (the registry imports the agent).
 */
import type { KeyObject } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { IbpError, toIbpError } from '../core/errors.js';
import type { IbpHome } from '../core/home.js';
import type { IbpLogger } from '../core/log.js';
import { PackageSync } from './package-sync.js';
import { parseRegistryView, sameSnapshotContent, viewToSnapshotData, type SnapshotSettings } from './published-view.js';
import { RetryBackoff } from './retry-backoff.js';
import { pruneUnusedSnapshots } from './snapshot-prune.js';
import { readCurrentSnapshot, readIndexVersion, writeSnapshot } from './snapshot-store.js';
import type { SnapshotRecord } from './snapshot-format.js';

/** Heartbeat period (the registry lists a peer as live for 3 periods). */
export const AGENT_HEARTBEAT_MS = 5000;
/** How long one long-poll may be held by the registry, seconds. */
export const AGENT_LONG_POLL_SEC = 30;
/** How often superseded snapshots are checked for removal besides after each write. */
export const AGENT_PRUNE_EVERY_MS = 15_000;

/** The heartbeat body of an agent. */
export interface AgentHeartbeat {
  role: 'ibma';
  host: { ip: string; port: number };
  pid: number;
  viewVersion?: number;
}

/** What the agent needs of a registry client (the registry's `RegistryClient` has these). */
export interface AgentRegistryClient {
  /** `GET /v1/view`: 200 with the view, or 304 when the long-poll ended without a newer version. */
  getView(index?: number, waitSec?: number): Promise<{ status: 200; view: unknown } | { status: 304 }>;
  /** `GET /v1/packages/<bin>`: the package bytes. */
  getPackage(bin: string): Promise<Uint8Array>;
  heartbeat(body: AgentHeartbeat): Promise<unknown>;
  close?(): void;
}

/** Options of {@link AgentDaemon}. */
export interface AgentDaemonOptions {
  home: IbpHome;
  /** What every snapshot takes from `ibma.conf` (node name, registry address, client settings). */
  settings: SnapshotSettings;
  client: AgentRegistryClient;
  /** This node's private key (decrypts the keys of the views). */
  privateKey: KeyObject;
  /** The host this agent reports in its heartbeat; default: a host of this node on a local interface. */
  host?: { ip: string; port: number };
  /** The sync loop's log (the worker log). */
  log?: IbpLogger;
  /** The event log: one record per snapshot switch and per package replaced. */
  events?: IbpLogger;
  longPollSec?: number;
  heartbeatMs?: number;
  pruneEveryMs?: number;
  retryFirstMs?: number;
  retryMaxMs?: number;
}

/** How the agent became ready: from a view of the registry, or from the local snapshot while the registry is unreachable. */
export interface AgentReady {
  source: 'registry' | 'local';
  /** The local replica's current snapshot version. */
  snapshotVersion: number;
  /** The registry's view version applied (source 'registry'). */
  viewVersion?: number;
}

/** Where the loop is. */
export type AgentState = 'new' | 'fetching' | 'polling' | 'retrying' | 'closed';

/** The agent's sync loop and heartbeat. `start()` once, `close()` to stop. */
export class AgentDaemon {
  readonly #o: AgentDaemonOptions;
  readonly #packages: PackageSync;
  readonly #backoff: RetryBackoff;
  #state: AgentState = 'new';
  #viewVersion: number | undefined;
  #lastError: IbpError | undefined;
  #hostFromView: { ip: string; port: number } | undefined;
  #ready: { resolve: (r: AgentReady) => void; reject: (e: Error) => void; done: boolean } | undefined;
  #wake: () => void = () => undefined;
  #closedSignal: Promise<void>;
  #signalClosed!: () => void;
  #loop: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #beating = false;

  constructor(options: AgentDaemonOptions) {
    this.#o = options;
    this.#packages = new PackageSync(options.home.so);
    this.#backoff = new RetryBackoff(options.retryFirstMs, options.retryMaxMs);
    this.#closedSignal = new Promise((r) => (this.#signalClosed = r));
  }

  get state(): AgentState {
    return this.#state;
  }

  /** The registry version of the last view applied, if any. */
  get viewVersion(): number | undefined {
    return this.#viewVersion;
  }

  /** The last failure of the loop, cleared by a successful sync. */
  get lastError(): IbpError | undefined {
    return this.#lastError;
  }

  /**
   * Starts the loop and the heartbeat. Resolves once the first view is applied, or, when the first attempt
   * fails and a local snapshot exists, at once with that snapshot (the loop keeps retrying). With neither,
   * it waits for the registry. Rejects only if the agent is closed before it was ready.
   */
  start(): Promise<AgentReady> {
    if (this.#state !== 'new') throw new IbpError('IBP_ERR_INTERNAL', 'AgentDaemon.start() called twice');
    const ready = new Promise<AgentReady>((resolve, reject) => (this.#ready = { resolve, reject, done: false }));
    this.#loop = this.#run();
    const hb = setInterval(() => void this.#heartbeat(), this.#o.heartbeatMs ?? AGENT_HEARTBEAT_MS);
    const prune = setInterval(() => this.#prune(), this.#o.pruneEveryMs ?? AGENT_PRUNE_EVERY_MS);
    hb.unref();
    prune.unref();
    this.#timers.push(hb, prune);
    return ready;
  }

  /** Stops the loop and the timers; resolves when the loop has left (a pending long-poll is abandoned). Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#signalClosed();
    this.#wake();
    try {
      this.#o.client.close?.();
    } catch {
      /* closing a client must not fail a stop */
    }
    await this.#loop;
    this.#settleReady(undefined, new IbpError('IBP_ERR_INTERNAL', 'the agent was closed before it was ready'));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(): Promise<void> {
    const log = this.#o.log;
    let index: number | undefined;
    let failing = false;
    while (this.#state !== 'closed') {
      try {
        this.#state = index === undefined ? 'fetching' : 'polling';
        const reply = await this.#untilClosed(this.#o.client.getView(index, index === undefined ? undefined : (this.#o.longPollSec ?? AGENT_LONG_POLL_SEC)));
        if (reply === undefined) break;
        if (reply.status === 200) {
          await this.#apply(reply.view);
          index = this.#viewVersion;
        }
        if (failing) log?.info({ viewVersion: this.#viewVersion }, 'registry reachable again, config in sync');
        failing = false;
        this.#lastError = undefined;
        this.#backoff.reset();
      } catch (err) {
        if (this.#isClosed()) break;
        const e = toIbpError(err);
        const delayMs = this.#backoff.next();
        if (!failing || e.message !== this.#lastError?.message) {
          log?.warn({ err: e, retryInMs: delayMs }, 'config sync failed, keeping the last snapshot');
        } else {
          log?.debug({ code: e.code, retryInMs: delayMs }, 'config sync failed again');
        }
        failing = true;
        this.#lastError = e;
        index = undefined; // after a failure, fetch the whole view again (the registry may have been reset)
        this.#readyFromLocal();
        this.#state = 'retrying';
        await this.#sleep(delayMs);
      }
    }
  }

  /** Packages first (so a snapshot never names a package that is not there yet), then the snapshot. */
  async #apply(body: unknown): Promise<void> {
    const { home, settings, log, events } = this.#o;
    const view = parseRegistryView(body, settings.thisNode);
    const data = viewToSnapshotData(view, this.#o.privateKey, settings);
    if (this.#viewVersion !== undefined && view.version < this.#viewVersion) {
      log?.warn({ from: this.#viewVersion, to: view.version }, 'the registry view version went back (registry reset?)');
    }
    const pk = await this.#packages.sync(view.packages, async (bin) => {
      const bytes = await this.#untilClosed(this.#o.client.getPackage(bin));
      if (bytes === undefined) throw new IbpError('IBP_ERR_AGENT_PACKAGE', `download of ${bin} abandoned: the agent is stopping`);
      return bytes;
    });
    for (const bin of pk.updated) events?.info({ bin, viewVersion: view.version }, 'package updated');
    if (this.#state === 'closed') return;
    let current: SnapshotRecord | undefined;
    try {
      current = readCurrentSnapshot(home.replica);
    } catch {
      current = undefined;
    }
    let snapshotVersion: number;
    if (current !== undefined && sameSnapshotContent(data, current)) {
      snapshotVersion = current.version;
      log?.debug({ viewVersion: view.version, snapshotVersion }, 'view unchanged, snapshot kept');
    } else {
      snapshotVersion = writeSnapshot(home.replica, data);
      log?.info({ viewVersion: view.version, snapshotVersion, nodes: data.nodes.length, apps: data.apps.length }, 'new config snapshot');
      events?.info({ viewVersion: view.version, snapshotVersion }, 'config switched');
      this.#prune();
    }
    this.#removeUnlisted(view);
    this.#viewVersion = view.version;
    this.#hostFromView = pickHost(data.nodes[0]?.hosts ?? []);
    const first = this.#ready !== undefined && !this.#ready.done;
    this.#settleReady({ source: 'registry', snapshotVersion, viewVersion: view.version });
    if (first) void this.#heartbeat();
    if (pk.failed.length > 0) {
      const f = pk.failed[0]!;
      throw new IbpError('IBP_ERR_AGENT_PACKAGE', `${pk.failed.length} package(s) not updated (${pk.failed.map((x) => x.bin).join(', ')}): ${f.error.message}`, {
        cause: f.error,
      });
    }
  }

  /**
   * After the new snapshot is in force: removes the packages this agent installed that the view no longer
   * names (neither a package of the view nor the bin of an app the node serves). Files put in so/ by hand
   * are never touched (see PackageSync.removeUnlisted).
   */
  #removeUnlisted(view: { packages: readonly { bin: string }[]; apps: readonly { app: string; bin: string }[]; servedApps: readonly string[] }): void {
    const served = new Set(view.servedApps);
    const keep = new Set([...view.packages.map((p) => p.bin), ...view.apps.filter((a) => served.has(a.app)).map((a) => a.bin)]);
    const r = this.#packages.removeUnlisted(keep);
    for (const bin of r.removed) this.#o.events?.info({ bin }, 'package removed: no longer in this node\'s view');
    for (const bin of r.kept) this.#o.log?.warn({ bin }, 'package no longer in this node\'s view but changed by hand since the agent installed it: left in place');
    for (const f of r.failed) this.#o.log?.warn({ bin: f.bin, err: f.error }, 'could not remove a package no longer in this node\'s view');
  }

  /** A method, not a field read, so TypeScript does not narrow the state across awaits. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #readyFromLocal(): void {
    if (this.#ready === undefined || this.#ready.done) return;
    let local: number | undefined;
    try {
      local = readIndexVersion(this.#o.home.replica);
    } catch {
      local = undefined;
    }
    if (local !== undefined) this.#settleReady({ source: 'local', snapshotVersion: local });
  }

  #settleReady(value: AgentReady | undefined, error?: Error): void {
    const r = this.#ready;
    if (r === undefined || r.done) return;
    r.done = true;
    if (value !== undefined) r.resolve(value);
    else r.reject(error ?? new Error('not ready'));
  }

  async #heartbeat(): Promise<void> {
    if (this.#beating || this.#state === 'closed') return;
    this.#beating = true;
    try {
      const body: AgentHeartbeat = { role: 'ibma', host: this.#o.host ?? this.#hostFromView ?? localHost(this.#o.home), pid: process.pid };
      if (this.#viewVersion !== undefined) body.viewVersion = this.#viewVersion;
      await this.#untilClosed(this.#o.client.heartbeat(body));
    } catch (err) {
      this.#o.log?.debug({ err: toIbpError(err) }, 'heartbeat failed');
    } finally {
      this.#beating = false;
    }
  }

  #prune(): void {
    try {
      const removed = pruneUnusedSnapshots(this.#o.home.replica);
      if (removed.length > 0) this.#o.log?.debug({ removed }, 'unused snapshots removed');
    } catch (err) {
      this.#o.log?.warn({ err: toIbpError(err) }, 'pruning snapshots failed');
    }
  }

  /** Resolves with `p`'s value, or undefined as soon as the agent is closed (p's late outcome is dropped). */
  #untilClosed<T>(p: Promise<T>): Promise<T | undefined> {
    p.catch(() => undefined);
    return Promise.race([p, this.#closedSignal.then(() => undefined)]);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** A host of this node on a local interface, else its first host; a client-only host is reported with a negative port. */
function pickHost(hosts: readonly { ip: string; port: number; clientOnly?: boolean }[]): { ip: string; port: number } | undefined {
  if (hosts.length === 0) return undefined;
  const local = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  const h = hosts.find((x) => local.has(x.ip)) ?? hosts[0]!;
  return { ip: h.ip, port: h.clientOnly ? -Math.abs(h.port) : h.port };
}

/** Before any view: this node's host from the local snapshot, else 127.0.0.1:0. */
function localHost(home: IbpHome): { ip: string; port: number } {
  try {
    const snap = readCurrentSnapshot(home.replica);
    const me = snap.nodes.find((n) => n.name === snap.thisNode);
    const h = pickHost(me?.hosts ?? []);
    if (h) return h;
  } catch {
    /* no snapshot yet */
  }
  return { ip: '127.0.0.1', port: 0 };
}
