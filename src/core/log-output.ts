/**
 * Parsing the original's log settings: an output (`file::log/ibas_main.log`, or our `stdout` / `stderr`)
 * and a level (`DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`). Pure functions; opening files is
 * `log-destination.ts`'s job.
 */
import { isAbsolute, resolve } from 'node:path';
import { IbpError } from './errors.js';

/** The level names a config file may use (case-insensitive; `NOTICE` is read as `INFO`). */
export const LOG_LEVEL_NAMES = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;

/** One of the original's log levels. */
export type LogLevelName = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';

/** A pino level name, as `toPinoLevel` returns it (`silent` only for the original's `NOLOG`). */
export type PinoLevelName = 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** What `%d` (worker index) and `%s` (app code) in an output path are replaced by. */
export interface LogOutputVars {
  d?: number | string;
  s?: string;
}

/** Where records go: a file (absolute path) or one of the process's standard streams. */
export type LogOutput = { kind: 'file'; path: string } | { kind: 'stdout' | 'stderr' };

/** The prefix of a file output, as in the original's config files. */
export const FILE_OUTPUT_PREFIX = 'file::';

const LEVELS: Readonly<Record<string, PinoLevelName>> = {
  DEBUG: 'debug',
  INFO: 'info',
  NOTICE: 'info',
  WARN: 'warn',
  ERROR: 'error',
  FATAL: 'fatal',
  NOLOG: 'silent',
};

/**
 * Maps a config level to pino's name, case-insensitively. `NOTICE` is `info`; the original's
 * `NOLOG` is `silent`.
 * @throws IbpError IBP_ERR_CONFIG_INVALID for anything else, naming the value.
 * @example toPinoLevel('WARN') // 'warn'
 */
export function toPinoLevel(level: string): PinoLevelName {
  const key = typeof level === 'string' ? level.trim().toUpperCase() : '';
  const found = Object.prototype.hasOwnProperty.call(LEVELS, key) ? LEVELS[key] : undefined;
  if (found === undefined) {
    throw new IbpError(
      'IBP_ERR_CONFIG_INVALID',
      `log level ${JSON.stringify(level)} is not one of ${LOG_LEVEL_NAMES.join(', ')} (NOTICE = INFO, NOLOG = off)`,
      { details: { value: level } },
    );
  }
  return found;
}

/**
 * Parses a log output. `file::<path>` is taken relative to `homeRoot` unless absolute; `%d` becomes
 * `vars.d` (worker index), `%s` becomes `vars.s` (app code) and `%%` a single `%`. `stdout` and
 * `stderr` (any case) are our extension.
 * @throws IbpError IBP_ERR_LOG_OUTPUT for any other form, an empty path, a `%d`/`%s` with no value,
 *   or a value that would leave its directory (`/`, `\`, `..`).
 * @example parseLogOutput('file::log/ibas_worker_%d.log', '/home/ecif', { d: 3 })
 *   // { kind: 'file', path: '/home/ecif/log/ibas_worker_3.log' }
 */
export function parseLogOutput(output: string, homeRoot: string, vars: LogOutputVars = {}): LogOutput {
  if (typeof output !== 'string') {
    throw badOutput(output, 'expected a string');
  }
  const text = output.trim();
  const lower = text.toLowerCase();
  if (lower === 'stdout' || lower === 'stderr') return { kind: lower };
  if (!text.startsWith(FILE_OUTPUT_PREFIX)) {
    throw badOutput(output, `expected ${FILE_OUTPUT_PREFIX}<path>, stdout or stderr`);
  }
  const raw = text.slice(FILE_OUTPUT_PREFIX.length);
  if (raw.length === 0) throw badOutput(output, `the path after ${FILE_OUTPUT_PREFIX} is empty`);
  const path = raw.replace(/%([ds%])/g, (_m, v: string) => {
    if (v === '%') return '%';
    if (v === 'd') return varValue(output, 'd', 'a worker index', vars.d);
    return varValue(output, 's', 'an app code', vars.s);
  });
  return { kind: 'file', path: isAbsolute(path) ? resolve(path) : resolve(homeRoot, path) };
}

function varValue(output: string, name: 'd' | 's', what: string, value: number | string | undefined): string {
  if (value === undefined || value === null) {
    throw badOutput(output, `%${name} needs ${what} and none was given`);
  }
  if (typeof value === 'number' && !(Number.isInteger(value) && value >= 0)) {
    throw badOutput(output, `%${name} must be a non-negative integer, got ${value}`);
  }
  const text = String(value);
  if (text.length === 0 || text === '.' || text === '..' || /[/\\\0]/.test(text)) {
    throw badOutput(output, `%${name} value ${JSON.stringify(text)} is not usable in a file name`);
  }
  return text;
}

function badOutput(output: unknown, why: string): IbpError {
  return new IbpError('IBP_ERR_LOG_OUTPUT', `log output ${JSON.stringify(output)} is not valid: ${why}`, {
    details: { value: output },
  });
}
