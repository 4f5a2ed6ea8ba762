/**
 * What `RegistryStore.open` does before the store exists: load the cluster files, apply the checkpoint,
 * replay the journal, check the result once, load the published views (docs/registry-store.md, "Start-up and
 * crash recovery").
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { findClusterProblems } from '../../core/config/index.js';
import { IbpError } from '../../core/errors.js';
import { clusterConfPaths, loadClusterFilesNow, parseClusterConfFiles } from './cluster-files.js';
import { ClusterState } from './cluster-state.js';
import { JournalWriter, readJournal } from './journal.js';
import { readCheckpoint } from './run-files.js';
import { applyOps, type RunState } from './store-ops.js';
import type { ClusterKind, LoadSource, RegistryStoreOptions } from './types.js';
import { ViewShelf } from './view-shelf.js';

/** The files of the store inside `run/ibms/`. */
export function storeRunPaths(runDir: string): { dir: string; journal: string; checkpoint: string; views: string } {
  const dir = join(runDir, 'ibms');
  return { dir, journal: join(dir, 'journal'), checkpoint: join(dir, 'checkpoint'), views: join(dir, 'views') };
}

/** Everything a store is made of, as recovered from disk. */
export interface Recovered {
  paths: Record<ClusterKind, string>;
  files: ReturnType<typeof storeRunPaths>;
  state: ClusterState;
  run: RunState;
  shelf: ViewShelf;
  journal: JournalWriter;
  /** The last journal seq (recovered). */
  seq: number;
  /** Records changed since the `.conf` files were saved (`n:`/`a:`/`p:` + name). */
  unsaved: Set<string>;
  confSha: Record<ClusterKind, string>;
  loadedFrom: Record<ClusterKind, LoadSource>;
  /** Kinds whose `.bin` exists but was not used (stale, old format, foreign, torn, corrupt): to rebuild. */
  refusedBins: ClusterKind[];
  replayed: number;
}

/**
 * Loads and recovers the store's state.
 * @throws IbpError IBP_ERR_CONFIG_* naming the `.conf`, IBP_ERR_REGISTRY_JOURNAL naming a corrupt file,
 *   IBP_ERR_REGISTRY_INVALID when the replayed journal leaves the cluster inconsistent.
 */
export function recoverStore(opts: RegistryStoreOptions): Recovered {
  const paths = clusterConfPaths(opts.home, opts.conf);
  const files = storeRunPaths(opts.home.run);
  const loaded = loadClusterFilesNow({ paths, binCheck: opts.binCheck, logger: opts.logger, deferCrossCheck: true });
  const state = ClusterState.from(loaded.cluster);
  if (state.duplicates.length > 0) {
    parseClusterConfFiles(paths); // throws them at file:line:col
    throw new IbpError('IBP_ERR_REGISTRY_INVALID', `defined twice in ${Object.values(paths).join(', ')}: ${state.duplicates.slice(0, 10).join(', ')}`);
  }
  try {
    mkdirSync(files.views, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new IbpError('IBP_ERR_REGISTRY_JOURNAL', `cannot create ${files.views} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  const cp = readCheckpoint(files.checkpoint);
  const run: RunState = cp?.run ?? { keys: new Map(), pending: new Set(), published: new Map(), version: 0 };
  let seq = cp?.seq ?? 0;
  const touched = new Set<string>();
  if (cp) applyOps(cp.unsaved, state, run, touched);
  const contents = readJournal(files.journal);
  let replayed = 0;
  for (const rec of contents.records) {
    if (rec.seq <= seq) continue; // already in the checkpoint (a crash between checkpoint and new journal)
    applyOps(rec.ops, state, run, touched);
    seq = rec.seq;
    replayed++;
  }
  if (touched.size > 0 || !loaded.crossChecked) {
    const problems = findClusterProblems(state.toCluster());
    if (problems.length > 0 && touched.size === 0) parseClusterConfFiles(paths); // throws them at file:line:col
    if (problems.length > 0) {
      throw new IbpError('IBP_ERR_REGISTRY_INVALID',
        `the cluster of ${Object.values(paths).join(', ')} with the unsaved changes of ${files.checkpoint} and ${files.journal} is inconsistent:\n`
        + problems.slice(0, 20).map((p) => `${p.file}: ${p.message}`).join('\n'), { details: { problems: problems.length } });
    }
  }
  for (const n of [...run.published.keys()]) if (!state.getNode(n)) run.published.delete(n); // removed by hand
  const shelf = ViewShelf.load(files.views, run, opts.logger);
  for (const n of run.pending) if (!state.getNode(n)) run.pending.delete(n);
  for (const n of state.nodeList()) if (!run.published.has(n.node)) run.pending.add(n.node);
  const journal = JournalWriter.open(files.journal, contents);
  if (contents.tornBytes > 0) {
    opts.logger?.warn({ file: files.journal, bytes: contents.tornBytes }, 'dropped a torn last journal record (a crash while appending; never acknowledged)');
  }
  return { paths, files, state, run, shelf, journal, seq, unsaved: touched, confSha: loaded.confSha, loadedFrom: loaded.from, refusedBins: loaded.refused, replayed };
}
