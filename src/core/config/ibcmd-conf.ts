/**
 * `etc/ibcmd.conf`, the remote command agent's config (SPEC §2.6; the original never documented where its
 * lists live, so the layout is ours: see docs/rcmd.md). Schema, defaults, loader and the default text
 * `ibcmd -a init` writes, in the original's lenient JSON style.
 */
import { z } from 'zod';
import { IbpError } from '../errors.js';
import { flagField, hostField, intField, isHostText, portField, secondsField, textField } from './fields.js';
import { parseLenientDocument } from './lenient-json.js';
import { deepFreeze, readConfigText, type DeepReadonly } from './load.js';
import { logSectionSchema, resolveLogSection } from './log-section.js';
import { issuesToProblems, problemsToError } from './problems.js';

/** Defaults of ibcmd.conf. */
export const IBCMD_DEFAULTS = {
  port: 26001,
  max_connections: 16,
  auth_timeout: 10,
  idle_timeout: 300,
  secret_file: 'keys/ibcmd.secret',
  work_dir: '.',
  path: '/usr/local/bin:/usr/bin:/bin',
  timeout: 60,
  max_output_size: 1024 * 1024,
  max_concurrent: 4,
  allow_non_ascii: false,
  /** Whole-command patterns refused on top of the built-in character rules (`*` matches anything here). */
  blacklist: [
    '* -exec*', '* -execdir*', '* -ok *', '* -okdir*', '* -delete*', '* -fprint*', '* -fls *',
    '*--to-command*', '*--checkpoint-action*', '*--use-compress-program*', '*--rsh-command*', '*--files-from*',
    '* @*',
  ] as readonly string[],
  /** Allowed commands, word by word (`*`/`?` inside one word, a last word `**`: any further words). */
  whitelist: [
    'ibas -s *', 'ibas -a start', 'ibas -a stop', 'ibma -s *', 'ibms -s *',
    'ls', 'ls **', 'tail -n * log/*.log', 'df -h', 'uptime', 'hostname', 'date', 'date +*',
  ] as readonly string[],
  max_file_size: 64 * 1024 * 1024,
  /** Home-relative paths getfile/putfile refuse (`*` inside one segment, `**` across segments). */
  file_deny: ['etc/ibcmd.conf', 'keys/**', 'run/**', 'log/ibcmd_*'] as readonly string[],
} as const;

const pattern = () => textField({ minLength: 1, maxLength: 1024 });
const patternList = (def: readonly string[]) => z.array(pattern()).default([...def]);

/** Schema of `ibcmd.conf`. */
export const ibcmdConfSchema = z.strictObject({
  ibcmd: z.strictObject({
    server: z.strictObject({
      ip: hostField(),
      port: portField(true),
      max_connections: intField(1, 10_000).default(IBCMD_DEFAULTS.max_connections),
      auth_timeout: secondsField(0, { exclusiveMin: true }).default(IBCMD_DEFAULTS.auth_timeout),
      idle_timeout: secondsField(0, { exclusiveMin: true }).default(IBCMD_DEFAULTS.idle_timeout),
    }),
    security: z.strictObject({
      secret_file: textField({ minLength: 1, maxLength: 4096 }).default(IBCMD_DEFAULTS.secret_file),
    }).prefault({}),
    exec: z.strictObject({
      work_dir: textField({ minLength: 1, maxLength: 4096 }).default(IBCMD_DEFAULTS.work_dir),
      path: textField({ minLength: 1, maxLength: 4096 }).default(IBCMD_DEFAULTS.path),
      timeout: secondsField(0, { exclusiveMin: true, max: 86_400 }).default(IBCMD_DEFAULTS.timeout),
      max_output_size: intField(1, 1024 * 1024 * 1024).default(IBCMD_DEFAULTS.max_output_size),
      max_concurrent: intField(1, 1000).default(IBCMD_DEFAULTS.max_concurrent),
      allow_non_ascii: flagField().default(IBCMD_DEFAULTS.allow_non_ascii),
      blacklist: patternList(IBCMD_DEFAULTS.blacklist),
      whitelist: patternList(IBCMD_DEFAULTS.whitelist),
    }).prefault({}),
    file: z.strictObject({
      max_file_size: intField(1, 2 ** 40).default(IBCMD_DEFAULTS.max_file_size),
      deny: patternList(IBCMD_DEFAULTS.file_deny),
    }).prefault({}),
    log: logSectionSchema().default({}),
  }),
}).transform((c) => ({
  ibcmd: {
    ...c.ibcmd,
    log: resolveLogSection(c.ibcmd.log, {
      main: { output: 'file::log/ibcmd_main.log' },
      audit: { output: 'file::log/ibcmd_audit.log' },
    }),
  },
}));

