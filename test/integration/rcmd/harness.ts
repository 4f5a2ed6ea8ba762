/** Test harness: ibcmd homes made with `ibcmd -a init`, agents started as real processes with `--foreground`. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cliPath } from '../../../src/cli/scratch-cluster.js';
import type { AuditRecord } from '../../../src/rcmd/index.js';

/** Runs the ibcmd CLI as a user would, with IBP_HOME=home. */
export function ibcmd(home: string, args: string[], cwd?: string) {
  return spawnSync(process.execPath, [cliPath('ibcmd'), ...args], {
    env: { ...process.env, IBP_HOME: home },
    encoding: 'utf8',
    cwd: cwd ?? home,
    timeout: 60_000,
  });
}

/** Commands the test agents allow on top of a few harmless ones. */
export const TEST_WHITELIST = [
  'node fixtures/emit.mjs **', 'node fixtures/sleep.mjs **', 'yes', 'touch file/*', 'ls **', 'echo **', 'nosuchcmd-ibp',
];

const FIXTURES: Record<string, string> = {
  'emit.mjs': `const [code, out, err] = process.argv.slice(2);
process.stdout.write(out ?? '');
process.stderr.write(err ?? '');
process.exitCode = Number(code ?? 0);
`,
  'sleep.mjs': `import { writeFileSync } from 'node:fs';
const [ms, marker] = process.argv.slice(2);
if (marker) writeFileSync(marker, String(process.pid));
setTimeout(() => process.stdout.write('slept'), Number(ms));
`,
};

export interface AgentHomeOptions {
  /** exec.timeout in seconds (default 20). */
  timeoutS?: number;
  /** exec.max_output_size (default 65536). */
  maxOutput?: number;
  /** file.max_file_size (default 4 MiB). */
  maxFile?: number;
  /** server.port (default 0). */
  port?: number;
}

/** `ibcmd -a init` in `home`, then the test config (whitelist, limits, PATH with node) and the fixture scripts. */
export function makeAgentHome(home: string, o: AgentHomeOptions = {}): void {
  mkdirSync(home, { recursive: true });
  const init = ibcmd(home, ['-a', 'init', '--port', '0']);
  if (init.status !== 0) throw new Error(`ibcmd -a init failed: ${init.stderr}`);
  writeFileSync(join(home, 'etc', 'ibcmd.conf'), `// test agent
{
	"ibcmd" : {
		"server" : { "ip" : "127.0.0.1" , "port" : ${o.port ?? 0} , "auth_timeout" : 5 } ,
		"exec" : {
			"path" : ${JSON.stringify(`${dirname(process.execPath)}:/usr/bin:/bin`)} ,
			"timeout" : ${o.timeoutS ?? 20} ,
			"max_output_size" : ${o.maxOutput ?? 65536} ,
			"whitelist" : ${JSON.stringify(TEST_WHITELIST)}
		} ,
		"file" : { "max_file_size" : ${o.maxFile ?? 4 * 1024 * 1024} } ,
		"log" : { "main_loglevel" : DEBUG }
	}
}
`);
  mkdirSync(join(home, 'fixtures'), { recursive: true });
  for (const [name, text] of Object.entries(FIXTURES)) writeFileSync(join(home, 'fixtures', name), text);
}

/** A running agent started with `ibcmd -a start --foreground`. */
export interface RunningAgent {
  home: string;
  port: number;
  address: string;
  secretPath: string;
  proc: ChildProcess;
  /** SIGTERM, then wait for the exit (SIGKILL after 15 s); resolves with the exit code. */
  stop(): Promise<number | null>;
  output(): string;
}

/** Starts the agent of `home` and waits for its readiness line (raced against an early exit). */
export async function startAgent(home: string): Promise<RunningAgent> {
  const proc = spawn(process.execPath, [cliPath('ibcmd'), '-a', 'start', '--foreground'], {
    env: { ...process.env, IBP_HOME: home },
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ibcmd did not become ready in 30 s:\n${out}`)), 30_000);
    const onData = (): void => {
      const m = /ibcmd ready on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); proc.stdout!.off('data', onData); resolve(Number(m[1])); }
    };
    proc.stdout!.on('data', onData);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`ibcmd exited (${code}) before it was ready:\n${out}`)); });
  });
  const stop = async (): Promise<number | null> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill('SIGTERM');
    const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(kill);
    return code;
  };
  return { home, port, address: `127.0.0.1:${port}`, secretPath: join(home, 'keys', 'ibcmd.secret'), proc, stop, output: () => out };
}

/** The records of an agent's audit log. */
export function auditRecords(home: string): AuditRecord[] {
  const p = join(home, 'log', 'ibcmd_audit.log');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as AuditRecord);
}

/** Waits until `pred()` holds, polling; fails after `timeoutMs`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
