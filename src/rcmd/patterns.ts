/**
 * The two building blocks of every ibcmd check: `*`/`?` wildcard patterns, and the character rules that
 * refuse shell syntax, encodings and Unicode look-alikes before any pattern is looked at.
 */

/**
 * How a wildcard pattern is read.
 * - `text`: `*` is any run of characters (spaces and `/` included), `?` any one character. The blacklist.
 * - `path`: `*` and `?` stay inside one `/`-separated segment and `**` crosses segments. Whitelist words and
 *   `file.deny`.
 */
export type GlobMode = 'text' | 'path';

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/;

/** Compiles a `*`/`?` pattern (nothing else is special) to an anchored RegExp. */
export function compileGlob(pattern: string, mode: GlobMode): RegExp {
  let src = '';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      if (mode === 'path' && chars[i + 1] === '*') {
        src += '[\\s\\S]*';
        while (chars[i + 1] === '*') i++;
      } else src += mode === 'path' ? '[^/]*' : '[\\s\\S]*';
    } else if (c === '?') src += mode === 'path' ? '[^/]' : '[\\s\\S]';
    else src += REGEX_SPECIAL.test(c) ? `\\${c}` : c;
  }
  return new RegExp(`^${src}$`, 'u');
}

/** True when `pattern` has a wildcard (a word without one is a literal the operator wrote). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** Why some ASCII characters are refused: the shell feature each would give (no shell runs, but we refuse them). */
const ASCII_REASONS: Readonly<Record<string, string>> = {
  ';': "command separator ';'",
  '&': "'&' (background or && chain)",
  '|': "pipe or || chain '|'",
  '`': "command substitution '`'",
  $: "'$' (variable, $(...) or $'...' expansion)",
  '(': "'(' (subshell, grouping or substitution)",
  ')': "')' (subshell, grouping or substitution)",
  '<': "redirection or process substitution '<'",
  '>': "redirection or process substitution '>'",
  '\n': 'newline (command separator)',
  '\r': 'carriage return (command separator on some shells)',
  '\t': 'tab (only single spaces separate words)',
  '\0': 'NUL byte',
  '*': "glob '*'",
  '?': "glob '?'",
  '[': "glob '['",
  ']': "glob ']'",
  '{': "brace expansion '{'",
  '}': "brace expansion '}'",
  '~': "tilde expansion '~'",
  '!': "history expansion or negation '!'",
  '#': "comment '#'",
  '\\': "backslash escape '\\'",
  "'": "quote \"'\" (words are split on spaces, nothing is unquoted)",
  '"': "quote '\"' (words are split on spaces, nothing is unquoted)",
  '^': "'^' (a pipe in the Bourne shell)",
};

/** The ASCII characters a command or path may hold (space separates a command's words). */
const SAFE_ASCII = /^[A-Za-z0-9 _\-./:=+,@%]$/;
const PERCENT_ENCODED = /%[0-9A-Fa-f]{2}/;
const LETTER_OR_DIGIT = /^[\p{L}\p{M}\p{N}]$/u;
const ASCII_ALNUM = /^[A-Za-z0-9]*$/;

/** Options of {@link characterProblem}. */
export interface CharacterRules {
  /** Allow non-ASCII letters, marks and digits (never symbols, punctuation, spaces or format characters). */
  allowNonAscii: boolean;
  /** Allow the ASCII space (paths: yes; commands split on it first, so it never reaches a word). */
  allowSpace: boolean;
}

const hex = (cp: number) => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * The first character rule `text` breaks, as a reason for humans, or undefined when it breaks none.
 * Refused: every shell metacharacter and control character, `%XX` percent-encodings, and any non-ASCII
 * character that is not a letter/mark/digit (or that is but normalises (NFKC) to ASCII punctuation:
 * fullwidth `；`, `⑴`, …). Non-ASCII letters need `allowNonAscii`.
 */
export function characterProblem(text: string, rules: CharacterRules): string | undefined {
  let index = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      if (ch === ' ' && !rules.allowSpace) return `space at ${index}`;
      if (!SAFE_ASCII.test(ch)) {
        const why = ASCII_REASONS[ch] ?? (cp < 0x20 || cp === 0x7f ? `control character ${hex(cp)}` : `character '${ch}'`);
        return `${why} at ${index}`;
      }
    } else {
      if (!rules.allowNonAscii) return `non-ASCII character ${hex(cp)} at ${index} (exec.allow_non_ascii is off)`;
      if (!LETTER_OR_DIGIT.test(ch)) return `non-ASCII symbol, space or format character ${hex(cp)} at ${index}`;
      const folded = ch.normalize('NFKC');
      if (!ASCII_ALNUM.test([...folded].filter((c) => c.codePointAt(0)! < 0x80).join(''))) {
        return `look-alike ${hex(cp)} at ${index} (reads as ${JSON.stringify(folded)})`;
      }
    }
    index += ch.length;
  }
  const enc = PERCENT_ENCODED.exec(text);
  if (enc) return `percent-encoded byte '${enc[0]}' at ${enc.index}`;
  return undefined;
}
