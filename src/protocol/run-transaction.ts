/**
 * The one place that drives `handler.run` for every protocol: `reply` may be called early
 * (send-response-ahead) or at the end; the response is sent when it is called; a second call is ignored;
 * a run that rejects or resolves without replying is answered with IBP_ERR_SERVER_APP_FAILED.
 */
import { IbpError, toIbpError } from '../core/errors.js';
import type { IncomingTransaction, PreRequest, ProtocolName, ServerLoad, TransactionHandler, TransactionOutcome } from './types.js';

/** What the adapters log through (pino's Logger fits). */
export interface ProtocolLogger {
  warn(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * Runs `tx` and sends its outcome with `send` exactly once. Resolves when `run` has settled and the
 * response has been sent (or failed to be sent: `send` reports its own errors).
 */
export function runTransaction(
  handler: TransactionHandler,
  tx: IncomingTransaction,
  send: (outcome: TransactionOutcome) => Promise<void>,
  log: ProtocolLogger,
): Promise<void> {
  return new Promise((resolve) => driveTransaction(handler, tx, send, log, resolve));
}

/**
 * {@link runTransaction} without a promise of its own: `send` may answer synchronously (return nothing) or
 * return a promise while it still writes (files); `done` runs once `run` has settled and the response is
 * out. `handler.run` is called synchronously.
 */
export function driveTransaction(
  handler: TransactionHandler,
  tx: IncomingTransaction,
  send: (outcome: TransactionOutcome) => Promise<void> | void,
  log: ProtocolLogger,
  done: () => void,
): void {
  let replied = false;
  let sending: Promise<void> | undefined;
  const doSend = (o: TransactionOutcome): void => {
    replied = true;
    try {
      const p = send(o);
      if (p) sending = p.catch((err: unknown) => log.warn({ err: toIbpError(err) }, 'sending the response failed'));
    } catch (err) {
      log.warn({ err: toIbpError(err) }, 'sending the response failed');
    }
  };
  const reply = (outcome: TransactionOutcome): void => {
    if (replied) {
      log.warn({ app: tx.app, jnlsno: tx.jnlsno }, 'reply called more than once; the later outcome is dropped');
      return;
    }
    doSend(normalizeOutcome(outcome));
  };
  const settled = (failed: boolean, failure: unknown): void => {
    if (!replied) {
      const error = failed
        ? new IbpError('IBP_ERR_SERVER_APP_FAILED', `app ${tx.app} failed: ${errMessage(failure)}`, { cause: failure })
        : new IbpError('IBP_ERR_SERVER_APP_FAILED', `app ${tx.app} finished without a response`);
      if (failed) log.warn({ err: toIbpError(failure), app: tx.app, jnlsno: tx.jnlsno }, 'transaction failed before replying');
      doSend({ error, body: EMPTY, responseFiles: [] });
    } else if (failed) {
      log.warn({ err: toIbpError(failure), app: tx.app, jnlsno: tx.jnlsno }, 'transaction failed after replying');
    }
    if (sending) void sending.then(done);
    else done();
  };
  let ran: Promise<void>;
  try {
    ran = Promise.resolve(handler.run(tx, reply));
  } catch (err) {
    ran = Promise.reject(err);
  }
  ran.then(() => settled(false, undefined), (err: unknown) => settled(true, err));
}

/** `handler.check`, with a throwing check turned into a refusal. */
export function safeCheck(handler: TransactionHandler, pre: PreRequest, protocol: ProtocolName, log: ProtocolLogger): IbpError | undefined {
  if (protocol !== 'IB2') {
    // HTTP and IB1 carry no protection (docs/protocol.md §Security): a server that signs or encrypts refuses them.
    const f = handler.securityFlags;
    if (f !== undefined && (f.sign || f.encrypt)) {
      return new IbpError('IBP_ERR_SEC_UNSUPPORTED', `this server signs or encrypts (sign_flag/encrypt_flag); ${protocol} cannot carry that protection, call over IB2`, {
        details: { protocol },
      });
    }
  }
  try {
    const r = handler.check(pre, protocol);
    return r === undefined ? undefined : toIbpError(r);
  } catch (err) {
    const e = toIbpError(err);
    log.warn({ err: e, app: pre.app }, 'handler.check threw; the transaction is refused');
    return e;
  }
}

/** `handler.load()`, or 0/0 when it throws. */
export function safeLoad(handler: TransactionHandler): ServerLoad {
  try {
    const l = handler.load();
    return { busy: l.busy, total: l.total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

function normalizeOutcome(o: TransactionOutcome): TransactionOutcome {
  const b: unknown = o?.body;
  const body = Buffer.isBuffer(b) ? b
    : b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    : b === undefined || b === null ? EMPTY : Buffer.from(String(b));
  const responseFiles = Array.isArray(o?.responseFiles) ? o.responseFiles : [];
  const out: TransactionOutcome = { body, responseFiles };
  if (o?.error !== undefined) out.error = toIbpError(o.error);
  return out;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
