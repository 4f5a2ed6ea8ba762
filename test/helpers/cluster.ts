/** Test harness: a scratch cluster in a temp dir with the example and fixture apps, real ibas processes. */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EXAMPLE_APPS,
  REPO_ROOT,
  removeScratch,
  startPlatform,
  stopPlatform,
  writeScratchCluster,
  type ScratchApp,
  type ScratchCluster,
  type ScratchClusterOptions,
} from '../../src/cli/scratch-cluster.js';
import { BoardReader, boardPathOf, type BoardView } from '../../src/platform/index.js';

export const FIXTURE_APPS: ScratchApp[] = [
  ...EXAMPLE_APPS,
  { app: 'ibp_t_pid', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_pid.mjs'), timeout: 30 },
  { app: 'ibp_t_fail', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_fail.mjs'), timeout: 30 },
  { app: 'ibp_t_crash', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_crash.mjs'), timeout: 30 },
  { app: 'ibp_t_loop', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_loop.mjs'), timeout: 10, timeout2: 1 },
  { app: 'ibp_t_slow', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_slow.mjs'), timeout: 30 },
  { app: 'ibp_t_ahead', source: join(REPO_ROOT, 'test', 'fixtures', 'apps', 'ibp_t_ahead.mjs'), timeout: 30 },
];

export interface TestCluster extends ScratchCluster {
  platforms: ChildProcess[];
  close(): Promise<void>;
}

/** Lays out a cluster with the fixture apps and starts one platform per server host. */
export async function startTestCluster(o: Omit<ScratchClusterOptions, 'base'> & { start?: boolean } = {}): Promise<TestCluster> {
  const base = mkdtempSync(join(tmpdir(), 'ibp-test-'));
  const cluster = await writeScratchCluster({ apps: FIXTURE_APPS, ...o, base });
  const platforms: ChildProcess[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(platforms.map((p) => stopPlatform(p, 10_000)));
    removeScratch(base);
  };
  try {
    if (o.start !== false) for (const home of cluster.serverHomes) platforms.push(await startPlatform(home));
  } catch (err) {
    await close();
    throw err;
  }
  return { ...cluster, platforms, close };
}

/** Waits until `pred()` is true, polling every few ms; fails after `timeoutMs` with `what`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The bulletin board of the platform of server host `i`, read once. */
export function boardOf(c: ScratchCluster, i = 0): BoardView {
  const r = new BoardReader(boardPathOf(c.serverHomes[i]!, '127.0.0.1', c.ports[i]!));
  try {
    return r.view();
  } finally {
    r.close();
  }
}
