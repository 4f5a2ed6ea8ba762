/**
 * The agent's TCP server: accepts connections up to `max_connections`, serves each (agent-connection.ts),
 * and stops gracefully: no new connections, idle ones closed at once, requests in flight finished within a
 * grace period, then running commands killed.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { IbpError } from '../core/errors.js';
import type { IbpLogger } from '../core/log.js';
import type { AgentContext } from './agent-context.js';
import { serveConnection, type ConnectionState } from './agent-connection.js';
import { AuditLog } from './audit-log.js';
import { FrameChannel } from './channel.js';
import { CommandAudit } from './command-audit.js';
import { HomePaths } from './home-paths.js';
import { readSecretFile } from './secret.js';
import type { RcmdSettings } from './settings.js';
import { FrameType, jsonBody } from './wire.js';

/** Options of {@link RcmdServer}. */
export interface RcmdServerOptions {
  settings: RcmdSettings;
  log: IbpLogger;
}

interface Served {
  channel: FrameChannel;
  state: ConnectionState;
  done: Promise<void>;
}

/** `created` → `listening` → `closing` → `closed`. */
export type RcmdServerState = 'created' | 'listening' | 'closing' | 'closed';

/**
 * The remote command agent. Reads the secret and compiles the lists at construction, so a bad secret or
 * config fails before anything listens.
 * @example
 * const server = new RcmdServer({ settings, log });
 * const { port } = await server.listen();
 * await server.close();
 */
export class RcmdServer {
  readonly #ctx: AgentContext;
  readonly #stopNow = new AbortController();
  readonly #served = new Set<Served>();
  #server: Server | undefined;
  #state: RcmdServerState = 'created';
  #closing: Promise<void> | undefined;
  #address: { ip: string; port: number } | undefined;

  constructor(opts: RcmdServerOptions) {
    const s = opts.settings;
    const secret = readSecretFile(s.secretPath);
    this.#ctx = {
      settings: s,
      secret,
      commands: new CommandAudit({ blacklist: s.blacklist, whitelist: s.whitelist, allowNonAscii: s.allowNonAscii }),
      paths: new HomePaths(s.homeRoot, s.fileDeny),
      auditLog: new AuditLog(s.auditPath),
      log: opts.log,
      running: { count: 0 },
      stopNow: this.#stopNow.signal,
    };
  }

  get state(): RcmdServerState {
    return this.#state;
  }

  /** The bound address (after listen). */
  get address(): { ip: string; port: number } {
    if (this.#address === undefined) throw new IbpError('IBP_ERR_INTERNAL', 'the ibcmd server is not listening');
    return this.#address;
  }

  /** Connections being served now. */
  get connections(): number {
    return this.#served.size;
  }

  /** Commands running now. */
  get runningCommands(): number {
    return this.#ctx.running.count;
  }

  /** The audit log, for reopening on SIGUSR1. */
  get auditLog(): AuditLog {
    return this.#ctx.auditLog;
  }

  /** Binds and starts accepting. @throws IbpError IBP_ERR_RCMD_START when the address cannot be bound. */
  async listen(): Promise<{ ip: string; port: number }> {
    if (this.#state !== 'created') throw new IbpError('IBP_ERR_INTERNAL', `listen() in state ${this.#state}`);
    const s = this.#ctx.settings;
    const server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    server.maxConnections = s.maxConnections * 2; // hard cap; the soft one below answers BUSY
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new IbpError('IBP_ERR_RCMD_START', `cannot listen on ${s.ip}:${s.port}: ${err.code ?? err.message}`, { cause: err })));
      server.listen({ host: s.ip, port: s.port }, resolve);
    });
    server.on('error', (err) => this.#ctx.log.error({ err }, 'listen socket error'));
    const a = server.address();
    this.#address = { ip: s.ip, port: typeof a === 'object' && a !== null ? a.port : s.port };
    this.#server = server;
    this.#state = 'listening';
    return this.#address;
  }

  #accept(socket: Socket): void {
    const ch = new FrameChannel(socket);
    if (this.#state !== 'listening' || this.#served.size >= this.#ctx.settings.maxConnections) {
      const err = this.#state !== 'listening'
        ? new IbpError('IBP_ERR_RCMD_BUSY', 'the agent is stopping', { retryable: true })
        : new IbpError('IBP_ERR_RCMD_BUSY', `the agent serves ${this.#served.size} connections (server.max_connections); try later`, { retryable: true });
      this.#ctx.auditLog.write({ peer: ch.peer, action: 'auth', verdict: 'refused', reason: err.message, code: err.code, durationMs: 0 });
      ch.end({ type: FrameType.ERROR, body: jsonBody(err.toJSON()) });
      return;
    }
    const state: ConnectionState = { busy: false, stopping: false };
    const served: Served = { channel: ch, state, done: Promise.resolve() };
    served.done = serveConnection(ch, this.#ctx, state)
      .catch((err: unknown) => this.#ctx.log.error({ err, peer: ch.peer }, 'connection failed'))
      .finally(() => {
        ch.destroy();
        this.#served.delete(served);
      });
    this.#served.add(served);
  }

  /**
   * Graceful stop: stop accepting, close idle connections, let requests in flight finish for `graceMs`,
   * then kill running commands and close the rest. Idempotent.
   */
  close(graceMs = 10_000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    this.#state = 'closing';
    const closed = new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
    for (const s of this.#served) {
      s.state.stopping = true;
      if (!s.state.busy) s.channel.end();
    }
    const all = Promise.all([...this.#served].map((s) => s.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) this.destroy();
    await all;
    await closed;
    this.#ctx.auditLog.close();
    this.#state = 'closed';
  }

  /** Abrupt stop: kills running commands and drops every connection. */
  destroy(): void {
    this.#stopNow.abort();
    for (const s of this.#served) s.channel.destroy();
    this.#server?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
