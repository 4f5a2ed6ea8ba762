/**
 * The command audit of `execmd` (SPEC §2.6, feature #92): built-in character rules, then the configured
 * blacklist, then the whitelist, then the argument rules for every word the caller (not the operator) chose.
 * Only a command that passes all four becomes an argv; nothing here runs anything.
 */
import { characterProblem, compileGlob, hasWildcard } from './patterns.js';

/** The lists and switches of `ibcmd.conf` `exec` that the audit reads. */
export interface CommandPolicy {
  blacklist: readonly string[];
  whitelist: readonly string[];
  allowNonAscii: boolean;
  /** Longest command accepted, in characters (default 4096). */
  maxLength?: number;
}

/** Which step refused a command. */
export type AuditStage = 'syntax' | 'blacklist' | 'whitelist' | 'argument';

/** The audit's answer: an argv to run, or the stage, the rule and the reason of the refusal. */
export type AuditVerdict =
  | { allowed: true; argv: string[]; rule: string }
  | { allowed: false; stage: AuditStage; reason: string; rule?: string };

interface WordPattern {
  text: string;
  re: RegExp;
  /** A word without wildcards: the operator wrote it, so its value is trusted as is. */
  literal: boolean;
  /** The operator's pattern starts with '/': an absolute path is what it asks for. */
  absolute: boolean;
}

interface WhitelistEntry {
  text: string;
  words: WordPattern[];
  /** The last pattern word was `**`: any number of further words, each checked by the argument rules. */
  rest: boolean;
}

const DEFAULT_MAX_LENGTH = 4096;
/** Separators between the parts of one argument that may each be a path (`--out=x`, `host:x`, `a,b`). */
const PART_SEPARATORS = /[=:,@]/;
const ABSOLUTE_IN_ARG = /(^|[=:,@])\/|^-[A-Za-z0-9]\//;

/** Why a caller-chosen word is not acceptable, or undefined. `absoluteOk`: the operator's pattern is absolute. */
export function argumentProblem(word: string, absoluteOk: boolean): string | undefined {
  for (const part of word.split(PART_SEPARATORS)) {
    if (part.split('/').includes('..')) return "parent directory '..'";
  }
  if (!absoluteOk && ABSOLUTE_IN_ARG.test(word)) return 'absolute path (only paths inside the working directory)';
  return undefined;
}

function compileEntry(text: string): WhitelistEntry {
  const raw = text.trim().split(/ +/).filter((w) => w.length > 0);
  const rest = raw.length > 1 && raw[raw.length - 1] === '**';
  const words = (rest ? raw.slice(0, -1) : raw).map((w) => ({
    text: w,
    re: compileGlob(w, 'path'),
    literal: !hasWildcard(w),
    absolute: w.startsWith('/'),
  }));
  return { text, words, rest };
}

/**
 * A compiled policy. Build once from the config and call `check` per request.
 * @example
 * const audit = new CommandAudit({ blacklist: ['* -exec*'], whitelist: ['ls **', 'tail -n * log/*.log'], allowNonAscii: false });
 * audit.check('ls -l etc');          // { allowed: true, argv: ['ls', '-l', 'etc'], rule: 'ls **' }
 * audit.check('ls; rm -rf /');       // { allowed: false, stage: 'syntax', reason: "command separator ';' at 2" }
 */
export class CommandAudit {
  readonly #blacklist: { text: string; re: RegExp }[];
  readonly #whitelist: WhitelistEntry[];
  readonly #allowNonAscii: boolean;
  readonly #maxLength: number;

  constructor(policy: CommandPolicy) {
    this.#blacklist = policy.blacklist.map((text) => ({ text, re: compileGlob(text, 'text') }));
    this.#whitelist = policy.whitelist.map(compileEntry).filter((e) => e.words.length > 0);
    this.#allowNonAscii = policy.allowNonAscii;
    this.#maxLength = policy.maxLength ?? DEFAULT_MAX_LENGTH;
  }

  /** Audits one command line. Never throws. */
  check(command: unknown): AuditVerdict {
    if (typeof command !== 'string') return refuse('syntax', `the command is ${typeof command}, not a string`);
    if (command.length > this.#maxLength) return refuse('syntax', `longer than ${this.#maxLength} characters`);
    const chars = characterProblem(command, { allowNonAscii: this.#allowNonAscii, allowSpace: true });
    if (chars !== undefined) return refuse('syntax', chars, 'built-in');
    const argv = command.split(' ').filter((w) => w.length > 0);
    if (argv.length === 0) return refuse('syntax', 'empty command');
    const normalized = argv.join(' ');
    for (const b of this.#blacklist) {
      if (b.re.test(normalized)) return refuse('blacklist', `matches blacklist pattern ${JSON.stringify(b.text)}`, b.text);
    }
    let argumentRefusal: AuditVerdict | undefined;
    for (const entry of this.#whitelist) {
      const r = matchEntry(entry, argv);
      if (r === true) return { allowed: true, argv, rule: entry.text };
      if (r !== false && argumentRefusal === undefined) {
        argumentRefusal = refuse('argument', `word ${r.index} ${JSON.stringify(argv[r.index])}: ${r.why}`, entry.text);
      }
    }
    return argumentRefusal ?? refuse('whitelist', `${JSON.stringify(argv[0])} with these arguments is not in the whitelist`);
  }
}

function refuse(stage: AuditStage, reason: string, rule?: string): AuditVerdict {
  return rule === undefined ? { allowed: false, stage, reason } : { allowed: false, stage, reason, rule };
}

/** true: allowed; false: the entry does not match; else the first argument rule a caller's word breaks. */
function matchEntry(entry: WhitelistEntry, argv: string[]): boolean | { index: number; why: string } {
  const n = entry.words.length;
  if (entry.rest ? argv.length < n : argv.length !== n) return false;
  for (let i = 0; i < n; i++) if (!entry.words[i]!.re.test(argv[i]!)) return false;
  for (let i = 0; i < argv.length; i++) {
    const w = entry.words[i];
    if (w?.literal === true) continue;
    const why = argumentProblem(argv[i]!, w?.absolute === true);
    if (why !== undefined) return { index: i, why };
  }
  return true;
}
