/**
 * The ibms worker: opens the store (journal replayed), serves the HTTP API, and in immediate mode
 * (`auto_download_bin_enable` = 1) watches `so/` and pushes changed packages to the nodes serving them.
 * `worker-main.ts` runs it in the process the monitor forks; tests may run it in-process.
 */
import { loadIbmsConf } from '../core/config/index.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { ibpHome } from '../core/home.js';
import { createLogger, type IbpLogger } from '../core/log.js';
import { PackageWatcher } from './package-watcher.js';
import { RegistryServer } from './registry-server.js';
import { ensureAdminToken, type RegistrySettings } from './settings.js';
import { RegistryStore } from './store/index.js';

/** A worker serving the API. */
export interface RunningWorker {
  address: { ip: string; port: number };
  log: IbpLogger;
  /** Graceful stop: long-polls answered 304, requests in flight finished, store closed. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a worker listening on `settings.ip`:`port` (the monitor passes the port the first worker got, so
 * a restarted worker keeps the address).
 * @throws IbpError the store's error (a bad config file, a bad journal), IBP_ERR_REGISTRY_START (cannot listen).
 */
export async function runRegistryWorker(settings: RegistrySettings, port: number = settings.port): Promise<RunningWorker> {
  const log = createLogger({ homeRoot: settings.homeRoot, output: settings.log.workerOutput, level: settings.log.workerLevel, name: 'ibms-worker', base: { component: 'ibms-worker' } });
  const events = createLogger({ homeRoot: settings.homeRoot, output: settings.log.eventOutput, level: 'INFO', name: 'ibms-event', base: { component: 'ibms' } });
  let store: RegistryStore | undefined;
  let server: RegistryServer | undefined;
  let watcher: PackageWatcher | undefined;
  try {
    const conf = loadIbmsConf(settings.confPath);
    if (ensureAdminToken(settings.tokenPath)) log.warn({ path: settings.tokenPath }, 'admin token was missing: created a new one');
    const t0 = Date.now();
    store = RegistryStore.open({ home: ibpHome(settings.homeRoot), conf, logger: log });
    const c = store.cluster;
    log.info({ nodes: c.nodes.length, apps: c.apps.length, projects: c.projects.length, pending: store.pendingNodes().length, ms: Date.now() - t0 }, 'registry store opened');
    // packages copied into so/ while the registry was down
    const changed = store.refreshPackages();
    if (changed.length > 0) log.info({ nodes: changed }, 'packages changed while stopped: nodes pending');
    server = new RegistryServer({ settings, store, log, events });
    if (settings.autoDownloadBin) pushPackages(store, server, changed, log, events);
    const address = await server.listen(settings.ip, port);
    if (settings.autoDownloadBin) {
      const s = store;
      const srv = server;
      watcher = new PackageWatcher(`${settings.homeRoot}/so`, (bins) => {
        try {
          const nodes = s.refreshPackages(bins);
          log.info({ bins, nodes }, 'packages changed in so/');
          pushPackages(s, srv, nodes, log, events);
        } catch (err) {
          log.error({ err, bins }, 'refreshing changed packages failed');
        }
      }, log);
    }
    log.info({ ip: address.ip, port: address.port, autoDownloadBin: settings.autoDownloadBin }, 'registry worker listening');
    let stopping: Promise<void> | undefined;
    const st = store;
    const srv = server;
    const stop = (graceMs = 10_000): Promise<void> => {
      stopping ??= (async () => {
        watcher?.close();
        await srv.close(graceMs);
        st.close();
        log.info('registry worker stopped');
      })();
      return stopping;
    };
    return { address, log, stop };
  } catch (err) {
    watcher?.close();
    await server?.close(0).catch(() => undefined);
    try {
      store?.close();
    } catch {
      /* closing after a failed start */
    }
    const e = toIbpError(err, 'IBP_ERR_REGISTRY_START');
    log.fatal({ err: e }, 'registry worker failed to start');
    throw e;
  }
}

/** Immediate mode: publish the full view of each node whose packages changed, and wake its long-polls. */
function pushPackages(store: RegistryStore, server: RegistryServer, nodes: readonly string[], log: IbpLogger, events: IbpLogger): void {
  const pushed: string[] = [];
  for (const node of nodes) {
    try {
      const { version } = store.downloadConfig(node);
      pushed.push(node);
      events.info({ event: 'package_push', node, version }, `changed packages pushed to ${node}`);
    } catch (err) {
      log.error({ err: err instanceof IbpError ? err : toIbpError(err), node }, 'pushing changed packages failed');
    }
  }
  if (pushed.length > 0) server.published(pushed);
}
