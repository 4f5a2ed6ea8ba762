/**
 * A two-bank world for the two-phase-commit tests: two server nodes, BANKA and BANKB, each a real platform
 * with the example app `ibp_bank_transfer` and its own SQLite accounts database (<home>/file/bank.db); a fault
 * proxy in front of BANKB; and two coordinator homes:
 *
 * - `localHome` (node CORE, client only): no platform, so participants read its decision log directly
 *   (co-located);
 * - `coordHome` (node COORD): runs a platform of its own, so participants ask its decision over the network
 *   with the reserved app `ibp 2pc decision`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO_ROOT, startPlatform, stopPlatform, type ScratchApp } from '../../src/cli/scratch-cluster.js';
import { IbacEnv } from '../../src/client/index.js';
import { ParticipantRecords } from '../../src/platform/index.js';
import { startTestCluster, waitFor, type TestCluster } from './cluster.js';
import { writeClientView } from './client-view.js';
import { FaultProxy } from './fault-proxy.js';

export const BANK_APP: ScratchApp = { app: 'ibp_bank_transfer', source: join(REPO_ROOT, 'examples', 'so', 'ibp_bank_transfer.mjs'), timeout: 20 };
const ECHO_APP: ScratchApp = { app: 'ibp_test_echo', source: join(REPO_ROOT, 'examples', 'so', 'ibp_test_echo.mjs'), timeout: 20 };
/** A participant whose prepare sends its answer ahead, then fails. */
export const AHEAD_APP: ScratchApp = { app: 'ibp_t_2pc_ahead', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_2pc_ahead.mjs'), timeout: 20 };
const APPS = [BANK_APP, ECHO_APP, AHEAD_APP];

/** Only what the tests read of better-sqlite3 (a devDependency without bundled types). */
interface SqliteDb {
  prepare(sql: string): { get(...a: unknown[]): unknown; all(...a: unknown[]): unknown[] };
  close(): void;
}
type SqliteCtor = new (path: string, o?: { readonly?: boolean; fileMustExist?: boolean }) => SqliteDb;
const Database = createRequire(import.meta.url)('better-sqlite3') as SqliteCtor;

export interface Account {
  account: string;
  balance: number;
  held: number;
}
export type TransferState = 'prepared' | 'committed' | 'rolled_back' | 'absent';

export interface BankWorld {
  bankA: TestCluster;
  bankB: TestCluster;
  coord: TestCluster;
  /** The BANKA and BANKB server homes (their bank.db and participant records). */
  homeA: string;
  homeB: string;
  /** Client-only coordinator home (decision log read directly by participants). */
  localHome: string;
  /** Coordinator home with a platform (decision asked over the network). */
  coordHome: string;
  /** The COORD platform's address. */
  coordAddress: { ip: string; port: number };
  /** In front of BANKB for both coordinators. */
  proxy: FaultProxy;
  close(): Promise<void>;
}

/** Environment of every bank platform: better-sqlite3 resolvable, app faults on, a fast participant sweep. */
const PLATFORM_ENV = { NODE_PATH: join(REPO_ROOT, 'node_modules'), IBP_BANK_FAULTS: '1', IBP_2PC_SWEEP_MS: '150' };

export async function startBankWorld(): Promise<BankWorld> {
  const [bankA, bankB, coord] = await Promise.all([
    startTestCluster({ workers: 2, apps: APPS, serverNode: 'BANKA', clientNode: 'CORE', start: false }),
    startTestCluster({ workers: 2, apps: APPS, serverNode: 'BANKB', clientNode: 'CORE', start: false }),
    startTestCluster({ workers: 1, apps: APPS, serverNode: 'COORD', clientNode: 'CORE', start: false }),
  ]);
  let proxy: FaultProxy | undefined;
  const close = async (): Promise<void> => {
    await proxy?.close();
    await Promise.all([bankA.close(), bankB.close(), coord.close()]);
  };
  try {
    proxy = await FaultProxy.start({ port: bankB.ports[0]! });
    const nodes = [{ node: 'BANKA', ports: [bankA.ports[0]!] }, { node: 'BANKB', ports: [proxy.port] }];
    const coordHome = coord.serverHomes[0]!;
    writeClientView(bankA.clientHome, { clientNode: 'CORE', nodes, apps: APPS });
    writeClientView(coordHome, { clientNode: 'COORD', nodes, apps: APPS });
    const start = (c: TestCluster, home: string): Promise<void> => startPlatform(home, PLATFORM_ENV).then((p: ChildProcess) => void c.platforms.push(p));
    await Promise.all([start(bankA, bankA.serverHomes[0]!), start(bankB, bankB.serverHomes[0]!), start(coord, coordHome)]);
    return {
      bankA, bankB, coord,
      homeA: bankA.serverHomes[0]!, homeB: bankB.serverHomes[0]!,
      localHome: bankA.clientHome, coordHome,
      coordAddress: { ip: '127.0.0.1', port: coord.ports[0]! },
      proxy, close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Stops BANKA's platform (SIGTERM, graceful) and starts it again in the same home and port: fresh workers. */
export async function restartBankA(w: BankWorld): Promise<void> {
  await Promise.all(w.bankA.platforms.map((p) => stopPlatform(p, 10_000)));
  w.bankA.platforms.push(await startPlatform(w.homeA, PLATFORM_ENV));
}

/** Opens an account on a node through the app's plain handler. */
export async function openAccount(env: IbacEnv, node: string, account: string, balance: number): Promise<void> {
  await env.call(BANK_APP.app, { op: 'open', account, balance }, { node });
}

/** Reads a home's bank database directly (not through the platform). */
export function readBank(home: string): { accounts: Account[]; transfers: Map<string, TransferState> } {
  const path = join(home, 'file', 'bank.db');
  if (!existsSync(path)) return { accounts: [], transfers: new Map() };
  const db = new Database(path, { fileMustExist: true });
  try {
    const accounts = db.prepare('SELECT id AS account, balance, held FROM accounts ORDER BY id').all() as Account[];
    const rows = db.prepare('SELECT xid, state FROM transfers').all() as Array<{ xid: string; state: TransferState }>;
    return { accounts, transfers: new Map(rows.map((r) => [r.xid, r.state])) };
  } finally {
    db.close();
  }
}

export function accountOf(home: string, account: string): Account | undefined {
  return readBank(home).accounts.find((a) => a.account === account);
}

/**
 * The account of `xid`'s transfer row at `home`: the account it prepared on (it was prepared, whatever became of
 * it), null for a tombstone (a rollback of a transfer never prepared there: presumed abort), undefined for none.
 */
export function transferAccount(home: string, xid: string): string | null | undefined {
  const db = new Database(join(home, 'file', 'bank.db'), { fileMustExist: true });
  try {
    return (db.prepare('SELECT account FROM transfers WHERE xid = ?').get(xid) as { account: string | null } | undefined)?.account;
  } finally {
    db.close();
  }
}

export function transferState(home: string, xid: string): TransferState {
  return readBank(home).transfers.get(xid) ?? 'absent';
}

/** True when the home holds nothing of `xid` prepared: no participant record and no `prepared` row. */
export function settledAt(home: string, xid: string): boolean {
  return transferState(home, xid) !== 'prepared' && !new ParticipantRecords(home).list().some((r) => r.xid === xid);
}

/** What a finished transfer left on both nodes. */
export interface TransferOutcome {
  a: TransferState;
  b: TransferState;
  /** Both committed, or neither (rolled back or never prepared). */
  atomic: boolean;
  committed: boolean;
  alice: Account;
  bob: Account;
}

/**
 * Waits until neither bank holds `xid` prepared, then checks the invariant: both legs committed or both not,
 * the two balances add up to `total`, nothing held.
 */
export async function settledTransfer(w: BankWorld, xid: string, alice: string, bob: string, timeoutMs = 60_000): Promise<TransferOutcome> {
  await waitFor(() => settledAt(w.homeA, xid) && settledAt(w.homeB, xid), `${xid} settled on both banks`, timeoutMs);
  const a = transferState(w.homeA, xid);
  const b = transferState(w.homeB, xid);
  const committed = a === 'committed' && b === 'committed';
  const notCommitted = a !== 'committed' && b !== 'committed';
  return { a, b, atomic: committed || notCommitted, committed, alice: accountOf(w.homeA, alice)!, bob: accountOf(w.homeB, bob)! };
}

/** The platform log lines of `home` about resolving `xid` after a participant timeout (`via`: network or local). */
export function timeoutResolutions(home: string, xid: string): Array<{ decision: string; via: string }> {
  const out: Array<{ decision: string; via: string }> = [];
  for (const line of logLines(home, xid, 'timed out')) {
    try {
      const o = JSON.parse(line) as { xid?: string; decision?: string; via?: string };
      if (o.xid === xid && o.decision && o.via) out.push({ decision: o.decision, via: o.via });
    } catch { /* not a JSON line */ }
  }
  return out;
}

/** How many times a worker of `home` logged that it could not reach the decision of `xid` and stays prepared. */
export function unresolvedWarnings(home: string, xid: string): number {
  return logLines(home, xid, 'not resolved yet').filter((l) => l.includes('IBP_ERR_2PC_DECISION_UNREACHABLE')).length;
}

function logLines(home: string, xid: string, text: string): string[] {
  const dir = join(home, 'log');
  const out: string[] = [];
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line.includes(xid) && line.includes(text)) out.push(line);
    }
  }
  return out;
}
