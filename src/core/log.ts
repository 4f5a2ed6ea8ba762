/**
 * IBP's logs: pino loggers configured the original's way (an output `file::log/...` and a level),
 * writing NDJSON asynchronously to destinations shared per file, reopened on SIGUSR1 and closed
 * without loss. See docs/logging.md.
 *
 * @example
 * const log = createLogger({ homeRoot: home.root, output: 'file::log/ibas_main.log', level: 'DEBUG', name: 'ibas' });
 * const wlog = log.child({ worker: 3 });
 * wlog.info({ app: 'ECIF_QUERY' }, 'app loaded');
 * await closeAllLogs();
 */
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { IbpError } from './errors.js';
import { acquireLogStream, type LogStream } from './log-destination.js';
import { parseLogOutput, toPinoLevel, type LogOutputVars } from './log-output.js';

export * from './log-output.js';
export {
  checkLogRotation,
  closeAllLogs,
  flushAllLogs,
  installLogReopenOnSignal,
  reopenAllLogs,
  watchLogRotation,
} from './log-destination.js';

/** A pino logger: `child()` works as usual and errors are logged under `err`. */
export type IbpLogger = Logger;

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** The IBP home root; a relative `file::` path is taken from here. */
  homeRoot: string;
  /** `file::<path>`, `stdout` or `stderr`. */
  output: string;
  /** `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL` (any case; `NOTICE` = `INFO`). */
  level: string;
  /** The role writing, e.g. `ibas-monitor` or `ibas-worker`: the `name` field of every record. */
  name: string;
  /** Values of `%d` (worker index) and `%s` (app code) in the output path. */
  vars?: LogOutputVars;
  /** Fields added to every record (after `pid` and `hostname`). */
  base?: Record<string, unknown>;
}

const HOSTNAME = hostname();

/** The stream behind each logger made here (children share their parent's, found by prototype). */
const streams = new WeakMap<object, LogStream>();

/**
 * Creates a logger writing to `output` at `level`. Records are NDJSON with `level` as the upper-case
 * name, `time` in ISO 8601 UTC, `pid`, `hostname`, `name`, the `base` fields, then the call's fields
 * and `msg`. The file's directory is created if missing.
 * @throws IbpError IBP_ERR_LOG_OUTPUT (bad output), IBP_ERR_CONFIG_INVALID (bad level),
 *   IBP_ERR_LOG_OPEN (the file cannot be opened).
 */
export function createLogger(opts: LoggerOptions): IbpLogger {
  if (typeof opts?.name !== 'string' || opts.name.length === 0) {
    throw new IbpError('IBP_ERR_INTERNAL', `createLogger needs a name, got ${JSON.stringify(opts?.name)}`);
  }
  const level = toPinoLevel(opts.level);
  const output = parseLogOutput(opts.output, opts.homeRoot, opts.vars);
  const stream = acquireLogStream(output);
  const logger = pino(
    {
      name: opts.name,
      level,
      base: { pid: process.pid, hostname: HOSTNAME, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label.toUpperCase() }) },
    },
    stream,
  );
  streams.set(logger, stream);
  return logger;
}

/**
 * Gives back the destination of a logger made by `createLogger` (or of its parent, for a child);
 * the file is flushed and closed once no logger uses it. Records logged afterwards are dropped.
 * Idempotent; a logger not made here is ignored.
 */
export async function closeLogger(logger: IbpLogger): Promise<void> {
  for (let o: object | null = logger; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const stream = streams.get(o);
    if (stream !== undefined) return stream.release();
  }
}

/** Options of `appLoggerFactory`: `output` usually holds `%s`, e.g. `file::log/app_%s.log`. */
export interface AppLoggerOptions {
  homeRoot: string;
  output: string;
  level: string;
  /** `%d` for the path, when it has one (the worker index). */
  vars?: { d?: number | string };
  base?: Record<string, unknown>;
}

/**
 * Returns a function giving the logger of an app code, made on first use and cached, so each app
 * opens at most one destination (`%s` in `output` is the app code). Records carry `app`.
 * The output and level are checked at once.
 * @throws IbpError IBP_ERR_LOG_OUTPUT or IBP_ERR_CONFIG_INVALID now; the returned function throws
 *   IBP_ERR_LOG_OUTPUT for an app code unusable in a file name, IBP_ERR_LOG_OPEN if the file cannot be opened.
 * @example
 * const appLog = appLoggerFactory({ homeRoot, output: 'file::log/app_%s.log', level: 'INFO' });
 * appLog('ECIF_QUERY').info('called');
 */
export function appLoggerFactory(opts: AppLoggerOptions): (app: string) => IbpLogger {
  toPinoLevel(opts.level);
  parseLogOutput(opts.output, opts.homeRoot, { ...opts.vars, s: 'app' });
  const cache = new Map<string, IbpLogger>();
  return (app: string): IbpLogger => {
    let logger = cache.get(app);
    if (logger === undefined) {
      logger = createLogger({
        homeRoot: opts.homeRoot,
        output: opts.output,
        level: opts.level,
        name: 'app',
        vars: { ...opts.vars, s: app },
        base: { ...opts.base, app },
      });
      cache.set(app, logger);
    }
    return logger;
  };
}
