/**
 * The `log` section every daemon config has: `event_output`, `<role>_output` / `<role>_loglevel` pairs,
 * and the deprecated `iblog_server` (accepted and ignored: logpipe replaced it).
 */
import { z } from 'zod';
import type { IssueKind } from './fields.js';

/** Log levels as the config files spell them (NOTICE is read as INFO; case does not matter). */
export const CONFIG_LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export type ConfigLogLevel = (typeof CONFIG_LOG_LEVELS)[number];

/** The default event log of every daemon. */
export const DEFAULT_EVENT_OUTPUT = 'file::log/event.log';

const ROLE_KEY_RE = /^([a-z][a-z0-9_]*)_(output|loglevel)$/;
const LEVEL_TEXT = `one of ${CONFIG_LOG_LEVELS.join(', ')}, NOTICE (any case)`;

/** Reads a level word (case-insensitive, NOTICE = INFO); undefined when it is not one. */
export function parseConfigLogLevel(v: unknown): ConfigLogLevel | undefined {
  if (typeof v !== 'string') return undefined;
  const up = v.trim().toUpperCase();
  if (up === 'NOTICE') return 'INFO';
  return (CONFIG_LOG_LEVELS as readonly string[]).includes(up) ? (up as ConfigLogLevel) : undefined;
}

/**
 * A resolved log section: `event_output`, then `<role>_output` and `<role>_loglevel` for the daemon's
 * roles (always present) and for any other role the file names (e.g. `comm_output`).
 */
export type LogSection<R extends string> = { event_output: string }
  & { [K in `${R}_output`]: string }
  & { [K in `${R}_loglevel`]: ConfigLogLevel }
  & { [key: string]: string };

/** The raw section as read: only what the file says (levels normalised). */
export type RawLogSection = Record<string, string>;

/** Schema of a `log` section; add `.default({})` for a missing one. Defaults are filled by {@link resolveLogSection}. */
export function logSectionSchema() {
  return z.unknown().transform((v, ctx): RawLogSection => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      ctx.addIssue({ code: 'custom', message: 'an object', params: { kind: 'invalid' satisfies IssueKind } });
      return z.NEVER;
    }
    const out: RawLogSection = {};
    for (const [key, value] of Object.entries(v)) {
      if (key === 'iblog_server') {
        if (typeof value !== 'string') issue(ctx, [key], 'a string (deprecated and ignored)');
        continue;
      }
      const m = ROLE_KEY_RE.exec(key); // event_output is the role "event"'s output
      if (m === null) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'a known key', params: { kind: 'unknown_key' satisfies IssueKind } });
        continue;
      }
      if (m[2] === 'output') {
        if (typeof value === 'string') out[key] = value;
        else issue(ctx, [key], 'a log output string such as "file::log/x.log"');
      } else {
        const level = parseConfigLogLevel(value);
        if (level !== undefined) out[key] = level;
        else issue(ctx, [key], LEVEL_TEXT);
      }
    }
    return out;
  });
}

function issue(ctx: z.core.$RefinementCtx, path: string[], expected: string): void {
  ctx.addIssue({ code: 'custom', path, message: expected, params: { kind: 'invalid' satisfies IssueKind } });
}

/** Role → default output (and level, INFO when not given). */
export type LogDefaults<R extends string> = Record<R, { output: string; level?: ConfigLogLevel }>;

/**
 * Fills in the defaults: `event_output`, each known role's output and level, and INFO for any other
 * role whose `<role>_output` is given without a level.
 */
export function resolveLogSection<R extends string>(raw: RawLogSection, defaults: LogDefaults<R>): LogSection<R> {
  const out: Record<string, string> = { event_output: raw.event_output ?? DEFAULT_EVENT_OUTPUT };
  for (const role of Object.keys(defaults) as R[]) {
    out[`${role}_output`] = raw[`${role}_output`] ?? defaults[role].output;
    out[`${role}_loglevel`] = raw[`${role}_loglevel`] ?? defaults[role].level ?? 'INFO';
  }
  for (const [key, value] of Object.entries(raw)) {
    if (key in out) continue;
    out[key] = value;
    const m = ROLE_KEY_RE.exec(key);
    if (m !== null && m[2] === 'output' && raw[`${m[1]}_loglevel`] === undefined) out[`${m[1]}_loglevel`] = 'INFO';
  }
  return out as LogSection<R>;
}
