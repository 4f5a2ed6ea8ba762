/**
 * A scratch cluster on this machine: homes for a client node and the hosts of a server node, each with its
 * etc/ (cluster files, ibma.conf, ibas.conf), so/ (app packages) and a local config snapshot, and the platforms
 * started as real `ibas` processes. Used by the demo (`npm start`), the benchmarks and the end-to-end tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (dist/src/cli → ../../..). */
export const REPO_ROOT = resolve(here, '..', '..', '..');
export const cliPath = (name: string): string => join(REPO_ROOT, 'dist', 'src', 'cli', `${name}.js`);

export interface ScratchApp {
  app: string;
  /** Path of the package source to copy into each server's so/. */
  source: string;
  timeout?: number;
  timeout2?: number;
}

export interface ScratchClusterOptions {
  base: string;
  serverHosts?: number;
  workers?: number;
  apps?: ScratchApp[];
  /** Extra ibas.conf mpm keys (raw lenient JSON members), e.g. `"max_process_count" : 50`. */
  mpmExtra?: string;
  /** `ibas.mpm.mode` (default STATIC_WORKERPOOL). */
  mode?: 'FORK' | 'STATIC_WORKERPOOL' | 'DYNAMIC_WORKERPOOL';
  /** Raw members of `ibas.mpm.DYNAMIC_WORKERPOOL` in place of the seed's, e.g. `"min_idle_count" : 1 , "adjust_interval" : 0.3`. */
  dynamic?: string;
  clientNode?: string;
  serverNode?: string;
}

export interface ScratchCluster {
  base: string;
  clientHome: string;
  serverHomes: string[];
  ports: number[];
  clientNode: string;
  serverNode: string;
}

export const EXAMPLE_APPS: ScratchApp[] = [
  { app: 'ibp_test_echo', source: join(REPO_ROOT, 'examples', 'so', 'ibp_test_echo.mjs'), timeout: 50 },
  { app: 'ibp_test_file', source: join(REPO_ROOT, 'examples', 'so', 'ibp_test_file.mjs'), timeout: 120 },
];

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export function ibmaConfText(node: string): string {
  return `{
  "ibma" : {
    "this_node" : "${node}" ,
    "comm" : { "min_compress_size" : 16 } ,
    "log" : { "iblog_server" : "" , "event_output" : "file::log/event.log" ,
              "main_output" : "file::log/ibma_main.log" , "main_loglevel" : INFO ,
              "worker_output" : "file::log/ibma_worker.log" , "worker_loglevel" : INFO }
  } ,
  "ibac" : { "connecting_timeout" : 10 , "retry_connect_timeval" : 60 } ,
  "ibms" : { "server" : { "ip" : "127.0.0.1" , "port" : 16001 } }
}
`;
}

export function ibasConfText(port: number, workers: number, mpmExtra = '', mode = 'STATIC_WORKERPOOL', dynamic?: string): string {
  return `{
  "ibas" : {
    "server" : { "ip" : "127.0.0.1" , "port" : ${port} } ,
    "mpm" : { "mode" : "${mode}" , "max_count" : ${workers} ,${mpmExtra ? ` ${mpmExtra} ,` : ''}
              "DYNAMIC_WORKERPOOL" : { ${dynamic ?? `"min_idle_count" : 1 , "max_idle_count" : 5 , "create_interval" : 1 ,
                                       "destroy_interval" : 10 , "max_process_count" : 10000`} } } ,
    "security" : { "sign_flag" : 0 , "compress_flag" : 0 , "encrypt_flag" : 0 } ,
    "app" : { "max_so_cache_count" : 1000 } ,
    "log" : { "iblog_server" : "" , "event_output" : "file::log/event.log" ,
              "main_output" : "file::log/ibas_127.0.0.1-${port}_main.log" , "main_loglevel" : INFO ,
              "monitor_output" : "file::log/ibas_127.0.0.1-${port}_monitor.log" , "monitor_loglevel" : INFO ,
              "worker_output" : "file::log/ibas_127.0.0.1-${port}_worker_%d.log" , "worker_loglevel" : INFO ,
              "app_output" : "file::log/app_%s.log" , "app_loglevel" : INFO }
  } ,
  "ibma" : { "config_filename" : "ibma.conf" }
}
`;
}

