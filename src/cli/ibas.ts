#!/usr/bin/env node
/** `ibas`: the server platform's command line (SPEC §2.5): start, stop, init, status, bulletin board. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError, type IbpErrorData } from '../core/errors.js';
import { initHomeDirs } from '../core/home.js';
import { parseLogOutput } from '../core/log.js';
import { defaultIbasConfText, defaultIbmaConfText, loadIbasConf } from '../core/config/index.js';
import {
  BoardReader,
  ibasMasterStatus,
  isProcessAlive,
  readUpgradeStatus,
  resolvePlatformSettings,
  runIbasMaster,
  runningPid,
  servingGenerationPid,
  upgradeReadyTimeoutMs,
  upgradeStatusPathOf,
  type PlatformSettings,
} from '../platform/index.js';
import { initialDynamicCount } from '../platform/pool-sizer.js';
import { checkIbasConfig, printCheckReport } from './ibas-check.js';
import { configPath, formatTable, homeFrom, parseCommandLine, runCli } from './args.js';

const USAGE = `usage: ibas [-f ibas.conf] -a start [--foreground]   start the platform under its master (daemon; --foreground stays attached)
       ibas [-f ibas.conf] -a stop                       graceful stop (finish in-flight transactions)
       ibas [-f ibas.conf] -a check                      check ibas.conf and the ibma.conf it names (exit 0 ok, 1 problems)
       ibas [-f ibas.conf] -a is_running                 exit 0 when the platform runs, 1 when not
       ibas [-f ibas.conf] -a restart_graceful           zero-downtime restart (SIGUSR2): new code and config, same listen socket
       ibas -a init [--ip IP] [--port PORT] [--this-node NODE]
                                                        create etc/ log/ file/ so/ keys/ run/ and default etc/ibas.conf, etc/ibma.conf
       ibas [-f ibas.conf] -s status | bbstat | bbdetail  state of the platform and its worker pool
options: --home DIR (default $IBP_HOME, else $HOME); a bare -f name is looked up in $HOME/etc`;

const MASTER_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'platform', 'master-main.js');

async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    argv,
    {
      f: { type: 'string', short: 'f' },
      a: { type: 'string', short: 'a' },
      s: { type: 'string', short: 's' },
      home: { type: 'string' },
      foreground: { type: 'boolean' },
      ip: { type: 'string' },
      port: { type: 'string' },
      'this-node': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help || (!values.a && !values.s)) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const home = homeFrom(values.home);
  if (values.a === 'init') return init(home, values.ip ?? '127.0.0.1', values.port ?? '18001', values['this-node'] ?? 'NODE');
  if (values.a === 'check') return printCheckReport(await checkIbasConfig(home, configPath(home, values.f ?? 'ibas.conf')), (t) => process.stdout.write(t));
  const settings = (): PlatformSettings => {
    const path = configPath(home, values.f ?? 'ibas.conf');
    return resolvePlatformSettings(loadIbasConf(path), home.root, path);
  };
  if (values.a) {
    switch (values.a) {
      case 'start':
        return values.foreground ? startForeground(settings()) : startDaemon(settings());
      case 'stop':
        return stop(settings());
      case 'is_running':
        return isRunning(settings());
      case 'restart_graceful':
        return restartGraceful(settings());
      default:
        throw new IbpError('IBP_ERR_USAGE', `unknown action -a ${values.a}\n\n${USAGE}`);
    }
  }
  switch (values.s) {
    case 'status':
      return status(settings());
    case 'bbstat':
      return bbstat(settings());
    case 'bbdetail':
      return bbdetail(settings());
    default:
      throw new IbpError('IBP_ERR_USAGE', `unknown show -s ${values.s}\n\n${USAGE}`);
  }
}

function init(home: ReturnType<typeof homeFrom>, ip: string, portText: string, thisNode: string): number {
  const port = Number.parseInt(portText, 10);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new IbpError('IBP_ERR_USAGE', `--port ${portText}: expected 1..65535`);
  const { created, existed } = initHomeDirs(home);
  for (const d of created) process.stdout.write(`created ${d}\n`);
  for (const d of existed) process.stdout.write(`warning: ${d} already exists\n`);
  for (const [name, text] of [
    ['ibas.conf', defaultIbasConfText({ ip, port })],
    ['ibma.conf', defaultIbmaConfText({ thisNode })],
  ] as const) {
    const p = join(home.etc, name);
    if (existsSync(p)) process.stdout.write(`warning: ${p} already exists, left as it is\n`);
    else {
      writeFileSync(p, text);
      process.stdout.write(`created ${p}\n`);
    }
  }
  process.stdout.write('next: start this host\'s agent (ibma -a start: it brings the config and the app packages from the registry),\n      or without a registry put packages in so/ and build the local config (ibp local-config); then ibas -a start\n');
  return 0;
}

/** `2 workers` (static), `DYNAMIC_WORKERPOOL, 1 workers, at most 5`, `FORK, a worker per connection, at most 5`. */
function poolSummary(s: PlatformSettings): string {
  if (s.mode === 'FORK') return `FORK, a worker per connection, at most ${s.maxCount}`;
  if (s.mode === 'DYNAMIC_WORKERPOOL') return `DYNAMIC_WORKERPOOL, ${initialDynamicCount(s.dynamic, s.maxCount)} workers, at most ${s.maxCount}`;
  return `${s.maxCount} workers`;
}

