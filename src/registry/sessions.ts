/**
 * The registry's live sessions (`ibms -s sessions`): agents and platforms seen by heartbeat or view
 * long-poll within the last 3 heartbeat periods, and admin clients seen within the last 60 s. A view
 * long-poll that is still parked (held open by the registry, up to 60 s) keeps its row live however long
 * the hold lasts: the peer is connected. In memory only: a restarted registry learns its peers again
 * within one heartbeat period.
 */
import { HEARTBEAT_PERIOD_MS, type HeartbeatBody, type SessionRow } from './wire.js';

/** A node peer is listed while seen within this long (3 heartbeat periods). */
export const PEER_LIVE_MS = 3 * HEARTBEAT_PERIOD_MS;
/** An admin client is listed while seen within this long. */
export const ADMIN_LIVE_MS = 60_000;
/** Bound on the table; the oldest entries go first. */
export const MAX_SESSIONS = 20_000;

/** Tracks who talked to the registry lately. */
export class SessionTable {
  readonly #rows = new Map<string, SessionRow>();
  /** Requests still open per row key (parked long-polls): such a row never expires. */
  readonly #open = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A heartbeat from a node's agent or platform. */
  heartbeat(node: string, remote: string, body: HeartbeatBody): void {
    const key = `${body.role}|${node}|${body.host.ip}:${body.host.port}|${body.pid}`;
    const row = this.#touch(key, {
      role: body.role,
      node,
      host: `${body.host.ip}:${body.host.port}`,
      remote,
      pid: body.pid,
    });
    if (body.viewVersion !== undefined) row.viewVersion = body.viewVersion;
    if (body.load !== undefined) row.load = { ...body.load };
    if (body.stats !== undefined) row.stats = { ...body.stats };
  }

  /**
   * A view long-poll from a node (remote address only; pid from the optional X-IBP-Pid header). The row
   * stays live while the request is open: call the returned function (idempotent) when the reply is done
   * or the caller went away (the handler passes it to the response's 'close' event); the row's expiry
   * counts from then.
   */
  viewPoll(node: string, remote: string, pid: number, viewVersion: number | undefined): () => void {
    const key = `view|${node}|${remoteIp(remote)}|${pid}`;
    const row = this.#touch(key, { role: 'view', node, host: remote, remote, pid });
    if (viewVersion !== undefined) row.viewVersion = viewVersion;
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#open.get(key) ?? 1) - 1;
      if (n > 0) this.#open.set(key, n);
      else this.#open.delete(key);
      const r = this.#rows.get(key);
      if (r !== undefined) r.lastSeenMs = Math.max(r.lastSeenMs, this.#now());
    };
  }

  /** How many requests (parked long-polls) are open; for tests and diagnostics. */
  get openRequests(): number {
    let n = 0;
    for (const c of this.#open.values()) n += c;
    return n;
  }

  /** An admin call (CLI, console). */
  admin(remote: string, pid: number): void {
    this.#touch(`admin|${remoteIp(remote)}|${pid}`, { role: 'admin', node: '-', host: remote, remote, pid });
  }

  /**
   * The live sessions, ordered by role then node then host. A 'view' row is left out when an 'ibma'
   * heartbeat row of the same node from the same address is listed (it is the same agent). A row with a
   * parked long-poll is live and shows `lastSeenMs` = now (its connection is open).
   */
  rows(): SessionRow[] {
    const now = this.#now();
    const live: SessionRow[] = [];
    for (const [key, r] of this.#rows) {
      const ttl = r.role === 'admin' ? ADMIN_LIVE_MS : PEER_LIVE_MS;
      if (this.#open.has(key)) live.push({ ...r, lastSeenMs: Math.max(r.lastSeenMs, now) });
      else if (now - r.lastSeenMs > ttl) this.#rows.delete(key);
      else live.push({ ...r });
    }
    const agents = new Set(live.filter((r) => r.role === 'ibma').map((r) => `${r.node}|${remoteIp(r.remote)}`));
    const rank = { ibma: 0, view: 1, ibas: 2, admin: 3 } as const;
    return live
      .filter((r) => r.role !== 'view' || !agents.has(`${r.node}|${remoteIp(r.remote)}`))
      .sort((a, b) => rank[a.role] - rank[b.role] || a.node.localeCompare(b.node) || a.host.localeCompare(b.host) || a.pid - b.pid);
  }

  #touch(key: string, base: Pick<SessionRow, 'role' | 'node' | 'host' | 'remote' | 'pid'>): SessionRow {
    const now = this.#now();
    let row = this.#rows.get(key);
    if (row === undefined) {
      if (this.#rows.size >= MAX_SESSIONS) this.#evictOldest();
      row = { ...base, sinceMs: now, lastSeenMs: now };
      this.#rows.set(key, row);
    } else {
      row.lastSeenMs = now;
      row.remote = base.remote;
    }
    return row;
  }

  #evictOldest(): void {
    let oldestKey: string | undefined;
    let oldest = Infinity;
    for (const [k, r] of this.#rows) {
      if (r.lastSeenMs < oldest && !this.#open.has(k)) {
        oldest = r.lastSeenMs;
        oldestKey = k;
      }
    }
    if (oldestKey !== undefined) this.#rows.delete(oldestKey);
  }
}

/** The address part of `ip:port` (IPv6 in brackets kept whole). */
function remoteIp(remote: string): string {
  const i = remote.lastIndexOf(':');
  return i > 0 && !remote.endsWith(']') ? remote.slice(0, i) : remote;
}