/** A validated, frozen `ibcmd.conf`: `cfg.ibcmd.server.port`, `cfg.ibcmd.exec.whitelist`, `cfg.ibcmd.log.audit_output`. */
export type IbcmdConfig = DeepReadonly<z.output<typeof ibcmdConfSchema>>;

/** Parses `ibcmd.conf` text. @throws IbpError IBP_ERR_CONFIG_SYNTAX / _UNKNOWN_KEY / _INVALID. */
export function parseIbcmdConf(text: string, fileName: string): IbcmdConfig {
  const doc = parseLenientDocument(text, fileName);
  const r = ibcmdConfSchema.safeParse(doc.value);
  if (!r.success) throw problemsToError(issuesToProblems(r.error.issues, doc));
  return deepFreeze(r.data);
}

/** Reads and validates an `ibcmd.conf`. @example loadIbcmdConf(join(home.etc, 'ibcmd.conf')).ibcmd.server.port */
export function loadIbcmdConf(path: string): IbcmdConfig {
  return parseIbcmdConf(readConfigText(path), path);
}

const s = (v: string) => JSON.stringify(v);
const list = (items: readonly string[], indent: string) => `[\n${items.map((x) => `${indent}\t${s(x)}`).join(' ,\n')}\n${indent}]`;

/** The default `etc/ibcmd.conf` of an agent listening on ip:port (port 0: any free port). */
export function defaultIbcmdConfText(opts: { ip: string; port: number }): string {
  if (typeof opts.ip !== 'string' || !isHostText(opts.ip)) {
    throw new IbpError('IBP_ERR_CONFIG_INVALID', `ibcmd.server ip: got ${JSON.stringify(opts.ip)}, expected an IP address or host name`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new IbpError('IBP_ERR_CONFIG_INVALID', `ibcmd.server port: got ${String(opts.port)}, expected an integer from 0 to 65535`);
  }
  const d = IBCMD_DEFAULTS;
  return `// ibcmd.conf: remote command agent (written by ibcmd -a init). See docs/rcmd.md.
// Lenient JSON: comments, trailing commas and bare words such as INFO are fine.
{
	"ibcmd" :
	{
		"server" : // listen address
		{
			"ip" : ${s(opts.ip)} ,
			"port" : ${opts.port} , // 0: any free port (printed when it starts)
			"max_connections" : ${d.max_connections} , // connections served at once; more are refused
			"auth_timeout" : ${d.auth_timeout} , // seconds a peer has to authenticate
			"idle_timeout" : ${d.idle_timeout} // seconds an authenticated connection may stay idle
		} ,
		"security" :
		{
			"secret_file" : ${s(d.secret_file)} // shared secret (mode 0600), relative to the home; peers need a copy
		} ,
		"exec" : // execmd: no shell, argv only, scrubbed environment
		{
			"work_dir" : ${s(d.work_dir)} , // working directory of commands, relative to the home
			"path" : ${s(d.path)} , // PATH of commands (the only inherited-looking variable)
			"timeout" : ${d.timeout} , // seconds a command may run; then TERM, and KILL 2 s later
			"max_output_size" : ${d.max_output_size} , // bytes of stdout+stderr; more kills the command
			"max_concurrent" : ${d.max_concurrent} , // commands running at once; more are refused
			"allow_non_ascii" : ${d.allow_non_ascii ? 1 : 0} , // 1: non-ASCII letters and digits allowed in commands
			// refused when the whole command matches ('*' any characters, '?' one), after the built-in rules
			"blacklist" : ${list(d.blacklist, '\t\t\t')} ,
			// allowed commands, word by word: '*' and '?' stay inside one word, a last word '**' allows more words
			"whitelist" : ${list(d.whitelist, '\t\t\t')}
		} ,
		"file" : // putfile / getfile: confined to the home
		{
			"max_file_size" : ${d.max_file_size} , // bytes
			"deny" : ${list(d.file_deny, '\t\t\t')} // home-relative paths never read or written ('**' spans directories)
		} ,
		"log" :
		{
			"main_output" : "file::log/ibcmd_main.log" ,
			"main_loglevel" : INFO ,
			"audit_output" : "file::log/ibcmd_audit.log" // one JSON line per request
		}
	}
}
`;
}