/** The master in this process: the first generation serves when this returns; runs until stopped. */
async function startForeground(s: PlatformSettings): Promise<number> {
  const m = await runIbasMaster(s);
  process.stdout.write(`ibas ${s.instanceName} ready on ${s.ip}:${s.port} (pid ${process.pid}, ${poolSummary(s)}); serving generation pid ${m.generationPid()}\n`);
  await m.done;
  return 0;
}

/** The master as a daemon (master-main.ts); returns once its first generation serves, or with why it did not. */
async function startDaemon(s: PlatformSettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  if (pid !== undefined) throw new IbpError('IBP_ERR_PLATFORM_ALREADY_RUNNING', `ibas ${s.instanceName} is already running (pid ${pid})`);
  // The daemon's own stdout/stderr (and its generations': a crash trace, say) go to the main log file, never to
  // our terminal: holding our pipes open would keep whoever ran `ibas -a start` waiting.
  const main = parseLogOutput(s.log.mainOutput, s.homeRoot);
  let outFd: number | 'ignore' = 'ignore';
  if (main.kind === 'file') {
    mkdirSync(dirname(main.path), { recursive: true });
    outFd = openSync(main.path, 'a');
  }
  const child = spawn(process.execPath, [MASTER_MAIN], {
    detached: true,
    cwd: s.homeRoot,
    stdio: ['ignore', outFd, outFd, 'ipc'],
    env: { ...process.env, IBP_MASTER: JSON.stringify(s) },
  });
  const outcome = await new Promise<{ type: string; pid?: number; generationPid?: number; error?: IbpErrorData }>((resolve) => {
    child.once('message', (m) => resolve(m as { type: string }));
    child.once('exit', (code, signal) => resolve({ type: 'failed', error: { code: 'IBP_ERR_PLATFORM_START', message: `master exited (code ${code}, signal ${signal}) before it was ready` } }));
  });
  if (typeof outFd === 'number') closeSync(outFd);
  if (outcome.type !== 'ready') throw IbpError.fromJSON(outcome.error);
  child.unref();
  child.disconnect?.();
  process.stdout.write(`ibas ${s.instanceName} started on ${s.ip}:${s.port} (pid ${outcome.pid}, ${poolSummary(s)}); serving generation pid ${outcome.generationPid}\n`);
  return 0;
}

async function stop(s: PlatformSettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  if (pid === undefined) throw new IbpError('IBP_ERR_PLATFORM_NOT_RUNNING', `ibas ${s.instanceName} is not running (no live pid in ${s.pidPath})`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      process.stdout.write(`ibas ${s.instanceName} stopped (pid ${pid})\n`);
      return 0;
    }
  }
  process.stderr.write(`ibas ${s.instanceName} (pid ${pid}) did not stop within 120 s\n`);
  return 1;
}

/**
 * SIGUSR2 to the master, then waits for the outcome it records in run/ibas_<ip>-<port>.upgrade: the new
 * generation ready (and the old one gone), or why it failed (the old one keeps serving; exit 1).
 */
