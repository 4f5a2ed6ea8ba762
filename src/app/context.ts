/**
 * What an app package sees: the transaction context (the original's ibas server API, SPEC §6.4).
 *
 * An app package is an ES module in `so/` (the app's `bin`) that exports a default function (or `somain`):
 *
 * @example
 * ```js
 * // so/ibp_test_echo.mjs
 * export default async function somain(ctx) {
 *   ctx.respond(ctx.request);       // echo the request message back
 *   return 0;                       // 0 = success, like the original's somain
 * }
 * ```
 */
import type { Logger } from 'pino';

export interface TransactionContext {
  /** The request message body (IBASGetHttpEnv / req_body). */
  readonly request: Buffer;
  /** The request body as UTF-8 text. */
  requestText(): string;
  /** The request body parsed as JSON (throws a SyntaxError on bad JSON). */
  requestJson<T = unknown>(): T;
  /** Sets the response body (replaces what was set before). Objects are sent as JSON. */
  respond(body: Buffer | string | object): void;
  /** Appends to the response body (the original's MemcatHttpBuffer). */
  appendResponse(chunk: Buffer | string): void;

  /** Full paths of the request files (IBASGetRequestFile(i)). */
  readonly requestFiles: readonly string[];
  /** The request file whose file_id is `fileId` (IBASGetRequestFileById), or undefined. */
  requestFileById(fileId: string): string | undefined;
  /** Adds a response file; `path` must be inside this home's file/ (IBASPutResponseFile). At most 4. */
  putResponseFile(path: string): void;
  /** Creates a unique, empty attachment file in file/ named (file_id)_(10 random chars).tmp (IBPCreateTempFile). */
  createTempFile(fileId: string): string;
  /** Full path of an attachment name in file/ (IBASGetPathFilename). */
  pathOfFile(name: string): string;

  /** This server node (IBASGetThisNode). */
  readonly thisNode: string;
  /** The transaction code (IBASGetThisApp). */
  readonly app: string;
  readonly clientNode: string;
  readonly clientIp: string;
  readonly clientPort: number;
  /** The communication journal number the client sent (IBASGetCommJnlsno). */
  readonly jnlsno: string;
  /** The app's client comm timeout, seconds (IBASGetThisAppCommTimeout). */
  readonly commTimeoutSec: number;
  /** The app's server timeout T, seconds: timeout2, or timeout × 1.5 (IBASGetThisAppTimeout). */
  readonly appTimeoutSec: number;
  /** This worker's index in the pool, from 1 (IBASGetWorkerIndex). */
  readonly workerIndex: number;
  /** Workers in the pool (IBASGetWorkerProcessCount). */
  readonly workerCount: number;
  /** A value of this node's KV config, or undefined. */
  kv(key: string): string | undefined;
  /** A dyed (traced) transaction. */
  readonly trace: boolean;
  /** The protocol that carried the call. */
  readonly protocol: 'IB2' | 'IB1' | 'HTTP';

  /**
   * Sends the response now (IBASSendResponseAhead); the app keeps running and the worker stays busy until it
   * returns. Later changes to the response are ignored. Returns false if it was already sent.
   */
  sendResponseAhead(): boolean;

  /** Business information for the transaction log (IBASSetTransactionAddonInfo). */
  setTransactionAddonInfo(info: { channel?: string; busiJnlsno?: string; busiCode?: string; responseCode?: number; text?: string }): void;

  /** The app's logger (app_output / app_loglevel of ibas.conf). */
  readonly log: Logger;
}

/** The entry function an app package exports (default export or `somain`). Non-zero / throw = failure. */
export type AppEntry = (ctx: TransactionContext) => number | void | Promise<number | void>;
