/**
 * The platform's registration with the registry (SPEC §2.2: ibms "keeps a heartbeat to watch server liveness"):
 * the master sends `POST /v1/heartbeat {role:'ibas', host, pid, load, stats}` every 5 s, signed as its node with
 * `keys/<NODE>.key`, so the platform shows in `ibms -s sessions`.
 *
 * It never touches transactions and never throws: a registry that is down is retried quietly at the next
 * period (one warning, then debug records until it answers again); a missing key is one warning and the
 * platform runs unregistered (the key is looked for again at every period, so copying it in later is enough).
 * The node and the registry address come from the platform's `ibma.conf` (`ibma.this_node`, `ibms.server`),
 * read at every period too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIbmaConf } from '../core/config/index.js';
import { toIbpError } from '../core/errors.js';
import type { IbpLogger } from '../core/log.js';
import { HEARTBEAT_PERIOD_MS, RegistryClient, type HeartbeatBody } from '../registry/index.js';
import { readStatsFile } from './app-stats.js';
import { BoardReader } from './bulletin-board.js';
import type { PlatformSettings } from './settings.js';

/** What the heartbeat needs of a registry client (a `RegistryClient` fits; tests give a fake). */
export interface HeartbeatClient {
  heartbeat(body: HeartbeatBody): Promise<void>;
  close(): void;
}

/** Where to register: the node, its private key and the registry's address. */
export interface HeartbeatTarget {
  node: string;
  keyPem: string;
  ip: string;
  port: number;
}

/** Options of {@link RegistryHeartbeat}. */
export interface RegistryHeartbeatOptions {
  settings: PlatformSettings;
  /** The master's log (monitor output). */
  log: IbpLogger;
  /** The board this generation's workers write (busy/total). */
  boardPath: string;
  /** Default 5 s (the registry lists a peer for 3 periods). */
  periodMs?: number;
  /** Makes the client for a target (default: a `RegistryClient` with a 3 s timeout). */
  createClient?: (t: HeartbeatTarget) => HeartbeatClient;
}

/** Heartbeats of one ibas master to the registry. `start()` sends the first at once. */
export class RegistryHeartbeat {
  readonly #o: RegistryHeartbeatOptions;
  readonly #periodMs: number;
  #timer: NodeJS.Timeout | undefined;
  #client: HeartbeatClient | undefined;
  #clientKey = '';
  #inFlight: Promise<void> | undefined;
  #stopped = false;
  /** The last problem warned about ('' = registered / nothing yet), so each is warned once. */
  #warned = '';
  #registered = false;
  #sent = 0;

  constructor(o: RegistryHeartbeatOptions) {
    this.#o = o;
    this.#periodMs = o.periodMs ?? HEARTBEAT_PERIOD_MS;
  }

  /** Heartbeats answered by the registry so far. */
  get sent(): number {
    return this.#sent;
  }

  /** True while the last heartbeat was answered. */
  get registered(): boolean {
    return this.#registered;
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => void this.beat(), this.#periodMs);
    this.#timer.unref();
    void this.beat();
  }

  /** One heartbeat now (skipped while the previous one is still out). Never rejects. */
  beat(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#inFlight ??= this.#beat().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  /** Stops the timer and aborts a heartbeat in flight. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#client?.close();
    this.#client = undefined;
    await this.#inFlight?.catch(() => undefined);
  }

  async #beat(): Promise<void> {
    const target = this.#target();
    if (target === undefined) return;
    const key = `${target.node}|${target.ip}:${target.port}|${target.keyPem}`;
    try {
      if (this.#client === undefined || key !== this.#clientKey) {
        this.#client?.close();
        this.#client = (this.#o.createClient ?? defaultClient)(target);
        this.#clientKey = key;
      }
      await this.#client.heartbeat(this.#body());
      this.#sent++;
      if (!this.#registered) this.#o.log.info({ node: target.node, registry: `${target.ip}:${target.port}` }, 'registered with the registry (heartbeat every 5 s)');
      this.#registered = true;
      this.#warned = '';
    } catch (err) {
      if (this.#stopped) return;
      const e = toIbpError(err);
      this.#registered = false;
      // one warning per distinct problem; repeats (a registry down for hours) at debug
      this.#problem(`${e.code}|${target.ip}:${target.port}`, { err: e, registry: `${target.ip}:${target.port}`, node: target.node },
        'heartbeat to the registry failed; transactions are not affected, retrying every 5 s');
    }
  }

  /** The node, key and registry address, or undefined (warned once) when the platform cannot register. */
  #target(): HeartbeatTarget | undefined {
    const s = this.#o.settings;
    const confPath = join(s.homeRoot, 'etc', s.ibmaConfigFilename);
    let node: string;
    let ip: string;
    let port: number;
    try {
      const conf = loadIbmaConf(confPath);
      node = conf.ibma.this_node;
      ({ ip, port } = conf.ibms.server);
    } catch (err) {
      this.#problem(`conf|${confPath}`, { err: toIbpError(err), path: confPath }, 'cannot read ibma.conf: the platform runs without registering with the registry');
      return undefined;
    }
    if (ip === '0.0.0.0' || ip === '::' || ip === '') ip = '127.0.0.1';
    if (!(port > 0)) {
      this.#problem(`port|${port}`, { path: confPath, port }, 'ibma.conf names no registry port: the platform runs without registering with the registry');
      return undefined;
    }
    const keyPath = join(s.homeRoot, 'keys', `${node}.key`);
    let keyPem: string;
    try {
      keyPem = readFileSync(keyPath, 'utf8');
    } catch (err) {
      this.#problem(`key|${keyPath}`, { path: keyPath, code: (err as NodeJS.ErrnoException).code, node },
        `no private key ${keyPath}: the platform runs without registering with the registry (ibms -s sessions will not list it); copy keys/${node}.key from the registry (ibpgenrsakeys ${node})`);
      return undefined;
    }
    return { node, keyPem, ip, port };
  }

  #problem(id: string, obj: object, msg: string): void {
    if (this.#warned === id) this.#o.log.debug(obj, msg);
    else this.#o.log.warn(obj, msg);
    this.#warned = id;
  }

  #body(): HeartbeatBody {
    const s = this.#o.settings;
    const body: HeartbeatBody = { role: 'ibas', host: { ip: s.ip, port: s.port }, pid: process.pid };
    const load = boardLoad(this.#o.boardPath);
    if (load) body.load = load;
    const stats = readStatsFile(s.statsPath);
    if (stats) {
      let tps = 0;
      let txCount = 0;
      for (const a of stats.apps) {
        tps += a.tps;
        txCount += a.count;
      }
      body.stats = { tps: Math.round(tps * 1000) / 1000, txCount };
    }
    return body;
  }
}

/** Busy and live (idle or busy) workers on a board; undefined when it cannot be read. */
export function boardLoad(path: string): { busy: number; total: number } | undefined {
  let r: BoardReader | undefined;
  try {
    r = new BoardReader(path);
    let busy = 0;
    let total = 0;
    for (const slot of r.view().slots) {
      if (slot.state === 'busy') busy++;
      if (slot.state === 'busy' || slot.state === 'idle') total++;
    }
    return { busy, total };
  } catch {
    return undefined;
  } finally {
    r?.close();
  }
}

function defaultClient(t: HeartbeatTarget): HeartbeatClient {
  return new RegistryClient({ ip: t.ip, port: t.port, node: t.node, nodeKeyPem: t.keyPem, timeoutMs: 3_000 });
}
