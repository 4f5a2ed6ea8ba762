/**
 * The error registry: every error IBP raises has a stable code `IBP_ERR_<AREA>_<WHAT>`, a message for
 * humans, an optional `cause`, and survives crossing a process or the network as data
 * (`toJSON` / `IbpError.fromJSON`). `docs/errors.md` lists every code; a unit test keeps the two in sync.
 */

/** Every code, with a one-line meaning (the same text heads its row in docs/errors.md). */
export const ERROR_CODES = {
  // core / config
  IBP_ERR_CONFIG_SYNTAX: 'A config file is not lenient JSON; the message gives file:line:col and what was expected.',
  IBP_ERR_CONFIG_INVALID: 'A config value has the wrong type or is out of range; the message names the key path.',
  IBP_ERR_CONFIG_UNKNOWN_KEY: 'A config file holds a key its schema does not know; the message names it.',
  IBP_ERR_CONFIG_READ: 'A config file could not be read (missing, unreadable).',
  IBP_ERR_HOME_INVALID: 'The IBP home ($IBP_HOME or $HOME) is missing or not a directory.',
  IBP_ERR_LOG_OUTPUT: 'A log output is not of the form file::<path> (or stdout/stderr).',
  IBP_ERR_LOG_OPEN: 'A log file could not be created or opened; the message names the path and the system error.',
  IBP_ERR_USAGE: 'A command line is wrong; the message says which argument and what is expected.',
  IBP_ERR_INTERNAL: 'An unexpected internal failure; the cause carries the original error.',

  // protocol
  IBP_ERR_PROTO_BAD_MAGIC: 'The first bytes of a connection or frame are not IB1, IB2 or an HTTP method.',
  IBP_ERR_PROTO_FRAME_TOO_LARGE: 'A frame or field length is past its limit.',
  IBP_ERR_PROTO_TRUNCATED: 'A frame or field ends before its declared length.',
  IBP_ERR_PROTO_BAD_FIELD: 'A frame field has the wrong type, length or value.',
  IBP_ERR_PROTO_UNEXPECTED_FRAME: 'A frame arrived that the exchange does not allow at this point.',
  IBP_ERR_PROTO_READ_TIMEOUT: 'The peer sent nothing (or stopped mid-frame) for longer than the read timeout.',
  IBP_ERR_PROTO_TOO_MANY_FILES: 'More than 4 files were attached to one request or response.',
  IBP_ERR_PROTO_HTTP: 'An HTTP request does not follow the IBP-over-HTTP mapping.',
  IBP_ERR_PROTO_CONNECTION_CLOSED: 'The peer closed the connection in the middle of an exchange.',

  // message security (sign / compress / encrypt)
  IBP_ERR_SEC_NO_KEY: 'Signing or encryption was agreed but the server node has no key (key_exp) in the local config replica.',
  IBP_ERR_SEC_UNKNOWN_KEY: 'A protected message carries a key check value that names no key the receiver accepts (wrong key, or the old key after its disable time).',
  IBP_ERR_SEC_BAD_MAC: 'A protected message fails its signature: tampered, truncated, replayed, or taken from another connection.',
  IBP_ERR_SEC_FLAGS_MISMATCH: 'A message was not protected the way the handshake agreed (sign, compress, encrypt).',
  IBP_ERR_SEC_MALFORMED: 'A protected message is too short, has unknown mode bits, or its compressed body does not inflate.',
  IBP_ERR_SEC_UNSUPPORTED: 'The server signs or encrypts, and HTTP and IB1 cannot carry that protection; the call was refused.',

  // attachments
  IBP_ERR_FILE_BAD_NAME: 'An attachment name or file_id is not of the form (file_id)_(10 chars).tmp or escapes file/.',
  IBP_ERR_FILE_NOT_FOUND: 'An attachment named in a call does not exist in file/.',
  IBP_ERR_FILE_TOO_LARGE: 'An attachment is larger than the allowed size.',

  // local config replica
  IBP_ERR_REPLICA_NO_SNAPSHOT: 'run/ibma/ has no config snapshot (run the agent or `ibp local-config`).',
  IBP_ERR_REPLICA_CORRUPT: 'A config snapshot or the index is unreadable or fails its checksum.',
  IBP_ERR_REPLICA_UNKNOWN_NODE: 'A node is not in the local config replica.',
  IBP_ERR_REPLICA_UNKNOWN_APP: 'A transaction code (app) is not in the local config replica.',

  // agent (ibma daemon)
  IBP_ERR_AGENT_KEY: 'The node private key keys/<NODE>.key is missing, unreadable, or cannot decrypt the keys the registry sent.',
  IBP_ERR_AGENT_PACKAGE: 'An app package from the registry has a bad name, size or SHA-256; the live package was left as it was.',
  IBP_ERR_AGENT_VIEW: 'The registry sent a view that is malformed or belongs to another node; the last snapshot is kept.',
  IBP_ERR_AGENT_ALREADY_RUNNING: 'An agent already runs for this home (live pid in run/ibma.pid).',
  IBP_ERR_AGENT_NOT_RUNNING: 'No running agent was found for this home (no live pid in run/ibma.pid).',

  // client
  IBP_ERR_CLIENT_BAD_ARGUMENT: 'A client API call got a wrong argument; the message names it.',
  IBP_ERR_CLIENT_NODE_INVALID: 'The server node is marked invalid in the replica.',
  IBP_ERR_CLIENT_APP_INVALID: 'The app is marked invalid in the replica.',
  IBP_ERR_CLIENT_NO_HOST: 'The server node has no usable host (all invalid, client-only or suspended).',
  IBP_ERR_CLIENT_CONNECT_FAILED: 'Connecting to every candidate host failed; nothing was sent.',
  IBP_ERR_CLIENT_CONNECT_TIMEOUT: 'Connecting took longer than connecting_timeout; nothing was sent.',
  IBP_ERR_CLIENT_NOT_CONNECTED: 'A call was made on a connection that is closed or was never opened.',
  IBP_ERR_CLIENT_BUSY: 'A call was made on a connection that is already running a call.',
  IBP_ERR_CLIENT_CONNECTION_LOST: 'The connection broke; the comm status says whether the call is in doubt.',
  IBP_ERR_CLIENT_TIMEOUT: 'No complete response within the app timeout; the comm status says whether the call is in doubt.',
  IBP_ERR_CLIENT_REFUSED: 'The server refused the call before running it (see the cause); not in doubt.',

  // two-phase commit (client coordinator, platform participant)
  IBP_ERR_2PC_BAD_ENVELOPE: 'A 2PC message or transaction id is malformed (phase, xid, coordinator, timeout).',
  IBP_ERR_2PC_NOT_SUPPORTED: 'The app package exports no prepare, commit and rollback functions: it cannot take part in 2PC.',
  IBP_ERR_2PC_LOG: 'The 2PC decision log (file/2pc/) or a participant record cannot be written or read.',
  IBP_ERR_2PC_WRONG_COORDINATOR: 'A decision was asked of a home whose decision log is not the coordinator named in the request.',
  IBP_ERR_2PC_DECISION_UNREACHABLE: 'A prepared participant could not reach the coordinator decision log; it stays prepared and asks again.',

  // server-side outcomes carried back to the client as data
  IBP_ERR_SERVER_APP_NOT_FOUND: 'The server does not know the app, or its node does not serve it.',
  IBP_ERR_SERVER_APP_LOAD: 'The app package could not be loaded (missing file, syntax error, no entry).',
  IBP_ERR_SERVER_APP_FAILED: 'The app threw, rejected or returned a non-zero status.',
  IBP_ERR_SERVER_BUSY: 'No worker became idle within the wait bound; the call was not run.',
  IBP_ERR_SERVER_SHUTTING_DOWN: 'The server is stopping and did not start the call.',
  IBP_ERR_SERVER_WORKER_DIED: 'The worker running the call died; the call is in doubt.',
  IBP_ERR_SERVER_PONG: 'The answer to a ping (the reserved app `ibp ping`): the host serves the node in details; nothing ran.',

  // platform
  IBP_ERR_PLATFORM_ALREADY_RUNNING: 'The pid file is locked by a running instance.',
  IBP_ERR_PLATFORM_NOT_RUNNING: 'No running instance was found for this home and config.',
  IBP_ERR_PLATFORM_LISTEN: 'The listen address could not be bound.',
  IBP_ERR_PLATFORM_START: 'The platform did not become ready; the message says why.',
  IBP_ERR_PLATFORM_UPGRADE: 'A graceful restart (SIGUSR2) failed: the new generation did not become ready; the old one keeps serving.',

  // master (generic service supervisor)
  IBP_ERR_MASTER_CONFIG: 'A service config file (*.cf, *.gcf) is malformed or a server-* key has a bad value; the message gives file:line and the key.',
  IBP_ERR_MASTER_LOCKED: 'The master pid file is locked by another running master.',
  IBP_ERR_MASTER_PID_FILE: 'The master pid file or its lock could not be created (bad path, permissions, not Linux).',
  IBP_ERR_MASTER_LISTEN: 'A service listen address could not be bound (in use, not on this host, bad unix socket path).',
  IBP_ERR_MASTER_LISTEN_FDS: 'A service found malformed LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES in its environment.',
  IBP_ERR_MASTER_START: 'A service did not become ready: a process exited before READY=1, was not ready within server-ready-timeout, or was stopped first.',

  // rcmd (ibcmd)
  IBP_ERR_RCMD_AUTH_FAILED: 'An ibcmd peer failed the shared-secret challenge-response; nothing was run or written.',
  IBP_ERR_RCMD_BAD_MAC: 'An ibcmd frame after authentication has a wrong MAC (tampered or replayed); the connection is closed.',
  IBP_ERR_RCMD_FRAME: 'An ibcmd frame is malformed (magic, type, length or body); the connection is closed.',
  IBP_ERR_RCMD_COMMAND_REFUSED: 'The command audit refused a command; the message gives the rule and the reason.',
  IBP_ERR_RCMD_PATH_REFUSED: 'A file path is outside the agent home, traverses, crosses a symlink or is denied.',
  IBP_ERR_RCMD_FILE_TOO_LARGE: 'A transferred file is larger than file.max_file_size.',
  IBP_ERR_RCMD_FILE_NOT_FOUND: 'getfile named a file that does not exist or is not a regular file.',
  IBP_ERR_RCMD_CHECKSUM: 'A transferred file does not match its size or SHA-256; nothing was written.',
  IBP_ERR_RCMD_EXEC_FAILED: 'An allowed command could not be started (not found in exec.path, not executable).',
  IBP_ERR_RCMD_BUSY: 'The agent is at max_connections or max_concurrent; the request was not run.',
  IBP_ERR_RCMD_CONNECT: 'The agent could not be reached, or the connection broke before the answer.',
  IBP_ERR_RCMD_TIMEOUT: 'The agent did not answer within the client timeout.',
  IBP_ERR_RCMD_SECRET: 'The shared secret file is missing, too short or readable by others.',
  IBP_ERR_RCMD_ALREADY_RUNNING: 'An ibcmd agent already runs for this home (live pid in run/ibcmd.pid).',
  IBP_ERR_RCMD_NOT_RUNNING: 'No running ibcmd agent was found for this home.',
  IBP_ERR_RCMD_START: 'The ibcmd agent did not become ready (listen failed, bad config); the message says why.',

  // registry daemon (ibms) and its HTTP API
  IBP_ERR_REGISTRY_AUTH: 'A registry call was refused: bad or missing admin token, node signature, clock or public key.',
  IBP_ERR_REGISTRY_HTTP: 'A registry HTTP request or reply has the wrong shape (path, method, JSON body, size, encoding).',
  IBP_ERR_REGISTRY_UNREACHABLE: 'The registry could not be reached or gave no reply in time.',
  IBP_ERR_REGISTRY_NOT_PUBLISHED: 'The registry has never distributed a view to this node.',
  IBP_ERR_REGISTRY_PACKAGE: 'An app package is not in the node\'s published view, missing in so/, or arrived corrupted.',
  IBP_ERR_REGISTRY_ALREADY_RUNNING: 'An ibms of this home is already running (run/ibms.pid).',
  IBP_ERR_REGISTRY_NOT_RUNNING: 'No running ibms was found for this home.',
  IBP_ERR_REGISTRY_START: 'The registry did not become ready; the message says why.',
  IBP_ERR_REGISTRY_KEY_EXISTS: 'A node key file already exists and --force was not given.',
  IBP_ERR_REGISTRY_BAD_ARG: 'An admin command has a missing, unknown or malformed argument; the message names the field.',
  IBP_ERR_REGISTRY_NOT_FOUND: 'An admin command names a node, host, app, project or KV key the cluster does not have.',
  IBP_ERR_REGISTRY_EXISTS: 'An admin command adds a node, host, app, project or KV key that already exists.',
  IBP_ERR_REGISTRY_INVALID: 'An admin command would leave the cluster inconsistent (unknown reference, duplicate host, bad timeout, still in use).',
  IBP_ERR_REGISTRY_BIN_IMAGE: 'A .bin image of a cluster file (etc/*.conf.bin) is of an old or foreign format, torn or corrupt; the .conf is loaded instead and the image rebuilt.',
  IBP_ERR_REGISTRY_JOURNAL: 'The registry store\'s journal, checkpoint or views (run/ibms/), or its .conf/.bin files (etc/), cannot be written or are corrupt.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Where a failed transaction stands, as the original's `IBACGetCommStatus` tells it.
 * - `NOT_SENT`: the request never left the client; safe to retry.
 * - `ON_SENDING`: the request left and no complete response arrived: **in doubt**.
 * - `COMPLETED`: the server answered (a failure afterwards, e.g. pulling files, does not undo that).
 */
export type CommStatus = 'NOT_SENT' | 'ON_SENDING' | 'COMPLETED';

export interface IbpErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  commStatus?: CommStatus;
  details?: Record<string, unknown>;
}