function clusterFiles(o: Required<Pick<ScratchClusterOptions, 'clientNode' | 'serverNode'>>, ports: number[], apps: ScratchApp[]): Record<string, string> {
  return {
    'ibp_nodes.conf': `{
  "nodes" : [
    { "node" : "${o.serverNode}" , "invalid" : "0" , "hosts" : [
        ${ports.map((p) => `{ "ip" : "127.0.0.1" , "port" : ${p} }`).join(' ,\n        ')} ] } ,
    { "node" : "${o.clientNode}" , "invalid" : "0" , "hosts" : [ { "ip" : "127.0.0.1" , "port" : -10601 } ] }
  ]
}
`,
    'ibp_apps.conf': `{
  "apps" : [
${apps
  .map(
    (a) =>
      `    { "app" : "${a.app}" , "desc" : "${a.app}" , "bin" : "${basename(a.source)}" , "timeout" : "${a.timeout ?? 60}" , "timeout2" : "${a.timeout2 ?? 0}" , "invalid" : "0" , "server_node" : "${o.serverNode}" }`,
  )
  .join(' ,\n')}
  ]
}
`,
    'ibp_projects.conf': `{
  "projects" : [
    { "project" : "scratch" , "server_nodes" : "${o.serverNode}" , "client_nodes" : "${o.clientNode}" , "apps" : "${apps.map((a) => a.app).join(' ')}" }
  ]
}
`,
  };
}

/** Runs one of our CLIs to completion with IBP_HOME = home; throws with its output when it fails. */
export function runCliSync(name: string, args: string[], home: string): string {
  const r = spawnSync(process.execPath, [cliPath(name), ...args], { env: { ...process.env, IBP_HOME: home }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Lays out the homes and builds every local config snapshot (no process left running). */
export async function writeScratchCluster(o: ScratchClusterOptions): Promise<ScratchCluster> {
  const clientNode = o.clientNode ?? 'CORE';
  const serverNode = o.serverNode ?? 'ECIF';
  const apps = o.apps ?? EXAMPLE_APPS;
  rmSync(o.base, { recursive: true, force: true });
  const ports: number[] = [];
  for (let i = 0; i < (o.serverHosts ?? 1); i++) ports.push(await freePort());
  const clientHome = join(o.base, 'client');
  const serverHomes = ports.map((_, i) => join(o.base, `server${i + 1}`));
  const files = clusterFiles({ clientNode, serverNode }, ports, apps);
  for (const [i, home] of [clientHome, ...serverHomes].entries()) {
    for (const d of ['etc', 'log', 'file', 'so', 'keys', 'run']) mkdirSync(join(home, d), { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(home, 'etc', name), text);
    writeFileSync(join(home, 'etc', 'ibma.conf'), ibmaConfText(i === 0 ? clientNode : serverNode));
    if (i > 0) {
      writeFileSync(join(home, 'etc', 'ibas.conf'), ibasConfText(ports[i - 1]!, o.workers ?? 2, o.mpmExtra, o.mode, o.dynamic));
      for (const a of apps) copyFileSync(a.source, join(home, 'so', basename(a.source)));
    }
    runCliSync('ibp', ['local-config', '--home', home], home);
  }
  return { base: o.base, clientHome, serverHomes, ports, clientNode, serverNode };
}

/** Starts `ibas -a start --foreground` in a home; resolves when it printed its ready line. */
export function startPlatform(home: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cliPath('ibas'), '-a', 'start', '--foreground'], {
    env: { ...process.env, ...extraEnv, IBP_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((res, rej) => {
    let out = '';
    const onExit = (code: number | null, signal: string | null): void =>
      rej(new Error(`ibas in ${home} exited (code ${code}, signal ${signal}) before ready:\n${out}`));
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes(' ready on ')) {
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        child.stdout!.resume();
        res(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', onExit);
  });
}

/** SIGTERM (graceful stop) and wait for the exit; SIGKILL after `killAfterMs`. */
export function stopPlatform(child: ChildProcess, killAfterMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
    child.kill('SIGTERM');
  });
}

/** Removes a scratch base. */
export function removeScratch(base: string): void {
  rmSync(base, { recursive: true, force: true });
}
