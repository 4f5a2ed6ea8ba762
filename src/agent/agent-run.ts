/**
 * Running the agent daemon in this process (used by `ibma -a start`, both modes): logs as `ibma.conf`
 * says, the private key, the pid file `run/ibma.pid`, the sync loop, and the signals of the original:
 * TERM (and INT) exit, USR1 reopens the log files, USR2 is a clean stop that removes the config space
 * `run/ibma/` before exiting.
 */
import { mkdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import type { IbmaConfig } from '../core/config/index.js';
import { IbpError } from '../core/errors.js';
import type { IbpHome } from '../core/home.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { AgentDaemon, type AgentDaemonOptions, type AgentReady, type AgentRegistryClient } from './agent-daemon.js';
import { loadNodePrivateKey } from './key-decrypt.js';

/** The agent's pid file name inside `run/`. */
export const AGENT_PID_FILE = 'ibma.pid';

/** `<home>/run/ibma.pid`. */
export function agentPidPath(home: IbpHome): string {
  return join(home.run, AGENT_PID_FILE);
}

/** The pid recorded in a pid file if that process is alive, else undefined. */
export function livePid(pidPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidPath, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** What a registry client is made from (the registry's `RegistryClient` constructor takes these). */
export interface AgentClientOptions {
  ip: string;
  port: number;
  node: string;
  nodeKeyPem: string;
  /** `ibma.comm.min_compress_size`: the agent's compression threshold, stated to the registry on every call. */
  minCompressSize: number;
}

/** Options of {@link runAgent}. */
export interface RunAgentOptions {
  home: IbpHome;
  conf: IbmaConfig;
  /** Makes the registry client (the CLI passes `new RegistryClient(o)`). */
  createClient: (o: AgentClientOptions) => AgentRegistryClient;
  /** The host reported in heartbeats (default: this node's host on a local interface). */
  host?: { ip: string; port: number };
  /** `start_cleanly`: remove `run/ibma/` before starting. */
  cleanly?: boolean;
  /** Loop tuning (tests). */
  tuning?: Pick<AgentDaemonOptions, 'longPollSec' | 'heartbeatMs' | 'pruneEveryMs' | 'retryFirstMs' | 'retryMaxMs'>;
}

/** How a running agent ended. */
export type AgentStopKind = 'stopped' | 'cleaned';

/** A running agent. */
export interface RunningAgent {
  daemon: AgentDaemon;
  /** Resolves when the agent is ready (see {@link AgentDaemon.start}). */
  ready: Promise<AgentReady>;
  /** Resolves when the agent has stopped (after a signal or `stop()`), with how. */
  done: Promise<AgentStopKind>;
  /** Stops; `clean` also removes `run/ibma/` (SIGUSR2). Idempotent. */
  stop(clean?: boolean): Promise<void>;
}

/**
 * Starts the agent in this process: refuses when another agent of this home runs
 * (IBP_ERR_AGENT_ALREADY_RUNNING), loads `keys/<NODE>.key` (IBP_ERR_AGENT_KEY), writes the pid file,
 * installs the signal handlers and starts the loop.
 */
export async function runAgent(o: RunAgentOptions): Promise<RunningAgent> {
  const { home, conf } = o;
  const node = conf.ibma.this_node;
  const pidPath = agentPidPath(home);
  const other = livePid(pidPath);
  if (other !== undefined && other !== process.pid) {
    throw new IbpError('IBP_ERR_AGENT_ALREADY_RUNNING', `ibma of node ${node} is already running in ${home.root} (pid ${other}, ${pidPath})`);
  }
  const logs = conf.ibma.log;
  const mainLog = createLogger({ homeRoot: home.root, output: logs.main_output, level: logs.main_loglevel, name: 'ibma-main', base: { node } });
  const workerLog = createLogger({ homeRoot: home.root, output: logs.worker_output, level: logs.worker_loglevel, name: 'ibma-worker', base: { node } });
  const eventLog = createLogger({ homeRoot: home.root, output: logs.event_output, level: 'INFO', name: 'ibma-event', base: { node } });
  let key;
  try {
    key = loadNodePrivateKey(home.keys, node);
  } catch (err) {
    mainLog.error({ err }, 'cannot start');
    await closeAllLogs();
    throw err;
  }
  if (o.cleanly) {
    rmSync(home.replica, { recursive: true, force: true });
    mainLog.info({ dir: home.replica }, 'start_cleanly: config space removed');
  }
  mkdirSync(home.replica, { recursive: true });
  mkdirSync(home.so, { recursive: true });
  const daemon = new AgentDaemon({
    home,
    settings: {
      thisNode: node,
      ibmsServer: { ip: conf.ibms.server.ip, port: conf.ibms.server.port },
      retryConnectTimevalSec: conf.ibac.retry_connect_timeval,
      connectingTimeoutSec: conf.ibac.connecting_timeout,
      minCompressSize: conf.ibma.comm.min_compress_size,
    },
    client: o.createClient({ ip: conf.ibms.server.ip, port: conf.ibms.server.port, node, nodeKeyPem: key.pem, minCompressSize: conf.ibma.comm.min_compress_size }),
    privateKey: key.key,
    host: o.host,
    log: workerLog,
    events: eventLog,
    ...o.tuning,
  });
  writeFileAtomic(pidPath, `${process.pid}\n`);

  let resolveDone!: (k: AgentStopKind) => void;
  const done = new Promise<AgentStopKind>((r) => (resolveDone = r));
  let stopping: Promise<void> | undefined;
  const uninstallReopen = installLogReopenOnSignal('SIGUSR1');
  const onTerm = (sig: NodeJS.Signals): void => {
    mainLog.info({ signal: sig }, 'stop requested');
    void stop(false);
  };
  const onUsr2 = (): void => {
    mainLog.info({ signal: 'SIGUSR2' }, 'clean stop requested: the config space will be removed');
    void stop(true);
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  process.on('SIGUSR2', onUsr2);

  function stop(clean = false): Promise<void> {
    stopping ??= (async () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      process.off('SIGUSR2', onUsr2);
      await daemon.close();
      if (clean) {
        rmSync(home.replica, { recursive: true, force: true });
        mainLog.info({ dir: home.replica }, 'config space removed');
      }
      try {
        if (livePid(pidPath) === process.pid) unlinkSync(pidPath);
      } catch {
        /* already gone */
      }
      uninstallReopen();
      mainLog.info({ viewVersion: daemon.viewVersion }, 'ibma stopped');
      await closeAllLogs();
      resolveDone(clean ? 'cleaned' : 'stopped');
    })();
    return stopping;
  }

  mainLog.info({ pid: process.pid, registry: `${conf.ibms.server.ip}:${conf.ibms.server.port}`, home: home.root }, 'ibma starting');
  const ready = daemon.start();
  ready.then(
    (r) => mainLog.info(r, r.source === 'registry' ? 'ready: config in sync with the registry' : 'ready from the local snapshot; the registry is unreachable, retrying'),
    () => undefined,
  );
  return { daemon, ready, done, stop };
}
