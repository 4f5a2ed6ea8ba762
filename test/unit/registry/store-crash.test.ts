import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { validateClusterConfig } from '../../../src/core/config/index.js';
import { plain, testHome } from './store-helpers.js';

const CHILD = fileURLToPath(new URL('../../fixtures/registry/store-crash-child.js', import.meta.url));

/** Runs the child until it has acknowledged `killAfter` changes (then SIGKILL) or ends; returns the acks. */
function runChild(home: string, count: number, killAfter: number, journalMaxBytes?: number): Promise<{ acks: number[]; lastSeq: number; killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const args = [CHILD, home, String(count), ...(journalMaxBytes !== undefined ? [String(journalMaxBytes)] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: number[] = [];
    let lastSeq = 0;
    let buf = '';
    let stderr = '';
    let killed = false;
    const deadline = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`child did not finish in time; stderr: ${stderr}`)); }, 60_000);
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ack (\d+) (\d+)$/.exec(line);
        if (!m) continue;
        acks.push(Number(m[1]));
        lastSeq = Number(m[2]);
        if (!killed && acks.length >= killAfter) {
          killed = true;
          // a little later, so the kill lands anywhere in the next apply, distribute or save
          setImmediate(() => child.kill('SIGKILL'));
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child exited ${code ?? signal}: ${stderr}`));
      else resolve({ acks, lastSeq, killed: signal === 'SIGKILL', stderr });
    });
  });
}

describe('registry store - crash', () => {
  it('crash - a store killed with SIGKILL at random moments loses no acknowledged change', async () => {
    const h = testHome();
    try {
      const acked = new Set<number>();
      let killedRuns = 0;
      for (let round = 0; round < 4; round++) {
        const killAfter = 5 + Math.floor(Math.random() * 40);
        // odd rounds checkpoint every few records, so kills also land inside checkpoints
        const r = await runChild(h.root, 50, killAfter, round % 2 === 1 ? 1500 : undefined);
        if (r.killed) killedRuns++;
        for (const i of r.acks) acked.add(i);
        const s = h.open(); // recovery: must succeed and hold every acknowledged change
        const kv = s.cluster.nodes.find((n) => n.node === 'LONE')?.kv ?? {};
        for (const i of acked) assert.equal(kv[`c${i}`], `v${i}`, `round ${round}: acknowledged change c${i} lost (killed after ${killAfter} acks)`);
        assert.ok(s.lastSeq >= r.lastSeq, `round ${round}: seq went back from ${r.lastSeq} to ${s.lastSeq}`);
        validateClusterConfig(plain(s.cluster));
        s.close();
      }
      assert.ok(killedRuns >= 1, 'at least one run was killed mid-way');
      assert.ok(acked.size >= 20);
    } finally {
      h.cleanup();
    }
  });
});
