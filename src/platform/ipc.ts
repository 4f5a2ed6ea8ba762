/** Messages between the ibas master and its workers (discriminated on `type`). */
import type { IbpErrorData } from '../core/errors.js';

/** master → worker. `conn` carries the accepted socket as the send handle. */
export type MasterMessage =
  | { type: 'conn' }
  | { type: 'stop' };

/** worker → master. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  /** Sent only when the board's waiting flag was set: this worker just became idle. */
  | { type: 'idle' }
  /** The worker will take no more connections (recycle after max_process_count, or stopping). */
  | { type: 'retiring'; reason: 'recycle' | 'stop' }
  | { type: 'fatal'; error: IbpErrorData };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