async function restartGraceful(s: PlatformSettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  if (pid === undefined) throw new IbpError('IBP_ERR_PLATFORM_NOT_RUNNING', `ibas ${s.instanceName} is not running (no live pid in ${s.pidPath})`);
  const statusPath = upgradeStatusPathOf(s);
  const sentAt = Date.now();
  process.kill(pid, 'SIGUSR2');
  const alive = isProcessAlive;
  const sleep = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
  const deadline = sentAt + upgradeReadyTimeoutMs() + 30_000;
  let switched: { fromPid?: number; toPid?: number } | undefined;
  while (switched === undefined) {
    const st = readUpgradeStatus(statusPath);
    if (st && st.masterPid === pid && st.atMs >= sentAt) {
      if (st.state === 'failed') {
        throw new IbpError('IBP_ERR_PLATFORM_UPGRADE', `graceful restart of ibas ${s.instanceName} failed; generation ${st.fromPid ?? '?'} keeps serving: ${st.error?.message ?? 'no reason recorded'}`);
      }
      if (st.state === 'switched') switched = st;
    }
    if (switched) break;
    if (!alive(pid)) throw new IbpError('IBP_ERR_PLATFORM_UPGRADE', `the ibas ${s.instanceName} master (pid ${pid}) exited during the graceful restart`);
    if (Date.now() > deadline) throw new IbpError('IBP_ERR_PLATFORM_UPGRADE', `the ibas ${s.instanceName} master (pid ${pid}) reported no outcome of the graceful restart in time`);
    await sleep();
  }
  const { fromPid, toPid } = switched;
  process.stdout.write(`ibas ${s.instanceName}: new generation ready (pid ${toPid}); pid ${fromPid} finishes its transactions\n`);
  const exitBy = Date.now() + 120_000;
  while (fromPid !== undefined && alive(fromPid)) {
    if (Date.now() > exitBy) {
      process.stderr.write(`ibas ${s.instanceName}: the old generation (pid ${fromPid}) has not exited within 120 s\n`);
      return 1;
    }
    await sleep();
  }
  process.stdout.write(`ibas ${s.instanceName} restarted gracefully: pid ${fromPid} → ${toPid} (master pid ${pid})\n`);
  return 0;
}

/** `-a is_running` (the Tcn tools' `tcns`): one line, exit 0 running / 1 not. */
function isRunning(s: PlatformSettings): number {
  const pid = runningPid(s.pidPath);
  process.stdout.write(pid === undefined ? `ibas ${s.instanceName} is not running\n` : `ibas ${s.instanceName} is running (pid ${pid})\n`);
  return pid === undefined ? 1 : 0;
}

async function status(s: PlatformSettings): Promise<number> {
  const pid = runningPid(s.pidPath);
  if (pid === undefined) {
    process.stdout.write(`ibas ${s.instanceName} is not running\n`);
    return 1;
  }
  const view = readBoard(s);
  const live = view ? view.slots.filter((x) => x.state !== 'empty').length : 0;
  const st = await ibasMasterStatus(s);
  const svc = st?.services[0];
  const gen = servingGenerationPid(st);
  const where = gen !== undefined ? `generation pid ${gen}` : svc?.throttledUntil ? `no generation: restart throttled until ${svc.throttledUntil}` : 'no generation serving';
  process.stdout.write(`ibas ${s.instanceName} is running (pid ${pid}, ${where}) on ${s.ip}:${s.port}, ${live} workers\n`);
  return 0;
}

function readBoard(s: PlatformSettings) {
  if (!existsSync(s.boardPath)) return undefined;
  const r = new BoardReader(s.boardPath);
  try {
    return r.view();
  } finally {
    r.close();
  }
}

function bbstat(s: PlatformSettings): number {
  const view = readBoard(s);
  if (!view || runningPid(s.pidPath) === undefined) {
    process.stdout.write(`ibas ${s.instanceName} is not running\n`);
    return 1;
  }
  const count = (st: string): number => view.slots.filter((x) => x.state === st).length;
  const live = view.slots.filter((x) => x.state !== 'empty');
  const served = live.reduce((a, x) => a + x.transactions, 0);
  const conns = live.reduce((a, x) => a + x.connections, 0);
  process.stdout.write(
    formatTable(['workers', 'idle', 'busy', 'starting', 'retiring', 'connections', 'transactions', 'waiting'], [
      [live.length, count('idle'), count('busy'), count('starting'), count('retiring'), conns, served, view.waiting ? 'yes' : 'no'],
    ]) + '\n',
  );
  return 0;
}

function bbdetail(s: PlatformSettings): number {
  const view = readBoard(s);
  if (!view || runningPid(s.pidPath) === undefined) {
    process.stdout.write(`ibas ${s.instanceName} is not running\n`);
    return 1;
  }
  const rows = view.slots
    .filter((x) => x.state !== 'empty')
    .map((x) => [x.index, x.pid, x.state, new Date(x.sinceMs).toISOString(), x.transactions, x.connections, x.app || '-']);
  process.stdout.write(formatTable(['index', 'pid', 'state', 'since', 'transactions', 'connections', 'app'], rows) + '\n');
  return 0;
}

void runCli(() => main(process.argv.slice(2)));
