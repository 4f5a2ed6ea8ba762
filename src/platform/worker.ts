/**
 * A platform worker: takes connections from the master, runs one transaction at a time (a transaction of
 * another connection waits for its turn), loads app packages through the cache, and keeps its bulletin-board
 * slot current. After `max_process_count` transactions it retires at a transaction boundary: long connections
 * are moved on with GOAWAY, never failed.
 */
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { IbpError, toIbpError } from '../core/errors.js';
import { appServerTimeoutSec } from '../core/cluster-model.js';
import { ConfigReplica } from '../agent/index.js';
import {
  serveConnection,
  type IncomingTransaction,
  type PreRequest,
  type ProtocolName,
  type NodeKeys,
  type SecurityContext,
  type SecurityFlags,
  type ServerConnection,
  type ServerLoad,
  type TransactionHandler,
  type TransactionOutcome,
} from '../protocol/index.js';
import { AppPackageCache } from './app-cache.js';
import { BoardSlot } from './bulletin-board.js';
import type { PlatformSettings } from './settings.js';
import { TxContext } from './tx-context.js';
import { Watchdog } from './watchdog.js';
import { PING_APP, pingAnswer } from './ping-answer.js';
import type { WorkerMessage } from './ipc.js';
import { TWO_PC_DECISION_APP, answerDecisionRequest, decodeTwoPhaseEnvelope, looksLikeTwoPhaseEnvelope } from '../client/index.js';
import { TwoPhaseParticipant } from './two-phase-participant.js';
import type { ConfigSnapshot } from '../agent/index.js';
import type { AppConfig } from '../core/cluster-model.js';

export interface PlatformWorkerOptions {
  settings: PlatformSettings;
  /** 1-based worker index (IBASGetWorkerIndex). */
  index: number;
  slot: number;
  log: Logger;
  appLog: (app: string) => Logger;
  send: (msg: WorkerMessage) => void;
  /** Called once the worker has retired or stopped and every connection is closed. */
  onDrained: () => void;
  /** Called as each transaction is answered: its app, latency (ms) and whether it succeeded (`ibp top`). */
  onTransaction?: (app: string, ms: number, ok: boolean) => void;
}

const EMPTY = Buffer.alloc(0);
/** A worker looks for a newer config snapshot (one stat) at most this often, between transactions. */
const REPLICA_REFRESH_INTERVAL_MS = 100;

export class PlatformWorker implements TransactionHandler {
  readonly securityFlags: SecurityFlags;
  #o: PlatformWorkerOptions;
  #replica: ConfigReplica;
  #board: BoardSlot;
  #cache: AppPackageCache;
  #watchdog: Watchdog;
  #twoPhase: TwoPhaseParticipant;
  #connections = new Set<ServerConnection>();
  #turn: Promise<void> = Promise.resolve();
  #busy = false;
  #transactions = 0;
  #retiring = false;
  #stopping = false;
  #drainedCalled = false;
  #masterWaiting = false;
  #lastRefreshMs = -Infinity;
  /** Answers the running transaction with an error (if not answered yet); undefined between transactions. */
  #abort: ((err: unknown) => boolean) | undefined;

