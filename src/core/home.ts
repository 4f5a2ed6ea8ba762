import { mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { IbpError } from './errors.js';

/** The directories every IBP home has, as in the original (`run/` is ours: pid files, sockets, replica). */
export const HOME_DIRS = ['etc', 'log', 'file', 'so', 'keys', 'run'] as const;
export type HomeDir = (typeof HOME_DIRS)[number];

/** Paths inside one IBP home. */
export interface IbpHome {
  readonly root: string;
  readonly etc: string;
  readonly log: string;
  readonly file: string;
  readonly so: string;
  readonly keys: string;
  readonly run: string;
  /** `run/ibma/`: the local config replica. */
  readonly replica: string;
  /** A path inside the home (relative paths are taken from the root, as the original does with `log/...`). */
  path(...parts: string[]): string;
}

/** The home of this process: `$IBP_HOME`, else `$HOME`. */
export function resolveHomeRoot(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.IBP_HOME && env.IBP_HOME.length > 0 ? env.IBP_HOME : env.HOME || homedir();
  return resolve(root);
}

export function ibpHome(root: string = resolveHomeRoot()): IbpHome {
  const r = resolve(root);
  return {
    root: r,
    etc: join(r, 'etc'),
    log: join(r, 'log'),
    file: join(r, 'file'),
    so: join(r, 'so'),
    keys: join(r, 'keys'),
    run: join(r, 'run'),
    replica: join(r, 'run', 'ibma'),
    path: (...parts: string[]) => resolve(r, ...parts),
  };
}

/** Creates the home's directories; returns the ones that already existed (the original warns about them). */
export function initHomeDirs(home: IbpHome): { created: string[]; existed: string[] } {
  const created: string[] = [];
  const existed: string[] = [];
  for (const d of [...HOME_DIRS.map((n) => home[n]), home.replica]) {
    let exists: boolean;
    try {
      exists = statSync(d).isDirectory();
    } catch {
      exists = false;
    }
    if (exists) existed.push(d);
    else {
      mkdirSync(d, { recursive: true });
      created.push(d);
    }
  }
  return { created, existed };
}

/** Fails with a coded error when the home root is not a directory. */
export function assertHome(home: IbpHome): void {
  let ok: boolean;
  try {
    ok = statSync(home.root).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new IbpError('IBP_ERR_HOME_INVALID', `IBP home ${home.root} is not a directory (set $IBP_HOME)`);
}
