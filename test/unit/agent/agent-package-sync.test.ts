import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { INSTALLED_MANIFEST_FILE, PackageSync, checkPackageName, installPackage, updatePeriodFileName, type PackageInfo } from '../../../src/agent/index.js';
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
    assert.deepEqual(readdirSync(so).filter((f) => f !== INSTALLED_MANIFEST_FILE).sort(), ['a.js', 'b.js'], 'no temporary file left (the record of installed packages aside)');
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

describe('agent packages - removing what the view no longer lists', () => {
  const fetchFrom = (blobs: Record<string, Buffer>) => async (bin: string): Promise<Uint8Array> => blobs[bin]!;

  it('agent packages - a package the agent installed goes once it is no longer kept; a file put there by hand stays', async () => {
    const dir = soDir();
    const a = Buffer.from('package a\n');
    const b = Buffer.from('package b\n');
    const hand = Buffer.from('put here by the operator\n');
    writeFileSync(join(dir, 'hand.so'), hand);
    writeFileSync(join(dir, 'b.so'), b); // already there with the right bytes: not the agent's
    const sync = new PackageSync(dir);
    await sync.sync([info('a.so', a), info('b.so', b)], fetchFrom({ 'a.so': a, 'b.so': b }));
    assert.deepEqual([...sync.installed().keys()], ['a.so']);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, INSTALLED_MANIFEST_FILE), 'utf8')), { version: 1, packages: { 'a.so': sha(a) } });
    assert.deepEqual(sync.removeUnlisted(new Set(['a.so', 'b.so'])), { removed: [], kept: [], failed: [] });
    writeFileSync(join(dir, updatePeriodFileName('a.so')), a); // a leftover update-period file goes with it
    const r = sync.removeUnlisted(new Set());
    assert.deepEqual(r, { removed: ['a.so'], kept: [], failed: [] });
    assert.equal(existsSync(join(dir, 'a.so')), false);
    assert.equal(existsSync(join(dir, updatePeriodFileName('a.so'))), false);
    assert.deepEqual(readFileSync(join(dir, 'b.so')), b, 'never installed by the agent: kept');
    assert.deepEqual(readFileSync(join(dir, 'hand.so')), hand);
    assert.equal(new PackageSync(dir).installed().size, 0, 'the record is saved without a.so');
  });

  it('agent packages - a package changed by hand after the agent installed it is left in place and no longer counted as the agent\'s', async () => {
    const dir = soDir();
    const a = Buffer.from('package a\n');
    const sync = new PackageSync(dir);
    await sync.sync([info('a.so', a)], fetchFrom({ 'a.so': a }));
    writeFileSync(join(dir, 'a.so'), 'patched by hand, a different length\n');
    assert.deepEqual(sync.removeUnlisted(new Set()), { removed: [], kept: ['a.so'], failed: [] });
    assert.equal(readFileSync(join(dir, 'a.so'), 'utf8'), 'patched by hand, a different length\n');
    assert.equal(sync.installed().size, 0);
  });

  it('agent packages - the record survives a restart; a damaged record removes nothing', async () => {
    const dir = soDir();
    const a = Buffer.from('package a\n');
    await new PackageSync(dir).sync([info('a.so', a)], fetchFrom({ 'a.so': a }));
    assert.deepEqual(new PackageSync(dir).removeUnlisted(new Set()).removed, ['a.so'], 'a new agent process knows what the last one installed');
    await new PackageSync(dir).sync([info('a.so', a)], fetchFrom({ 'a.so': a }));
    writeFileSync(join(dir, INSTALLED_MANIFEST_FILE), '{not json');
    assert.deepEqual(new PackageSync(dir).removeUnlisted(new Set()), { removed: [], kept: [], failed: [] });
    assert.ok(existsSync(join(dir, 'a.so')));
    writeFileSync(join(dir, INSTALLED_MANIFEST_FILE), JSON.stringify({ version: 1, packages: { '../escape.so': sha(a), '.hidden': sha(a) } }));
    const s = new PackageSync(dir);
    assert.deepEqual(s.removeUnlisted(new Set()), { removed: [], kept: [], failed: [] }, 'names that are not plain package names are dropped, never unlinked');
    assert.equal(s.installed().size, 0);
  });
});