  constructor(o: PlatformWorkerOptions) {
    this.#o = o;
    this.securityFlags = Object.freeze({ ...o.settings.security });
    this.#replica = ConfigReplica.open(join(o.settings.homeRoot, 'run', 'ibma'));
    this.#board = new BoardSlot(o.settings.boardPath, o.slot, o.index);
    // IBP_SO_WATCH=0: no fs.watch on so/ (a file system without notifications): one stat per transaction.
    this.#cache = new AppPackageCache(o.settings.maxSoCacheCount, { watch: process.env.IBP_SO_WATCH !== '0', log: o.log });
    this.#watchdog = new Watchdog();
    this.#board.set('idle', { connections: 0, transactions: 0, app: '' });
    this.#twoPhase = new TwoPhaseParticipant({
      homeRoot: o.settings.homeRoot,
      fileDir: join(o.settings.homeRoot, 'file'),
      log: o.log,
      thisNode: () => this.#replica.snapshot.thisNode,
      runResolution: (tx, fn) => this.#runResolution(tx, fn),
    });
    this.#twoPhase.start();
  }

  get transactions(): number {
    return this.#transactions;
  }

  /** A connection handed over by the master. */
  accept(socket: Socket): void {
    const conn = serveConnection(socket, this, {
      fileDir: join(this.#o.settings.homeRoot, 'file'),
      limits: this.#o.settings.limits,
      logger: this.#o.log,
      maxTransactions: this.#o.settings.maxConnTx,
    });
    this.#connections.add(conn);
    // Handed over just as this worker decided to retire (the master had not heard yet): never drop it, since
    // a request may already be on the wire; announce the close and serve what arrives meanwhile.
    if (this.#retiring || this.#stopping) conn.goAway();
    this.#writeBoard();
    void conn.closed.then(() => {
      this.#connections.delete(conn);
      this.#writeBoard();
      this.#maybeDrained();
    });
  }

  check(pre: PreRequest, _protocol: ProtocolName): IbpError | undefined {
    if (this.#stopping) return new IbpError('IBP_ERR_SERVER_SHUTTING_DOWN', 'the server is stopping');
    this.#refreshReplicaIfIdle();
    const snap = this.#replica.snapshot;
    if (pre.app === PING_APP) return pingAnswer(snap.thisNode, this.load());
    if (pre.app === TWO_PC_DECISION_APP) return undefined;
    const app = snap.app(pre.app);
    if (!app || !snap.servesApp(pre.app)) {
      return new IbpError('IBP_ERR_SERVER_APP_NOT_FOUND', `node ${snap.thisNode} does not serve app ${pre.app}`);
    }
    if (app.invalid) return new IbpError('IBP_ERR_SERVER_APP_NOT_FOUND', `app ${pre.app} is marked invalid`);
    return undefined;
  }

  /** This node's keys and compression threshold from the replica (asked per IB2 transaction when a flag is on). */
  securityContext(): SecurityContext {
    const snap = this.#replica.snapshot;
    return {
      keys: snap.thisNodeConfig(),
      minCompressSize: snap.minCompressSize,
      node: snap.thisNode,
      refreshKeys: () => this.#freshKeys(),
    };
  }

  /** A message named a key this snapshot does not hold: the agent may just have written a rotation. */
  #freshKeys(): NodeKeys | undefined {
    try {
      this.#replica.refresh();
    } catch (err) {
      this.#o.log.warn({ err }, 'config replica refresh failed; keeping the current snapshot');
    }
    return this.#replica.snapshot.thisNodeConfig();
  }

  load(): ServerLoad {
    const l = this.#board.load();
    this.#masterWaiting = l.waiting;
    return { busy: l.busy, total: Math.max(l.total, 1) };
  }

  async run(tx: IncomingTransaction, reply: (outcome: TransactionOutcome) => void): Promise<void> {
    // One transaction at a time per worker: wait for the previous one (of any connection) to finish.
    const previous = this.#turn;
    let release!: () => void;
    this.#turn = new Promise<void>((r) => (release = r));
    await previous;
    this.#busy = true;
    const t0 = performance.now();
    let replied = false;
    const max = this.#o.settings.maxProcessCount;
    const last = max > 0 && this.#transactions + 1 >= max;
    const send = (o: TransactionOutcome): void => {
      if (replied) return;
      replied = true;
      this.#o.onTransaction?.(tx.app, performance.now() - t0, o.error === undefined);
      // The last transaction before a recycle: GOAWAY goes out before its response, so a long-connection
      // client learns to move on before it could send another request here.
      if (last) this.retire('recycle');
      reply(o);
    };
    this.#abort = (err) => {
      const answered = !replied;
      send({ error: new IbpError('IBP_ERR_SERVER_APP_FAILED', `app ${tx.app} failed: ${(err as Error)?.message ?? String(err)}`), body: EMPTY, responseFiles: [] });
      return answered;
    };
    try {
      await this.#execute(tx, send);
    } catch (err) {
      send({ error: toIbpError(err, 'IBP_ERR_SERVER_APP_FAILED'), body: EMPTY, responseFiles: [] });
    } finally {
      this.#watchdog.disarm();
      this.#abort = undefined;
      this.#transactions++;
      this.#busy = false;
      // The master's waiting flag, as read with the load for this transaction's response.
      const waiting = this.#masterWaiting;
      this.#masterWaiting = false;
      this.#writeBoard();
      release();
      if (waiting && !this.#retiring && !this.#stopping) this.#o.send({ type: 'idle' });
      if (!this.#retiring && max > 0 && this.#transactions >= max) this.retire('recycle');
      this.#maybeDrained();
    }
  }

  async #execute(tx: IncomingTransaction, send: (o: TransactionOutcome) => void): Promise<void> {
    if (tx.app === TWO_PC_DECISION_APP) {
      send({ body: answerDecisionRequest(this.#o.settings.homeRoot, tx.body), responseFiles: [] });
      return;
    }
    const snap = this.#replica.snapshot;
    const app = snap.app(tx.app);
    if (!app) {
      send({ error: new IbpError('IBP_ERR_SERVER_APP_NOT_FOUND', `app ${tx.app} is not configured`), body: EMPTY, responseFiles: [] });
      return;
    }
    const appTimeoutSec = appServerTimeoutSec(app);
    const deadlineMs = Date.now() + appTimeoutSec * 1000;
    this.#board.set('busy', { connections: this.#connections.size, transactions: this.#transactions, deadlineMs, app: tx.app });
    this.#watchdog.arm(deadlineMs);
    const pkg = join(this.#o.settings.homeRoot, 'so', app.bin);
    // A 2PC phase (docs/2pc.md): the package's prepare/commit/rollback export runs instead of its handler.
    const twoPhase = looksLikeTwoPhaseEnvelope(tx.body) ? decodeTwoPhaseEnvelope(tx.body) : undefined;
    const entry = twoPhase ? undefined : await this.#cache.entryOf(pkg, tx.app);
    // No response ahead in a 2PC phase: a prepare's answer is its vote, which may leave only once the prepare
    // has returned and its record says prepared (a hook that failed after sending ahead would have voted yes).
    const ctx: TxContext = this.#context(twoPhase ? { ...tx, body: twoPhase.body } : tx, snap, app, appTimeoutSec, twoPhase ? () => undefined : () => {
      ctx.markSent();
      send({ body: ctx.responseBody(), responseFiles: [...ctx.responseFiles] });
    });
    let rc: number | void;
    try {
      rc = twoPhase ? await this.#twoPhase.run(twoPhase.header, await this.#cache.exportsOf(pkg, tx.app), ctx) : await entry!(ctx);
    } catch (err) {
      this.#o.log.error({ err, app: tx.app, jnlsno: tx.jnlsno }, 'app threw');
      // The platform's own 2PC errors (no hooks, a record that cannot be written) keep their code.
      const own = err instanceof IbpError && err.code.startsWith('IBP_ERR_2PC_') ? err : undefined;
      send({ error: own ?? new IbpError('IBP_ERR_SERVER_APP_FAILED', `app ${tx.app} failed: ${(err as Error)?.message ?? String(err)}`), body: EMPTY, responseFiles: [] });
      return;
    }
    if (typeof rc === 'number' && rc !== 0) {
      send({
        error: new IbpError('IBP_ERR_SERVER_APP_FAILED', `app ${tx.app} returned ${rc}`, { details: { rc } }),
        body: ctx.responseBody(),
        responseFiles: [],
      });
      return;
    }
    ctx.markSent();
    send({ body: ctx.responseBody(), responseFiles: [...ctx.responseFiles] });
  }

  #context(tx: IncomingTransaction, snap: ConfigSnapshot, app: Readonly<AppConfig>, appTimeoutSec: number, sendAhead: () => void): TxContext {
    return new TxContext({
      tx,
      thisNode: snap.thisNode,
      commTimeoutSec: app.timeout,
      appTimeoutSec,
      workerIndex: this.#o.index,
      workerCount: this.#o.settings.maxCount,
      fileDir: join(this.#o.settings.homeRoot, 'file'),
      kv: (k) => snap.kv(k),
      log: () => this.#o.appLog(tx.app).child({ jnlsno: tx.jnlsno, clientNode: tx.clientNode }),
      sendAhead,
    });
  }

  /**
   * Runs a 2PC resolution (a prepared participant whose timeout passed, docs/2pc.md) between transactions, with the
   * package's exports and a context for `tx`, under the app's watchdog deadline like a transaction.
   */
  async #runResolution(tx: IncomingTransaction, fn: (exports: Readonly<Record<string, unknown>>, ctx: TxContext) => Promise<void>): Promise<void> {
    const previous = this.#turn;
    let release!: () => void;
    this.#turn = new Promise<void>((r) => (release = r));
    await previous;
    this.#busy = true;
    try {
      const snap = this.#replica.snapshot;
      const app = snap.app(tx.app);
      if (!app) throw new IbpError('IBP_ERR_SERVER_APP_NOT_FOUND', `app ${tx.app} is not configured`);
      const appTimeoutSec = appServerTimeoutSec(app);
      this.#watchdog.arm(Date.now() + appTimeoutSec * 1000);
      const exports = await this.#cache.exportsOf(join(this.#o.settings.homeRoot, 'so', app.bin), tx.app);
      await fn(exports, this.#context(tx, snap, app, appTimeoutSec, () => undefined));
    } finally {
      this.#watchdog.disarm();
      this.#busy = false;
      this.#writeBoard();
      release();
      this.#maybeDrained();
    }
  }

  #refreshReplicaIfIdle(): void {
    if (this.#busy) return;
    const now = performance.now();
    if (now - this.#lastRefreshMs < REPLICA_REFRESH_INTERVAL_MS) return;
    this.#lastRefreshMs = now;
    try {
      this.#replica.refresh();
    } catch (err) {
      this.#o.log.warn({ err }, 'config replica refresh failed; keeping the current snapshot');
    }
  }

  #writeBoard(): void {
    const state = this.#retiring || this.#stopping ? 'retiring' : this.#busy ? 'busy' : 'idle';
    this.#board.set(state, { connections: this.#connections.size, transactions: this.#transactions, app: '' });
  }

  /**
   * Takes no more connections, moves the open ones on with GOAWAY, exits when they are closed. `stop` also refuses
   * requests that still arrive; `recycle` and `upgrade` (the old generation draining) serve them.
   */
  retire(reason: 'recycle' | 'stop' | 'upgrade'): void {
    if (reason === 'stop') this.#stopping = true;
    if (this.#retiring) {
      this.#maybeDrained();
      return;
    }
    this.#retiring = true;
    this.#o.send({ type: 'retiring', reason });
    this.#writeBoard();
    for (const c of this.#connections) c.goAway();
    this.#maybeDrained();
  }

  #maybeDrained(): void {
    if ((this.#retiring || this.#stopping) && this.#connections.size === 0 && !this.#busy && !this.#drainedCalled) {
      this.#drainedCalled = true;
      this.#o.onDrained();
    }
  }

  /**
   * An error escaped the app's code outside its call (an uncaught exception or unhandled rejection): answers the
   * running transaction with IBP_ERR_SERVER_APP_FAILED when it has no answer yet. True when one was answered.
   */
  failCurrent(err: unknown): boolean {
    return this.#abort?.(err) ?? false;
  }

  /** Immediately closes every connection (abrupt stop). */
  destroy(): void {
    for (const c of this.#connections) c.destroy();
  }

  async close(): Promise<void> {
    this.#twoPhase.close();
    this.#cache.close();
    await this.#watchdog.close();
    this.#board.close();
    this.#replica.close();
  }
}
