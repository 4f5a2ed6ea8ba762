/** What the registry's request handlers share: the store, auth, sessions, parked long-polls, logs. */
import type { IncomingMessage } from 'node:http';
import type { IbpLogger } from '../core/log.js';
import type { RegistryStore } from './store/index.js';
import type { RequestAuth } from './request-auth.js';
import type { SessionTable } from './sessions.js';
import type { RegistrySettings } from './settings.js';
import type { ViewWaiters } from './view-waiters.js';
import { HEADER_PID } from './wire.js';

/** The state behind the HTTP API of one worker. */
export interface ApiContext {
  readonly settings: RegistrySettings;
  readonly store: RegistryStore;
  readonly auth: RequestAuth;
  readonly sessions: SessionTable;
  readonly waiters: ViewWaiters;
  /** The worker log. */
  readonly log: IbpLogger;
  /** The event log: every admin change and every publish. */
  readonly events: IbpLogger;
  /** Wakes the long-polls of nodes whose view was just published. */
  published(nodes: readonly string[]): void;
}

/** `ip:port` of the caller. */
export function remoteOf(req: IncomingMessage): string {
  const s = req.socket;
  const ip = s.remoteAddress ?? '?';
  return `${ip.includes(':') ? `[${ip}]` : ip}:${s.remotePort ?? 0}`;
}

/** The caller's pid from the optional X-IBP-Pid header (0 when absent or not a number). */
export function pidOf(req: IncomingMessage): number {
  const n = Number(req.headers[HEADER_PID]);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
