/**
 * `ibp top` (the Tcn tools' `tcnas` live monitor, SPEC §8.3): a live terminal view of one platform's worker pool
 * (from the bulletin board) and of its per-app TPS and latency (from the statistics file the master writes about
 * once a second, `run/ibas_<ip>-<port>.stats`). Redraws in place with ANSI escapes every `--interval` ms;
 * `--once` prints one plain frame and exits (0 running, 1 not running). Ctrl-C quits.
 */
import { existsSync } from 'node:fs';
import { loadIbasConf } from '../core/config/index.js';
import { BoardReader, readStatsFile, resolvePlatformSettings, runningPid, type BoardView, type PlatformSettings, type PlatformStatsFile } from '../platform/index.js';
import { IbpError } from '../core/errors.js';
import { configPath, formatTable, homeFrom, parseCommandLine } from './args.js';

const USAGE = `usage: ibp top [--home DIR] [-f ibas.conf] [--interval MS] [--once]
  live view of the platform's worker pool and per-app TPS/latency; --once prints one frame (exit 0 running, 1 not)`;

/** What one frame shows. */
export interface TopFrameInput {
  settings: PlatformSettings;
  pid: number | undefined;
  board: BoardView | undefined;
  stats: PlatformStatsFile | undefined;
  nowMs: number;
}

function readBoard(path: string): BoardView | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const r = new BoardReader(path);
    try {
      return r.view();
    } finally {
      r.close();
    }
  } catch {
    return undefined;
  }
}

const secs = (ms: number): string => (ms / 1000).toFixed(1);
function uptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** The lines of one frame. */
export function renderTopFrame(f: TopFrameInput): string[] {
  const s = f.settings;
  const mode = s.mode === 'STATIC_WORKERPOOL' ? `${s.mode} (${s.maxCount})` : `${s.mode} (at most ${s.maxCount})`;
  const when = new Date(f.nowMs).toISOString().replace('T', ' ').slice(0, 19);
  if (f.pid === undefined || !f.board) return [`ibas ${s.instanceName}  not running   ${when}`];
  const live = f.board.slots.filter((x) => x.state !== 'empty');
  const count = (st: string): number => live.filter((x) => x.state === st).length;
  const lines = [
    `ibas ${s.instanceName}  pid ${f.pid}  ${mode}  up ${uptime(f.nowMs - f.board.startedAtMs)}   ${when}`,
    `workers ${live.length}: idle ${count('idle')}  busy ${count('busy')}  starting ${count('starting')}  retiring ${count('retiring')}   ` +
      `connections ${live.reduce((a, x) => a + x.connections, 0)}   waiting ${f.board.waiting ? 'yes' : 'no'}`,
    '',
  ];
  const workerRows = live
    .sort((a, b) => a.index - b.index || a.slot - b.slot)
    .map((x) => [x.index, x.pid, x.state, secs(f.nowMs - x.sinceMs), x.transactions, x.connections, x.app || '-']);
  lines.push(...formatTable(['worker', 'pid', 'state', 'for (s)', 'transactions', 'conns', 'app'], workerRows).split('\n'), '');
  const apps = f.stats?.apps ?? [];
  if (apps.length === 0) lines.push('no transactions yet');
  else {
    const window = `${(f.stats!.windowMs / 1000).toFixed(0)} s`;
    const rows = apps.map((a) => [a.app, a.tps.toFixed(1), a.avgMs.toFixed(2), a.maxMs.toFixed(2), a.count, a.errors]);
    lines.push(...formatTable(['app', `tps (${window})`, 'avg ms', 'max ms', 'total', 'errors'], rows).split('\n'));
    const age = f.nowMs - f.stats!.writtenAtMs;
    if (age > 5000) lines.push(`(statistics ${secs(age)} s old)`);
  }
  return lines;
}

/** `ibp top` with its arguments (after the subcommand); returns the exit code. */
export async function runTop(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    argv,
    { home: { type: 'string' }, f: { type: 'string', short: 'f' }, interval: { type: 'string' }, once: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const intervalMs = values.interval === undefined ? 1000 : Number(values.interval);
  if (!(intervalMs >= 50 && intervalMs <= 3_600_000)) throw new IbpError('IBP_ERR_USAGE', `--interval ${values.interval}: expected 50..3600000 ms`);
  const home = homeFrom(values.home);
  const path = configPath(home, values.f ?? 'ibas.conf');
  const settings = resolvePlatformSettings(loadIbasConf(path), home.root, path);
  const frame = (): { lines: string[]; running: boolean } => {
    const pid = runningPid(settings.pidPath);
    const board = pid === undefined ? undefined : readBoard(settings.boardPath);
    const stats = pid === undefined ? undefined : readStatsFile(settings.statsPath);
    return { lines: renderTopFrame({ settings, pid, board, stats, nowMs: Date.now() }), running: pid !== undefined && board !== undefined };
  };
  if (values.once) {
    const f = frame();
    process.stdout.write(`${f.lines.join('\n')}\n`);
    return f.running ? 0 : 1;
  }
  const tty = process.stdout.isTTY === true;
  const draw = (): void => {
    const { lines } = frame();
    // Home, each line cleared to its end, then everything below cleared: redraws in place without flicker.
    if (tty) process.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`);
    else process.stdout.write(`${lines.join('\n')}\n\n`);
  };
  if (tty) process.stdout.write('\x1b[?25l\x1b[2J');
  draw();
  const timer = setInterval(draw, intervalMs);
  await new Promise<void>((resolve) => {
    const quit = (): void => resolve();
    process.once('SIGINT', quit);
    process.once('SIGTERM', quit);
  });
  clearInterval(timer);
  if (tty) process.stdout.write('\x1b[?25h');
  return 0;
}
