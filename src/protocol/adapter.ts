/**
 * What serveConnection hands a protocol adapter, and what it expects back.
 */
import type { Socket } from 'node:net';
import type { ProtocolLogger } from './run-transaction.js';
import type { ProtocolLimits, TransactionHandler } from './types.js';

export interface AdapterContext {
  socket: Socket;
  handler: TransactionHandler;
  fileDir: string;
  limits: ProtocolLimits;
  log: ProtocolLogger;
  goAwayGraceMs: number;
  remoteIp: string;
  remotePort: number;
  /** True when goAway() was called before the protocol was known. */
  goingAway: boolean;
}

/** One protocol's server side of one connection. */
export interface ProtocolAdapter {
  /** A transaction is being received, run or answered (or bytes of the next one have arrived). */
  readonly inFlight: boolean;
  /** Announce the close and close once nothing is in flight (see ServerConnection.goAway). */
  goAway(): void;
}
