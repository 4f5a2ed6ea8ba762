/**
 * `ibp local-config`: builds this node's local config replica straight from the home's config files,
 * without a registry: reads `etc/ibma.conf` and the cluster files, derives this node's view and writes a
 * new snapshot to `run/ibma/` (then prunes old ones). The agent does the same from the registry.
 */
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { deriveNodeView, pruneSnapshots, writeSnapshot } from '../agent/index.js';
import { loadClusterConfig, loadIbmaConf } from '../core/config/index.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { assertHome, ibpHome, resolveHomeRoot } from '../core/home.js';

/** Superseded snapshots `ibp local-config` keeps by default. */
export const LOCAL_CONFIG_KEEP = 2;

export const LOCAL_CONFIG_USAGE = `usage: ibp local-config [--home DIR] [--this-node NODE] [-f ibma.conf] [--keep N]
  Derives this node's view of the cluster from etc/ibp_nodes.conf, ibp_apps.conf and ibp_projects.conf
  and writes it as a new snapshot of the local config replica in <home>/run/ibma/.
  --home DIR        the IBP home (default $IBP_HOME, else $HOME)
  --this-node NODE  this node's name (default ibma.this_node of ibma.conf)
  -f FILE           the ibma config, relative to <home>/etc unless absolute (default ibma.conf)
  --keep N          superseded snapshots to keep (default ${LOCAL_CONFIG_KEEP})`;

/** Where the command prints; defaults to the process's stdout and stderr. */
export interface LocalConfigIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const DEFAULT_IO: LocalConfigIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/**
 * Runs `ibp local-config` with the arguments after the sub-command (a leading `local-config` is skipped).
 * @returns the exit code: 0 done, 1 failed (the coded error is printed), 2 bad usage.
 * @example
 * process.exitCode = await runLocalConfig(['--home', '/srv/ibp/ecif']);
 */
export async function runLocalConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, io: LocalConfigIo = DEFAULT_IO): Promise<number> {
  const args = argv[0] === 'local-config' ? argv.slice(1) : argv;
  let values: { home?: string; 'this-node'?: string; file?: string; keep?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        home: { type: 'string' },
        'this-node': { type: 'string' },
        file: { type: 'string', short: 'f' },
        keep: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`ibp local-config: ${(err as Error).message}`);
    io.err(LOCAL_CONFIG_USAGE);
    return 2;
  }
  if (values.help) {
    io.out(LOCAL_CONFIG_USAGE);
    return 0;
  }
  const keep = values.keep === undefined ? LOCAL_CONFIG_KEEP : Number(values.keep);
  if (!Number.isInteger(keep) || keep < 0) {
    io.err(`ibp local-config: --keep must be an integer >= 0, got '${values.keep}'`);
    return 2;
  }
  try {
    const home = ibpHome(values.home ?? resolveHomeRoot(env));
    assertHome(home);
    const confName = values.file ?? 'ibma.conf';
    const confPath = isAbsolute(confName) ? confName : join(home.etc, confName);
    const cfg = loadIbmaConf(confPath);
    const thisNode = values['this-node'] ?? cfg.ibma.this_node;
    if (!thisNode) {
      throw new IbpError('IBP_ERR_USAGE', `no node name: set ibma.this_node in ${confPath} or pass --this-node`);
    }
    const view = deriveNodeView(loadClusterConfig(home.etc), thisNode);
    const version = writeSnapshot(home.replica, {
      thisNode,
      ibmsServer: { ip: cfg.ibms.server.ip, port: cfg.ibms.server.port },
      retryConnectTimevalSec: cfg.ibac.retry_connect_timeval,
      connectingTimeoutSec: cfg.ibac.connecting_timeout,
      minCompressSize: cfg.ibma.comm.min_compress_size,
      nodes: view.nodes,
      apps: view.apps,
      servedApps: view.servedApps,
    });
    io.out(
      `local-config: wrote snapshot ${version} for node ${thisNode} in ${home.replica}: ` +
        `${view.nodes.length} node(s), ${view.apps.length} app(s) (${view.servedApps.length} served), ` +
        `${Object.keys(view.kv).length} kv entr${Object.keys(view.kv).length === 1 ? 'y' : 'ies'}`,
    );
    const removed = pruneSnapshots(home.replica, keep);
    if (removed.length > 0) io.out(`local-config: removed ${removed.join(', ')}`);
    return 0;
  } catch (err) {
    const e = toIbpError(err);
    io.err(`ibp local-config: ${e.code}: ${e.message}`);
    return e.code === 'IBP_ERR_USAGE' ? 2 : 1;
  }
}
