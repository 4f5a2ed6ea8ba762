/**
 * The ibas platform as a service of the generic master (src/master/, SPEC §8.1/§8.4): `ibas -a start` runs a
 * `Master` whose one service, `ibas`, is an ibas generation (generation-main.ts: the worker pool and its workers).
 *
 * - The master binds `ibas.server` ip:port, holds the socket for the platform's whole life and hands it to each
 *   generation as LISTEN_FDS fd 3; it owns the pid file `run/ibas_<ip>-<port>.pid` and its lock, and restarts a
 *   generation that dies (a crash right after a start is throttled: 0.1 s, 0.2 s, … 30 s).
 * - The service is `server-ready = notify`: a generation is ready once its pool serves (READY=1).
 * - Upgrade (SIGUSR2, also SIGHUP; `ibas -a restart_graceful`) is the master's soft restart: ibas.conf is read
 *   again (it must still name the same address), a new generation starts on the same socket beside the old one,
 *   and only once it is ready does the old one get SIGTERM (it drains: GOAWAY, requests on the wire served). If
 *   the new one fails (bad config, exits, not ready within `IBP_UPGRADE_READY_TIMEOUT_MS`), it is killed and the
 *   old one keeps serving. The outcome goes to `run/ibas_<ip>-<port>.upgrade` (what `restart_graceful` reads).
 * - SIGTERM/SIGINT: soft stop (the generation drains, then the master unlocks and exits); twice: kill now.
 *   SIGUSR1: reopen the log files, passed on to the generations (and by them to their workers).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadIbasConf } from '../core/config/index.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { Master, resolveServiceSettings, type MasterStatus, type ServiceSettings } from '../master/index.js';
import { PidFileLock } from '../master/pid-lock.js';
import { resolvePlatformSettings, type PlatformSettings } from './settings.js';
import { upgradeReadyTimeoutMs, upgradeStatusPathOf, writeUpgradeStatus } from './upgrade.js';

const GENERATION_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'generation-main.js');
/** The service's name in the master (and in `LISTEN_FDNAMES`). */
export const IBAS_SERVICE = 'ibas';
/** How long a generation may take to drain at a stop or upgrade before the master kills it. */
const STOP_TIMEOUT_S = 120;

/**
 * The master's service for an ibas instance, as a `*.cf` file would give it:
 * `server-command = node generation-main.js --home HOME --config ibas.conf`, `server-service = ibas://ip:port`,
 * `server-proc-count = 1`, `server-ready = notify`, `server-ready-timeout` from `IBP_UPGRADE_READY_TIMEOUT_MS`.
 */
export function ibasServiceSettings(s: PlatformSettings, env: NodeJS.ProcessEnv = process.env): ServiceSettings {
  const file = `${s.configPath} (ibas.server)`;
  const host = s.ip.includes(':') ? `[${s.ip}]` : s.ip;
  const keys: [string, string][] = [
    ['server-command', 'node'],
    ['server-service', `${IBAS_SERVICE}://${host}:${s.port}`],
    ['server-proc-count', '1'],
    ['server-ready', 'notify'],
    ['server-ready-timeout', String(upgradeReadyTimeoutMs(env) / 1000)],
    ['server-stop-timeout', String(STOP_TIMEOUT_S)],
  ];
  const resolved = resolveServiceSettings(IBAS_SERVICE, file, [keys.map(([key, value], i) => ({ key, value, file, line: i + 1 }))], s.homeRoot);
  const command = [process.execPath, GENERATION_MAIN, '--home', s.homeRoot, '--config', s.configPath];
  return Object.freeze({ ...resolved, command: Object.freeze(command), keys: Object.freeze({ ...resolved.keys, 'server-command': command.join(' ') }) });
}

/** The pid of the generation serving now (ready), from a master's status. */
export function servingGenerationPid(st: MasterStatus | undefined): number | undefined {
  const svc = st?.services.find((x) => x.name === IBAS_SERVICE);
  return svc?.processes.find((p) => p.ready && !p.stopping)?.pid;
}

/** The running ibas master's status (over its lock socket), or undefined when none runs. */
export async function ibasMasterStatus(s: Pick<PlatformSettings, 'pidPath'>): Promise<MasterStatus | undefined> {
  try {
    return (await PidFileLock.status(s.pidPath, 3000)) as MasterStatus | undefined;
  } catch {
    return undefined;
  }
}

export interface RunningIbas {
  master: Master;
  /** Resolves when the master has stopped. */
  done: Promise<void>;
  /** The serving generation's pid. */
  generationPid(): number | undefined;
  /** Soft stop: the generation drains, the master unlocks and exits its run. */
  stop(): Promise<void>;
  /**
   * What SIGUSR2 does: resolves with the old and new generations' pids once the new one is ready (the old one
   * then drains); rejects with IBP_ERR_PLATFORM_UPGRADE (the old one keeps serving). A call while one is under
   * way joins it.
   */
  upgrade(): Promise<{ fromPid?: number; toPid?: number }>;
}

/**
 * Runs the master of an ibas instance in this process and waits until its first generation serves.
 * @throws IbpError IBP_ERR_PLATFORM_ALREADY_RUNNING (the pid file is locked), IBP_ERR_PLATFORM_LISTEN (the address
 *   cannot be bound), IBP_ERR_PLATFORM_START (the first generation exited before it was ready; nothing is left
 *   running).
 */
