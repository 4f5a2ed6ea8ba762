import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { PackageSync, checkPackageName, installPackage, updatePeriodFileName, type PackageInfo } from '../../../src/agent/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));
function soDir(): string {
  const t = tempDir('ibp-agent-so-');
  temps.push(t.cleanup);
  const dir = join(t.dir, 'so');
  mkdirSync(dir);
  return dir;
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const info = (bin: string, bytes: Buffer, app = bin): PackageInfo => ({ app, bin, sha256: sha(bytes), size: bytes.length });

/**
 * A reader in another thread doing what a platform does: read so/<bin>, and when it is missing read the
 * update-period file; it classifies every read as old, new or bad (anything else: torn, mixed, empty).
 */
const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { live, upd, oldSha, newSha, flag } = workerData;
const stop = new Int32Array(flag);
const counts = { old: 0, new: 0, bad: 0, fallback: 0, missing: 0 };
const bad = [];
let started = false;
while (Atomics.load(stop, 0) === 0) {
  if (!started && counts.old > 0) { started = true; parentPort.postMessage({ started: true }); }
  let buf;
  try { buf = readFileSync(live); } catch {
    try { buf = readFileSync(upd); counts.fallback++; } catch { counts.missing++; continue; }
  }
  const h = createHash('sha256').update(buf).digest('hex');
  if (h === oldSha) counts.old++;
  else if (h === newSha) counts.new++;
  else { counts.bad++; if (bad.length < 5) bad.push(buf.length); }
}
parentPort.postMessage({ counts, bad });
`;

describe('agent package replacement', () => {
  it('agent packages - a new package is written whole and no update-period or temporary file is left', () => {
    const so = soDir();
    const bytes = Buffer.from('export default async function () { return 0; }\n');
    installPackage(so, 'app.js', bytes);
    assert.deepEqual(readFileSync(join(so, 'app.js')), bytes);
    assert.deepEqual(readdirSync(so), ['app.js']);
  });

  it('agent packages - a reader racing the replacement always reads the whole old or the whole new package', async () => {
    const so = soDir();
    const oldBytes = Buffer.alloc(384 * 1024, 'o');
    const newBytes = Buffer.alloc(512 * 1024, 'n');
    installPackage(so, 'pkg.js', oldBytes);
    const flag = new SharedArrayBuffer(4);
    const worker = new Worker(READER, {
      eval: true,
      workerData: { live: join(so, 'pkg.js'), upd: join(so, updatePeriodFileName('pkg.js')), oldSha: sha(oldBytes), newSha: sha(newBytes), flag },
    });
    type Report = { counts: Record<string, number>; bad: number[] };
    let resolveStarted!: () => void;
    const started = new Promise<void>((r) => (resolveStarted = r));
    const result = new Promise<Report>((resolve, reject) => {
      worker.on('message', (m: { started?: boolean } & Report) => (m.started ? resolveStarted() : resolve(m)));
      worker.once('error', reject);
    });
    try {
      // Wait until the reader runs, then replace back and forth while it reads.
      await Promise.race([started, result]);
      for (let i = 0; i < 40; i++) {
        installPackage(so, 'pkg.js', i % 2 === 0 ? newBytes : oldBytes);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      Atomics.store(new Int32Array(flag), 0, 1);
    }
    const { counts, bad } = await result;
    await worker.terminate();
    assert.equal(counts.bad, 0, `torn reads seen (lengths ${bad.join(', ')}): ${JSON.stringify(counts)}`);
    assert.ok(counts.old! + counts.new! > 0, `the reader never read: ${JSON.stringify(counts)}`);
    assert.deepEqual(readFileSync(join(so, 'pkg.js')), oldBytes); // 40 swaps end on the old bytes
    assert.deepEqual(readdirSync(so), ['pkg.js']);
  });

  it('agent packages - sync downloads only the packages whose SHA-256 differs', async () => {
    const so = soDir();
    const same = Buffer.from('same');
    const changed = Buffer.from('changed v2');
    writeFileSync(join(so, 'same.js'), same);
    writeFileSync(join(so, 'changed.js'), 'changed v1');
    const fetched: string[] = [];
    const blobs: Record<string, Buffer> = { 'same.js': same, 'changed.js': changed, 'new.js': Buffer.from('new') };
    const ps = new PackageSync(so);
    const r = await ps.sync(
      [info('same.js', same), info('changed.js', changed), info('new.js', blobs['new.js']!)],
      async (bin) => {
        fetched.push(bin);
        return blobs[bin]!;
      },
    );
    assert.deepEqual(fetched.sort(), ['changed.js', 'new.js']);
    assert.deepEqual(r.updated.sort(), ['changed.js', 'new.js']);
    assert.deepEqual(r.unchanged, ['same.js']);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(readFileSync(join(so, 'changed.js')), changed);
    // Second round: nothing to fetch.
    fetched.length = 0;
    const r2 = await ps.sync([info('same.js', same), info('changed.js', changed), info('new.js', blobs['new.js']!)], async (bin) => {
      fetched.push(bin);
      return blobs[bin]!;
    });
    assert.deepEqual(fetched, []);
    assert.equal(r2.unchanged.length, 3);
  });

  it('agent packages - a local file changed behind the agent is noticed and replaced again', async () => {
    const so = soDir();
    const good = Buffer.from('good package');
    const ps = new PackageSync(so);
    await ps.sync([info('a.js', good)], async () => good);
    writeFileSync(join(so, 'a.js'), 'tampered!!!!'); // same length, new content
    let fetched = 0;
    const r = await ps.sync([info('a.js', good)], async () => {
      fetched++;
      return good;
    });
    assert.equal(fetched, 1);
    assert.deepEqual(r.updated, ['a.js']);
    assert.deepEqual(readFileSync(join(so, 'a.js')), good);
  });

  it('agent packages - a download whose SHA-256 or size differs from the view fails with IBP_ERR_AGENT_PACKAGE and leaves the live file', async () => {
    const so = soDir();
    writeFileSync(join(so, 'a.js'), 'old');
    const want = Buffer.from('the new bytes');
    const ps = new PackageSync(so);
    const r = await ps.sync([info('a.js', want), info('b.js', Buffer.from('b'))], async (bin) => (bin === 'a.js' ? Buffer.from('other bytes!!') : Buffer.from('b')));
    assert.equal(r.failed.length, 1);
    assert.equal(r.failed[0]!.bin, 'a.js');
    assert.equal(r.failed[0]!.error.code, 'IBP_ERR_AGENT_PACKAGE');
    assert.deepEqual(r.updated, ['b.js'], 'one failing package does not stop the others');
    assert.equal(readFileSync(join(so, 'a.js'), 'utf8'), 'old');
    assert.deepEqual(readdirSync(so).sort(), ['a.js', 'b.js']);
  });

  it('agent packages - a fetch that throws is reported per package, the live file untouched', async () => {
    const so = soDir();
    writeFileSync(join(so, 'a.js'), 'old');
    const r = await new PackageSync(so).sync([info('a.js', Buffer.from('new'))], async () => {
      throw new IbpError('IBP_ERR_INTERNAL', 'registry gone');
    });
    assert.equal(r.failed[0]?.error.message, 'registry gone');
    assert.equal(readFileSync(join(so, 'a.js'), 'utf8'), 'old');
  });

  it('agent packages - a complete update-period file left by a crash is finished without a download', async () => {
    const so = soDir();
    const bytes = Buffer.from('new package');
    writeFileSync(join(so, updatePeriodFileName('a.js')), bytes); // crash after unlinking the live file
    let fetched = 0;
    const r = await new PackageSync(so).sync([info('a.js', bytes)], async () => {
      fetched++;
      return bytes;
    });
    assert.equal(fetched, 0);
    assert.deepEqual(r.updated, ['a.js']);
    assert.deepEqual(readFileSync(join(so, 'a.js')), bytes);
    assert.equal(existsSync(join(so, updatePeriodFileName('a.js'))), false);
  });

  it('agent packages - names that are not plain file names in so/ are refused', async () => {
    for (const bad of ['', '.', '..', '../x.js', 'a/b.js', 'a\\b.js', '.hidden.js', `x.js${'.ibpupd'}`, 'nul\0.js']) {
      assert.throws(() => checkPackageName(bad), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_AGENT_PACKAGE', JSON.stringify(bad));
    }
    checkPackageName('ibp_test_echo.so');
    const so = soDir();
    const r = await new PackageSync(so).sync([info('../evil.js', Buffer.from('x'))], async () => Buffer.from('x'));
    assert.equal(r.failed[0]?.error.code, 'IBP_ERR_AGENT_PACKAGE');
    assert.equal(existsSync(join(so, '..', 'evil.js')), false);
  });
});