/** The serialisable form of an error, as it crosses processes and the network. */
export interface IbpErrorData {
  code: string;
  message: string;
  retryable?: boolean;
  commStatus?: CommStatus;
  details?: Record<string, unknown>;
}

/** The one error class of IBP. `code` is stable; `message` is for humans. */
export class IbpError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly commStatus: CommStatus | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: IbpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IbpError';
    this.code = code;
    this.retryable = options.retryable ?? options.commStatus === 'NOT_SENT';
    this.commStatus = options.commStatus;
    this.details = options.details;
  }

  /** True when the transaction may have run on the server (`ON_SENDING`). */
  get inDoubt(): boolean {
    return this.commStatus === 'ON_SENDING';
  }

  toJSON(): IbpErrorData {
    const data: IbpErrorData = { code: this.code, message: this.message };
    if (this.retryable) data.retryable = true;
    if (this.commStatus !== undefined) data.commStatus = this.commStatus;
    if (this.details !== undefined) data.details = this.details;
    return data;
  }

  /** Rebuilds an error sent as data; an unknown code becomes IBP_ERR_INTERNAL with the code in details. */
  static fromJSON(data: unknown): IbpError {
    if (typeof data !== 'object' || data === null) {
      return new IbpError('IBP_ERR_INTERNAL', `malformed error data: ${String(data)}`);
    }
    const d = data as Partial<IbpErrorData>;
    const message = typeof d.message === 'string' ? d.message : 'no message';
    if (typeof d.code === 'string' && isErrorCode(d.code)) {
      return new IbpError(d.code, message, {
        retryable: d.retryable === true,
        commStatus: isCommStatus(d.commStatus) ? d.commStatus : undefined,
        details: d.details,
      });
    }
    return new IbpError('IBP_ERR_INTERNAL', message, { details: { code: d.code, ...d.details } });
  }
}

function isCommStatus(v: unknown): v is CommStatus {
  return v === 'NOT_SENT' || v === 'ON_SENDING' || v === 'COMPLETED';
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** Wraps anything thrown into an IbpError (an IbpError passes through unchanged). */
export function toIbpError(err: unknown, code: ErrorCode = 'IBP_ERR_INTERNAL'): IbpError {
  if (err instanceof IbpError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new IbpError(code, message, { cause: err });
}
