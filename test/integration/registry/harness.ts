/** Test harness for the registry: temp registry homes, real `ibms` processes from dist/, the CLI. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient } from '../../../src/registry/index.js';

/** A command line's compiled entry (dist/src/cli/NAME.js). Kept free of other parts' imports. */
export const cliPath = (name: string): string => fileURLToPath(new URL(`../../../src/cli/${name}.js`, import.meta.url));

/** Waits until `pred()` is true, polling; fails after `timeoutMs` with `what`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A running `ibms -a start --foreground`, its own process group (monitor + worker). */
export interface IbmsProcess {
  child: ChildProcess;
  ip: string;
  port: number;
  /** The monitor's pid (the foreground CLI process). */
  pid: number;
  workerPid: number;
  /** Everything it printed so far. */
  output(): string;
}

/** The outcome of one CLI run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a CLI from dist/ (`ibms`, `ibpgenrsakeys`, …) with `--home home` appended. */
export function runCli(name: string, args: string[], home: string, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath(name), ...args, '--home', home], { timeout: timeoutMs, env: { ...process.env, IBP_HOME: home } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `ibms …` that must succeed; fails the test with its stderr otherwise. */
export async function ibmsOk(home: string, ...args: string[]): Promise<string> {
  const r = await runCli('ibms', args, home);
  if (r.code !== 0) throw new Error(`ibms ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A fresh registry home made by `ibms -a init --port 0` (ephemeral port). */
export async function makeRegistryHome(prefix = 'ibp-reg-'): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), prefix));
  await ibmsOk(home, '-a', 'init', '--ip', '127.0.0.1', '--port', '0');
  return home;
}

/** Starts `ibms -a start --foreground` and waits for its readiness line (raced against an early exit). */
export function startIbms(home: string, timeoutMs = 60_000): Promise<IbmsProcess> {
  const child = spawn(process.execPath, [cliPath('ibms'), '-a', 'start', '--foreground', '--home', home], {
    env: { ...process.env, IBP_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`ibms in ${home} not ready within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: string | null): void => {
      clearTimeout(timer);
      reject(new Error(`ibms in ${home} exited (code ${code}, signal ${signal}) before ready:\n${out}`));
    };
    child.once('exit', onExit);
    const check = (): void => {
      const m = /ibms ready ip=(\S+) port=(\d+) pid=(\d+) worker=(\d+)/.exec(out);
      if (!m) return;
      child.stdout!.off('data', check);
      child.off('exit', onExit);
      clearTimeout(timer);
      resolve({ child, ip: m[1]!, port: Number(m[2]), pid: Number(m[3]), workerPid: Number(m[4]), output: () => out });
    };
    child.stdout!.on('data', check);
  });
}

/** SIGKILL to the whole process group (monitor and worker at once). */
export function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** Resolves with the exit of a child (at once when it already exited). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** SIGTERM (graceful) and wait; SIGKILL the group after `killAfterMs`. */
export async function stopIbms(p: IbmsProcess | undefined, killAfterMs = 30_000): Promise<void> {
  if (!p) return;
  const done = exited(p.child);
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  const t = setTimeout(() => killGroup(p.child), killAfterMs);
  await done;
  clearTimeout(t);
  killGroup(p.child); // a worker left behind, if any
}

/** True while a pid is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** An admin client of a registry home's running daemon. */
export function adminClient(home: string, p: IbmsProcess): RegistryClient {
  const token = readFileSync(join(home, 'keys', 'ibms.admin.token'), 'utf8').trim();
  return new RegistryClient({ ip: p.ip, port: p.port, adminToken: token, timeoutMs: 30_000 });
}

/** A node client signing with `keys/NODE.key` of the registry home (made by ibpgenrsakeys there). */
export function nodeClient(home: string, p: IbmsProcess, node: string): RegistryClient {
  return new RegistryClient({ ip: p.ip, port: p.port, node, nodeKeyPem: readFileSync(join(home, 'keys', `${node}.key`), 'utf8'), timeoutMs: 30_000 });
}

/** Removes a temp home. */
export function removeHome(home: string | undefined): void {
  if (home) rmSync(home, { recursive: true, force: true });
}
