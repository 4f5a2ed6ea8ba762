import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runCommand, type RunLimits, type StreamId } from '../../../src/rcmd/command-runner.js';

const home = realpathSync(mkdtempSync(join(tmpdir(), 'ibp-rcmd-run-')));
const PATH = `${dirname(process.execPath)}:/usr/bin:/bin`;
const limits = (o: Partial<RunLimits> = {}): RunLimits => ({ cwd: home, path: PATH, homeRoot: home, timeoutMs: 20_000, maxOutputBytes: 1 << 20, ...o });

async function run(argv: string[], o: Partial<RunLimits> = {}, abort?: AbortSignal) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const r = await runCommand(argv, limits(o), (s: StreamId, c) => (s === 1 ? out : err).push(c), abort);
  return { ...r, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

writeFileSync(join(home, 'emit.mjs'), `
const [code, out, err] = process.argv.slice(2);
process.stdout.write(out ?? '');
process.stderr.write(err ?? '');
process.exitCode = Number(code ?? 0);
`);
writeFileSync(join(home, 'env.mjs'), 'process.stdout.write(JSON.stringify({ env: process.env, cwd: process.cwd() }));');
writeFileSync(join(home, 'forker.mjs'), `
import { spawn } from 'node:child_process';
const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'inherit' });
process.stdout.write(String(c.pid));
setInterval(() => {}, 1000);
`);

describe('command runner', () => {
  after(() => rmSync(home, { recursive: true, force: true }));

  test('command runner - stdout, stderr and the exit code come back separately', async () => {
    const r = await run(['node', 'emit.mjs', '3', 'to-out', 'to-err']);
    assert.equal(r.exitCode, 3);
    assert.equal(r.signal, null);
    assert.equal(r.stdout, 'to-out');
    assert.equal(r.stderr, 'to-err');
    assert.equal(r.timedOut, false);
    assert.equal(r.outputLimited, false);
    assert.equal(r.outputBytes, 12);
  });

  test('command runner - the environment is scrubbed and the working directory fixed', async () => {
    process.env.IBP_RCMD_TEST_LEAK = 'leaked';
    try {
      const r = await run(['node', 'env.mjs']);
      const { env, cwd } = JSON.parse(r.stdout) as { env: Record<string, string>; cwd: string };
      assert.equal(cwd, home);
      assert.equal(env.IBP_RCMD_TEST_LEAK, undefined);
      assert.deepEqual(Object.keys(env).sort(), ['HOME', 'IBP_HOME', 'LANG', 'LC_ALL', 'PATH']);
      assert.equal(env.PATH, PATH);
      assert.equal(env.IBP_HOME, home);
    } finally {
      delete process.env.IBP_RCMD_TEST_LEAK;
    }
  });

  test('command runner - arguments reach the program verbatim: no shell sees them', async () => {
    const r = await run(['node', 'emit.mjs', '0', '$(id);`x`|>*']);
    assert.equal(r.stdout, '$(id);`x`|>*');
  });

  test('command runner - the time limit ends the command and everything it started', async () => {
    const t0 = Date.now();
    const r = await run(['node', 'forker.mjs'], { timeoutMs: 300, killGraceMs: 500 });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
    assert.equal(r.signal, 'SIGTERM');
    assert.ok(Date.now() - t0 < 10_000);
    const grandchild = Number(r.stdout);
    assert.ok(grandchild > 0);
    const deadline = Date.now() + 5000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      try { process.kill(grandchild, 0); await new Promise((res) => setTimeout(res, 20)); } catch { alive = false; }
    }
    assert.equal(alive, false, 'the grandchild was killed with its group');
  });

  test('command runner - the output limit cuts the output exactly and kills the command', async () => {
    const r = await run(['yes'], { maxOutputBytes: 10_000 });
    assert.equal(r.outputLimited, true);
    assert.equal(r.stdout.length, 10_000);
    assert.equal(r.outputBytes, 10_000);
    assert.equal(r.signal, 'SIGKILL');
  });

  test('command runner - a command not in PATH fails to start with EXEC_FAILED', async () => {
    await assert.rejects(run(['no-such-command-ibp']), (e: Error & { code?: string }) => e.code === 'IBP_ERR_RCMD_EXEC_FAILED' && /not found/.test(e.message));
    await assert.rejects(run(['ls'], { path: '/nonexistent' }), { code: 'IBP_ERR_RCMD_EXEC_FAILED' });
  });

  test('command runner - an abort (client gone) kills the command at once', async () => {
    const ac = new AbortController();
    const p = run(['sleep', '30'], {}, ac.signal);
    setTimeout(() => ac.abort(), 100);
    const r = await p;
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(r.durationMs < 10_000);
  });
});
