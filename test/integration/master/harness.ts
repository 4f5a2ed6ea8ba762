/**
 * Test harness for the generic master: a temp dir with a config dir, `ibp master` started from dist/ in its own
 * process group (its services are in that group too, so cleanup kills everything), its NDJSON log read from
 * stderr, and small clients for the fixture services.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, REPO_ROOT } from '../../../src/cli/scratch-cluster.js';

export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'master');
export const ECHO_SERVICE = join(FIXTURES, 'echo-service.mjs');
export const TRIGGER_JOB = join(FIXTURES, 'trigger-job.mjs');
/** `server-command` of the Node.js echo fixture. */
export const ECHO_COMMAND = `${process.execPath} ${ECHO_SERVICE}`;

/** One NDJSON record of the master's log (or a fixture's stderr line). */
export type LogRecord = Record<string, unknown> & { msg?: string; time?: string };

/** A temp dir with `etc/services/` and helpers to write service files into it. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), 'ibp-master-it-'));
  readonly services = join(this.dir, 'etc', 'services');
  readonly pidFile = join(this.dir, 'run', 'master.pid');

  constructor() {
    mkdirSync(this.services, { recursive: true });
  }

  /** Writes `etc/services/<name>` (lines joined). */
  write(name: string, ...lines: string[]): string {
    const p = join(this.services, name);
    writeFileSync(p, `${lines.join('\n')}\n`);
    return p;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `ibp master …` to completion (for --try-lock, --status, start errors). */
export function ibpMasterSync(args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [cliPath('ibp'), 'master', ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
}

/** A running `ibp master` with its log. */
export class MasterProcess {
  readonly child: ChildProcess;
  readonly records: LogRecord[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      this.stderr += d;
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          this.records.push(JSON.parse(line) as LogRecord);
        } catch {
          /* not a log line */
        }
      }
    });
  }

  /** Starts `ibp master <args>` in `cwd` and waits for "master ready" (rejects with its stderr if it exits). */
  static async start(args: string[], cwd: string, o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<MasterProcess> {
    const child = spawn(process.execPath, [cliPath('ibp'), 'master', ...args], { cwd, env: o.env ?? process.env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    const m = new MasterProcess(child);
    running.add(m);
    await m.waitLog((r) => r.msg === 'master ready', 'master ready', o.timeoutMs ?? 30_000);
    return m;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Master log records with this msg (optionally of one service). */
  logs(msg: string, service?: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg && r.component === 'master' && (service === undefined || r.service === service));
  }

  /** Waits for a record matching `pred`, failing early (with stderr) if the master exits. */
  async waitLog(pred: (r: LogRecord) => boolean, what: string, timeoutMs = 30_000): Promise<LogRecord> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.records.find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`master exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}:\n${this.stderr}`);
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; master stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits until `count` records match. */
  async waitCount(pred: (r: LogRecord) => boolean, count: number, what: string, timeoutMs = 30_000): Promise<LogRecord[]> {
    await this.waitLog(() => this.records.filter(pred).length >= count, `${count} × ${what}`, timeoutMs);
    return this.records.filter(pred);
  }

  /** host/port (or path) of a listen socket by its name, from the "listening" record. */
  address(listener: string): { host: string; port: number } | { path: string } {
    const r = this.records.find((x) => x.msg === 'listening' && x.listener === listener);
    if (!r) throw new Error(`no listening record for ${listener}`);
    const a = String(r.address);
    const m = /^(.*):(\d+)$/.exec(a);
    return m && !a.startsWith('/') ? { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) } : { path: a };
  }

  /** SIGTERM and wait for the exit. */
  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.kill(), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  /** SIGKILL to the whole process group (the master and every service it started). */
  kill(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

const running = new Set<MasterProcess>();

/** Kills every master started by this file's tests and their services (call from `after`). */
export async function killAllMasters(): Promise<void> {
  for (const m of running) {
    m.kill();
    await m.exited;
  }
  running.clear();
}

/** A line-oriented client of a fixture service: the first line is its JSON greeting. */
export class LineClient {
  readonly socket: Socket;
  #buf = '';
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(to: { host: string; port: number } | { path: string }) {
    this.socket = 'path' in to ? connect(to.path) : connect(to.port, to.host);
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    this.socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    this.socket.on('error', () => undefined);
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** The next line (rejects if the connection closes first). */
  async line(timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.#buf.indexOf('\n');
      if (nl >= 0) {
        const l = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return l;
      }
      if (this.#closed) throw new Error(`connection closed; pending ${JSON.stringify(this.#buf)}`);
      if (Date.now() > end) throw new Error('no line within the timeout');
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  send(line: string): void {
    this.socket.write(`${line}\n`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connects, reads the greeting (JSON for the Node fixture) and closes. */
export async function greeting(to: { host: string; port: number } | { path: string }): Promise<Record<string, unknown>> {
  const c = new LineClient(to);
  try {
    return JSON.parse(await c.line()) as Record<string, unknown>;
  } finally {
    c.close();
  }
}

/** Connects and reads one raw line (any service). */
export async function oneLine(to: { host: string; port: number } | { path: string }): Promise<string> {
  const c = new LineClient(to);
  try {
    return await c.line();
  } finally {
    c.close();
  }
}

/** Epoch ms of a log record's ISO time. */
export const timeOf = (r: LogRecord): number => Date.parse(String(r.time));
