/**
 * The message model every protocol adapter (IB2, IB1, HTTP) maps onto. The rest of the system depends only
 * on these types, never on byte layouts (docs/protocol.md has those).
 */
import type { IbpError, IbpErrorData } from '../core/errors.js';
import type { NodeKeys } from './security/keys.js';

/** At most this many files travel with one request and with one response. */
export const MAX_FILES = 4;

export type ProtocolName = 'IB2' | 'IB1' | 'HTTP';

/** What the server proposes in the handshake; both sides apply it on IB2 (docs/protocol.md §Security). */
export interface SecurityFlags {
  sign: boolean;
  compress: boolean;
  encrypt: boolean;
}

/** Packet 1 (pre-request), client → server. */
export interface PreRequest {
  clientNode: string;
  app: string;
  /** The communication journal number chosen by the client. */
  jnlsno: string;
  /** A dyed (traced) transaction. */
  trace: boolean;
  /** How many request files follow (0..4). */
  fileCount: number;
}

/** What the server side needs to protect messages: its node's keys and the compression threshold. */
export interface SecurityContext {
  /** This (server) node's keys from the local config replica; undefined or keyExp '' = none. */
  keys: NodeKeys | undefined;
  /** `minCompressSize` of the replica: bodies of at least this many bytes are compressed. */
  minCompressSize: number;
  /** This node's name (for messages). */
  node: string;
  /**
   * Called once when a protected message names a key that `keys` does not accept: the replica may have been
   * rewritten since (a rotation); returns the newest keys. Optional.
   */
  refreshKeys?(): NodeKeys | undefined;
}

/** Server load observed when the response was made: workers in a transaction / workers in the pool. */
export interface ServerLoad {
  busy: number;
  total: number;
}

/** A transaction as the server platform sees it, whatever protocol carried it. */
export interface IncomingTransaction {
  protocol: ProtocolName;
  clientNode: string;
  clientIp: string;
  clientPort: number;
  app: string;
  jnlsno: string;
  trace: boolean;
  body: Buffer;
  /** Full paths of the request files, stored in file/ as (file_id)_(10 random chars).tmp. */
  requestFiles: string[];
}

/** What the platform answers. `error` set = the transaction failed on the server (carried back as data). */
export interface TransactionOutcome {
  error?: IbpError;
  body: Buffer;
  /** Full paths of response files (in file/), sent to the client in the pull-files packet. */
  responseFiles: string[];
}

/**
 * The server platform's side of a connection: protocol adapters call it.
 * `check` runs at the pre-request (before any file or request is read): return an error to refuse the
 * transaction (it is then not in doubt for the client). `run` executes it and must call `reply` exactly once,
 * early (send-response-ahead) or at the end; the adapter sends the response when `reply` is called and reads
 * the next request of the connection only after `run` has settled.
 */
export interface TransactionHandler {
  check(pre: PreRequest, protocol: ProtocolName): IbpError | undefined;
  run(tx: IncomingTransaction, reply: (outcome: TransactionOutcome) => void): Promise<void>;
  load(): ServerLoad;
  readonly securityFlags: SecurityFlags;
  /**
   * The keys and compression threshold, asked once per IB2 transaction when any flag is on. Without it, no key
   * (signing or encryption then refuses every transaction with IBP_ERR_SEC_NO_KEY) and threshold 0.
   */
  securityContext?(): SecurityContext;
}

/** Limits applied to everything read from the network. */
export interface ProtocolLimits {
  /** Largest request or response message body, bytes. */
  maxBodyBytes: number;
  /** Largest attached file, bytes. */
  maxFileBytes: number;
  /** Largest IB2 frame payload, bytes (bodies and file chunks above it are refused). */
  maxFramePayloadBytes: number;
  /** Time allowed between the first and last byte of a frame, and for the first bytes of a connection, ms. */
  readTimeoutMs: number;
  /** Time an open long connection may sit idle between transactions before the server closes it, ms. */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: ProtocolLimits = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxFileBytes: 1024 * 1024 * 1024,
  maxFramePayloadBytes: 16 * 1024 * 1024 + 1024,
  readTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
};

/** The result of one call as the client connection returns it. */
export interface CallResult {
  body: Buffer;
  load: ServerLoad;
  /** Full paths of the received response files, stored in the client's file/. */
  responseFiles: string[];
  /** Flags the server proposed for this connection. */
  securityFlags: SecurityFlags;
}

export type { IbpErrorData };