export async function runIbasMaster(settings: PlatformSettings, env: NodeJS.ProcessEnv = process.env): Promise<RunningIbas> {
  const log = createLogger({
    homeRoot: settings.homeRoot,
    output: settings.log.monitorOutput,
    level: settings.log.monitorLevel,
    name: 'ibas-master',
    base: { component: 'ibas-master' },
  });
  const { configPath, homeRoot, ip, port } = settings;
  // Read at the start and again at every graceful restart (the new generation gets the config as it is now).
  const load = (): ServiceSettings[] => {
    const now = resolvePlatformSettings(loadIbasConf(configPath), homeRoot, configPath);
    if (now.ip !== ip || now.port !== port) {
      throw new IbpError(
        'IBP_ERR_PLATFORM_UPGRADE',
        `${configPath} now names ${now.ip}:${now.port} but the platform listens on ${ip}:${port}: a graceful restart keeps the listen address (stop and start to move it)`,
      );
    }
    return [ibasServiceSettings(now, env)];
  };
  let master: Master;
  try {
    master = await Master.start({ load, pidFile: settings.pidPath, log, cwd: homeRoot, env: { ...env, IBP_HOME: homeRoot } });
  } catch (err) {
    await closeAllLogs();
    const e = toIbpError(err);
    if (e.code === 'IBP_ERR_MASTER_LOCKED') throw new IbpError('IBP_ERR_PLATFORM_ALREADY_RUNNING', `ibas ${settings.instanceName} is already running: ${e.message}`, { cause: e });
    if (e.code === 'IBP_ERR_MASTER_LISTEN') throw new IbpError('IBP_ERR_PLATFORM_LISTEN', `cannot listen on ${ip}:${port}: ${e.message}`, { cause: e });
    throw e;
  }
  try {
    await master.ready();
  } catch (err) {
    await master.destroy();
    await closeAllLogs();
    throw new IbpError('IBP_ERR_PLATFORM_START', `ibas ${settings.instanceName} did not start: ${toIbpError(err).message}`, { cause: err });
  }
  const generationPid = (): number | undefined => servingGenerationPid(master.status());

  const statusPath = upgradeStatusPathOf(settings);
  let upgrading: Promise<{ fromPid?: number; toPid?: number }> | undefined;
  let stopping = false;
  const upgrade = (): Promise<{ fromPid?: number; toPid?: number }> => {
    if (upgrading) return upgrading;
    if (stopping) return Promise.reject(new IbpError('IBP_ERR_PLATFORM_UPGRADE', 'the platform is stopping; no graceful restart'));
    const attempt = (async () => {
      const masterPid = process.pid;
      const fromPid = generationPid();
      writeUpgradeStatus(statusPath, { state: 'starting', masterPid, fromPid, atMs: Date.now() });
      log.info({ fromPid }, 'graceful restart: starting a new generation from the code and config on disk');
      const r = await master.restart();
      if (!r.ok) {
        const cause = r.error ?? new IbpError('IBP_ERR_MASTER_START', 'unknown');
        const toPid = r.services[0]?.processes[0]?.pid;
        const e = new IbpError('IBP_ERR_PLATFORM_UPGRADE', `the new generation failed to start: ${cause.code}: ${cause.message}`, { cause });
        log.error({ err: e, fromPid, toPid }, 'graceful restart failed; this generation keeps serving');
        writeUpgradeStatus(statusPath, { state: 'failed', masterPid, fromPid, toPid, error: e.toJSON(), atMs: Date.now() });
        throw e;
      }
      const toPid = generationPid();
      writeUpgradeStatus(statusPath, { state: 'switched', masterPid, fromPid, toPid, atMs: Date.now() });
      log.info({ fromPid, toPid }, 'new generation ready: the old one stops accepting, moves its connections on and exits');
      return { fromPid, toPid };
    })().finally(() => (upgrading = undefined));
    upgrading = attempt;
    return attempt;
  };

  const uninstallLogReopen = installLogReopenOnSignal('SIGUSR1');
  const onUsr1 = (): void => {
    master.reopenOutputs();
    master.signal('SIGUSR1');
  };
  const onUpgrade = (sig: NodeJS.Signals): void => {
    if (upgrading) log.warn({ signal: sig }, 'graceful restart requested while one is under way: ignored');
    upgrade().catch(() => undefined);
  };
  let stops = 0;
  const onStop = (sig: NodeJS.Signals): void => {
    stops++;
    stopping = true;
    log.info({ signal: sig }, stops === 1 ? 'graceful stop requested' : 'second stop signal: killing the generations now');
    void (stops === 1 ? master.close() : master.destroy());
  };
  process.on('SIGUSR1', onUsr1);
  process.on('SIGUSR2', onUpgrade);
  process.on('SIGHUP', onUpgrade);
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  const done = master.done.then(async () => {
    process.off('SIGUSR1', onUsr1);
    process.off('SIGUSR2', onUpgrade);
    process.off('SIGHUP', onUpgrade);
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    uninstallLogReopen();
    await closeAllLogs();
  });
  const stop = async (): Promise<void> => {
    stopping = true;
    await master.close();
    await done;
  };
  return { master, done, generationPid, stop, upgrade };
}
