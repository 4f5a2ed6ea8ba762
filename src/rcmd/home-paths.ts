/**
 * Confining putfile/getfile to the agent's home: a path is checked as text first (no `..`, no `.`, no empty
 * segment, no absolute path outside the home, no shell or look-alike characters, not in `file.deny`), then
 * on disk segment by segment with `lstat` (no symbolic link anywhere below the home, directories only
 * above the file).
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IbpError } from '../core/errors.js';
import { characterProblem, compileGlob } from './patterns.js';

const MAX_PATH = 4096;
const MAX_SEGMENT_BYTES = 255;

/** A path accepted as text: home-relative, `/`-separated. */
export interface CheckedPath {
  rel: string;
  segments: string[];
}

function refused(path: unknown, why: string): IbpError {
  const shown = typeof path === 'string' ? JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path) : String(path);
  return new IbpError('IBP_ERR_RCMD_PATH_REFUSED', `path ${shown} refused: ${why}`, { details: { reason: why } });
}

/**
 * The paths of one agent home. `root` is resolved through symlinks once (the home itself may live
 * behind one); nothing below it may be a link.
 */
export class HomePaths {
  readonly root: string;
  readonly #given: string;
  readonly #deny: { text: string; re: RegExp }[];

  constructor(root: string, deny: readonly string[]) {
    this.#given = resolve(root);
    this.root = realpathSync(this.#given);
    this.#deny = deny.map((text) => ({ text, re: compileGlob(text, 'path') }));
  }

  /**
   * Checks a path as text. Absolute paths are accepted only inside the home.
   * @throws IbpError IBP_ERR_RCMD_PATH_REFUSED naming the rule.
   */
  check(path: unknown): CheckedPath {
    if (typeof path !== 'string') throw refused(path, 'not a string');
    if (path.length === 0) throw refused(path, 'empty');
    if (path.length > MAX_PATH) throw refused(path, `longer than ${MAX_PATH} characters`);
    const chars = characterProblem(path, { allowNonAscii: true, allowSpace: true });
    if (chars !== undefined) throw refused(path, chars);
    let rel = path;
    if (path.startsWith('/')) {
      const inside = [this.root, this.#given].find((r) => path.startsWith(`${r}/`));
      if (inside === undefined) throw refused(path, `absolute path outside the agent home ${this.root}`);
      rel = path.slice(inside.length + 1);
    }
    const segments = rel.split('/');
    for (const seg of segments) {
      if (seg === '..') throw refused(path, "parent directory '..'");
      if (seg === '.') throw refused(path, "'.' segment");
      if (seg === '') throw refused(path, rel === '' ? 'names the home itself' : "empty segment ('//' or a trailing '/')");
      if (seg.trim() !== seg) throw refused(path, 'a segment starts or ends with a space');
      if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) throw refused(path, `a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    const relText = segments.join('/');
    for (const d of this.#deny) {
      if (d.re.test(relText)) throw refused(path, `denied by file.deny pattern ${JSON.stringify(d.text)}`);
    }
    return { rel: relText, segments };
  }

  /**
   * The absolute path of an existing regular file to read.
   * @throws IbpError IBP_ERR_RCMD_PATH_REFUSED (text rules, a symlink or non-directory on the way),
   *   IBP_ERR_RCMD_FILE_NOT_FOUND (missing, or not a regular file).
   */
  async forRead(path: unknown): Promise<string> {
    const { segments } = this.check(path);
    let cur = this.root;
    for (let i = 0; i < segments.length; i++) {
      cur = join(cur, segments[i]!);
      const st = await lstat(cur).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new IbpError('IBP_ERR_RCMD_FILE_NOT_FOUND', `no file ${JSON.stringify(path)} in the agent home`);
        throw refused(path, `cannot stat: ${err.code ?? err.message}`);
      });
      if (st.isSymbolicLink()) throw refused(path, `${segments.slice(0, i + 1).join('/')} is a symbolic link`);
      const last = i === segments.length - 1;
      if (!last && !st.isDirectory()) throw refused(path, `${segments.slice(0, i + 1).join('/')} is not a directory`);
      if (last && !st.isFile()) throw new IbpError('IBP_ERR_RCMD_FILE_NOT_FOUND', `${JSON.stringify(path)} is not a regular file`);
    }
    return cur;
  }

  /**
   * The absolute path to write a file to; missing directories on the way are created (mode 0755). The file
   * itself may be missing or a regular file (it is replaced by rename), never a link or a directory.
   * @throws IbpError IBP_ERR_RCMD_PATH_REFUSED.
   */
  async forWrite(path: unknown): Promise<string> {
    const { segments } = this.check(path);
    let cur = this.root;
    for (let i = 0; i < segments.length; i++) {
      cur = join(cur, segments[i]!);
      const last = i === segments.length - 1;
      const st = await lstat(cur).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw refused(path, `cannot stat: ${err.code ?? err.message}`);
      });
      if (st === undefined) {
        if (last) break;
        await mkdir(cur, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw refused(path, `cannot create directory: ${err.code ?? err.message}`);
        });
        const again = await lstat(cur);
        if (!again.isDirectory()) throw refused(path, `${segments.slice(0, i + 1).join('/')} is not a directory`);
        continue;
      }
      if (st.isSymbolicLink()) throw refused(path, `${segments.slice(0, i + 1).join('/')} is a symbolic link`);
      if (!last && !st.isDirectory()) throw refused(path, `${segments.slice(0, i + 1).join('/')} is not a directory`);
      if (last && !st.isFile()) throw refused(path, 'the target exists and is not a regular file');
    }
    // belt and braces: the parent, fully resolved, is still inside the home
    const parent = await realpath(join(cur, '..'));
    if (parent !== this.root && !parent.startsWith(`${this.root}/`)) throw refused(path, 'resolves outside the agent home');
    return cur;
  }
}
