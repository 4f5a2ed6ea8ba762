/** Messages between the ibas master and its workers (discriminated on `type`). */
import type { IbpErrorData } from '../core/errors.js';
import type { AppStatsDelta } from './app-stats.js';

/** master → worker. `conn` carries the accepted socket as the send handle. */
export type MasterMessage =
  | { type: 'conn' }
  | { type: 'stop' }
  /** SIGUSR2 hand-over or a dynamic pool's shrink: retire like a recycle (GOAWAY; requests already on the wire are served), no replacement. */
  | { type: 'drain' };

/** worker → master. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  /** Sent only when the board's waiting flag was set: this worker just became idle. */
  | { type: 'idle' }
  /** The worker will take no more connections (recycle after max_process_count, stopping, or an upgrade's drain). */
  | { type: 'retiring'; reason: 'recycle' | 'stop' | 'upgrade' }
  | { type: 'fatal'; error: IbpErrorData }
  /** Per-app transaction counts since the last `stats` message (a few times a second while busy). */
  | { type: 'stats'; apps: AppStatsDelta[] };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
