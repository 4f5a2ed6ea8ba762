/**
 * `ibp master`: the generic master's command line (lib-zc's `zmaster_server_main`, SPEC §8.1 #105–#110).
 * Options keep lib-zc's single-dash spelling (`-C`, `-pid-file`, `--try-lock`); `--pid-file` is accepted too.
 * Signals: SIGHUP = soft restart with the re-read config; SIGTERM/SIGINT = soft stop (a second one kills the
 * services at once); SIGUSR1 = reopen the master's log and the services' `server-log` files.
 */
import { IbpError, toIbpError } from '../core/errors.js';
import { closeAllLogs, createLogger, installLogReopenOnSignal } from '../core/log.js';
import { loadAloneService, loadServiceDir, Master, PidFileLock, type AloneSource, type ServiceSettings } from '../master/index.js';

export const MASTER_USAGE = `usage: ibp master -C CONFIG_DIR [-pid-file FILE] [-log OUTPUT] [-log-level LEVEL]
           run every service of CONFIG_DIR/*.cf (shared settings in CONFIG_DIR/*.gcf) in the foreground
       ibp master -pid-file FILE --try-lock    exit 0 when no master holds FILE's lock, 1 when one does, 2 on error
       ibp master -pid-file FILE --status      print the running master's status (JSON); exit 1 if none
       ibp master alone [-server-config-path DIR] [-config FILE.cf] [-KEY VALUE]... [-log OUTPUT]
           run one service in the foreground; settings from DIR/*.gcf, FILE.cf, then the command line
           (later settings override earlier ones, command-line keys override files), e.g.
           ibp master alone -server-command "node echo.js" -server-service echo://127.0.0.1:7000
signals: HUP soft restart with the re-read config; TERM/INT soft stop (twice: kill now); USR1 reopen logs
-log: stderr (default), stdout or file::PATH; -log-level: DEBUG, INFO (default), WARN, ERROR`;

interface MainArgs {
  configDir?: string;
  pidFile?: string;
  tryLock: boolean;
  status: boolean;
  log: string;
  logLevel: string;
}

function usage(problem: string): IbpError {
  return new IbpError('IBP_ERR_USAGE', `${problem}\n\n${MASTER_USAGE}`);
}

function value(argv: string[], i: number): string {
  const v = argv[i + 1];
  if (v === undefined) throw usage(`${argv[i]} needs a value`);
  return v;
}

function parseMainArgs(argv: string[]): MainArgs {
  const a: MainArgs = { tryLock: false, status: false, log: 'stderr', logLevel: 'INFO' };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '-C':
      case '--config-dir':
        a.configDir = value(argv, i++);
        break;
      case '-pid-file':
      case '--pid-file':
        a.pidFile = value(argv, i++);
        break;
      case '--try-lock':
      case '-try-lock':
        a.tryLock = true;
        break;
      case '--status':
        a.status = true;
        break;
      case '-log':
      case '--log':
        a.log = value(argv, i++);
        break;
      case '-log-level':
      case '--log-level':
        a.logLevel = value(argv, i++);
        break;
      default:
        throw usage(`unknown argument ${argv[i]}`);
    }
  }
  return a;
}

/** Alone mode's arguments: `-KEY VALUE` pairs in order; -log, -log-level, -pid-file are the master's. */
function parseAloneArgs(argv: string[], o: { out: string; level: string; pidFile?: string }): AloneSource[] {
  const sources: AloneSource[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') throw usage(`alone: expected -KEY VALUE, got ${arg}`);
    const key = arg.replace(/^--?/, '');
    const v = value(argv, i);
    const position = i + 2; // counted from `master`
    i++;
    if (key === 'server-config-path') sources.push({ kind: 'config-path', dir: v });
    else if (key === 'config') sources.push({ kind: 'config', file: v });
    else if (key === 'log') o.out = v;
    else if (key === 'log-level') o.level = v;
    else if (key === 'pid-file') o.pidFile = v;
    else sources.push({ kind: 'key', key, value: v, position });
  }
  return sources;
}

/** `ibp master …`: returns the exit code. */
export async function runMasterCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${MASTER_USAGE}\n`);
    return 0;
  }
  let load: () => ServiceSettings[];
  let pidFile: string | undefined;
  const logOpts = { out: 'stderr', level: 'INFO' } as { out: string; level: string; pidFile?: string };
  if (argv[0] === 'alone') {
    const sources = parseAloneArgs(argv.slice(1), logOpts);
    load = () => [loadAloneService(sources)];
    pidFile = logOpts.pidFile;
  } else {
    const a = parseMainArgs(argv);
    if (a.tryLock || a.status) {
      if (!a.pidFile) throw usage(`${a.tryLock ? '--try-lock' : '--status'} needs -pid-file FILE`);
      if (a.tryLock) {
        // 1 must mean "held" only: a script takes it as "a master runs". Any error is 2.
        try {
          return (await PidFileLock.probe(a.pidFile)) === 'free' ? 0 : 1;
        } catch (err) {
          const e = toIbpError(err);
          process.stderr.write(`${e.code}: ${e.message}\n`);
          return 2;
        }
      }
      const st = await PidFileLock.status(a.pidFile);
      if (st === undefined) {
        process.stdout.write(`no master runs for ${a.pidFile}\n`);
        return 1;
      }
      process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
      return 0;
    }
    if (!a.configDir) throw usage('-C CONFIG_DIR is required');
    const dir = a.configDir;
    load = () => loadServiceDir(dir);
    pidFile = a.pidFile;
    logOpts.out = a.log;
    logOpts.level = a.logLevel;
  }
  const log = createLogger({ homeRoot: process.cwd(), output: logOpts.out, level: logOpts.level, name: 'ibp-master', base: { component: 'master' } });
  return runInForeground(log, { load, pidFile });
}

async function runInForeground(log: ReturnType<typeof createLogger>, o: { load: () => ServiceSettings[]; pidFile?: string }): Promise<number> {
  let master: Master | undefined;
  let stopSignals = 0;
  const onStop = (sig: NodeJS.Signals): void => {
    stopSignals++;
    log.info({ signal: sig }, stopSignals === 1 ? 'soft stop requested' : 'second stop signal: killing the services now');
    if (master) void (stopSignals === 1 ? master.close() : master.destroy());
  };
  const onHup = (): void => {
    if (master) void master.reload();
    else log.warn('SIGHUP before the master is ready: ignored');
  };
  const onUsr1 = (): void => master?.reopenOutputs();
  const uninstallReopen = installLogReopenOnSignal('SIGUSR1');
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  process.on('SIGUSR1', onUsr1);
  try {
    master = await Master.start({ ...o, log });
    if (stopSignals > 0) void master.close();
    await master.done;
    return 0;
  } catch (err) {
    const e = toIbpError(err);
    log.error({ err: e, code: e.code }, 'master did not start');
    throw e;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
    process.off('SIGUSR1', onUsr1);
    uninstallReopen();
    await closeAllLogs();
  }
}
