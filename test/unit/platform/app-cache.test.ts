import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppPackageCache } from '../../../src/platform/app-cache.js';
import { IbpError } from '../../../src/core/errors.js';
import { installPackage } from '../../../src/agent/package-sync.js';

/**
 * One whole turn of the event loop, so that it polls for I/O at least once after the file operations: a request
 * arriving on a socket after them is read by such a poll, which also reads the watch event (the kernel queued it
 * first). Two immediates: the second runs in the check phase of the next loop iteration, after its poll.
 */
const turn = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

test('app package cache - loads a package once, reloads it when the file changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-apps-'));
  try {
    const p = join(dir, 'a.mjs');
    writeFileSync(p, 'export default () => 1;');
    const cache = new AppPackageCache(10);
    const e1 = await cache.entryOf(p, 'a');
    assert.equal(e1({} as never), 1);
    assert.equal(await cache.entryOf(p, 'a'), e1, 'unchanged file: the cached entry');
    writeFileSync(p, 'export default () => 22; // longer, so the size changes too');
    await turn();
    const e2 = await cache.entryOf(p, 'a');
    assert.notEqual(e2, e1);
    assert.equal(e2({} as never), 22);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('app package cache - LRU keeps at most max entries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-apps-'));
  try {
    const cache = new AppPackageCache(2);
    for (const n of ['x', 'y', 'z']) {
      writeFileSync(join(dir, `${n}.mjs`), `export function somain() { return '${n}'; }`);
      await cache.entryOf(join(dir, `${n}.mjs`), n);
    }
    assert.equal(cache.size, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('app package cache - missing, broken and entry-less packages are coded load errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-apps-'));
  try {
    const cache = new AppPackageCache(5);
    const check = async (file: string, re: RegExp): Promise<void> => {
      const err = await cache.entryOf(join(dir, file), 'app1').catch((e: unknown) => e);
      assert.ok(err instanceof IbpError, file);
      assert.equal(err.code, 'IBP_ERR_SERVER_APP_LOAD');
      assert.match(err.message, re);
    };
    await check('missing.mjs', /missing/);
    writeFileSync(join(dir, 'broken.mjs'), 'export default (;');
    await check('broken.mjs', /failed to load/);
    writeFileSync(join(dir, 'noentry.mjs'), 'export const x = 1;');
    await check('noentry.mjs', /exports no default function or somain/);
    writeFileSync(join(dir, 'gone.mjs'), 'export default () => 0;');
    await cache.entryOf(join(dir, 'gone.mjs'), 'gone');
    unlinkSync(join(dir, 'gone.mjs'));
    await check('gone.mjs', /missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- hot update (features #31, #56, #57)

const pkg = (v: number): string => `export default () => ({ v: ${v}, url: import.meta.url });\n`;
type Answer = { v: number; url: string };
const call = async (cache: AppPackageCache, p: string): Promise<Answer> => (await cache.entryOf(p, 'app'))({} as never) as unknown as Answer;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-apps-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('app package cache - the watch drops a changed package without any call, and the next call loads the new code', () =>
  withDir(async (dir) => {
    const p = join(dir, 'w.mjs');
    writeFileSync(p, pkg(1));
    const cache = new AppPackageCache(10);
    try {
      assert.equal((await call(cache, p)).v, 1);
      assert.equal(cache.watchedDirs, 1);
      writeFileSync(p, pkg(2));
      await waitUntil(() => !cache.has(p), 'the watch to drop the changed package');
      assert.equal((await call(cache, p)).v, 2);
    } finally {
      cache.close();
    }
  }));

test('app package cache - a deleted package is dropped by the watch and its next call is a load error', () =>
  withDir(async (dir) => {
    const p = join(dir, 'd.mjs');
    writeFileSync(p, pkg(1));
    const cache = new AppPackageCache(10);
    try {
      await call(cache, p);
      unlinkSync(p);
      await waitUntil(() => cache.size === 0, 'the watch to drop the deleted package');
      await assert.rejects(cache.entryOf(p, 'd'), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_SERVER_APP_LOAD' && /missing/.test(e.message));
    } finally {
      cache.close();
    }
  }));

test('app package cache - while the live file is missing the update-period file answers; after the rename the live file does', () =>
  withDir(async (dir) => {
    const p = join(dir, 'u.mjs');
    writeFileSync(p, pkg(1));
    const cache = new AppPackageCache(10);
    try {
      assert.equal((await call(cache, p)).v, 1);
      writeFileSync(`${p}.ibpupd`, pkg(2));
      await turn();
      assert.equal((await call(cache, p)).v, 1, 'the live file still answers while the update-period file is written');
      unlinkSync(p);
      await turn();
      const during = await call(cache, p);
      assert.equal(during.v, 2);
      assert.match(during.url, /\/u\.mjs\.ibpupd\?v=[\d.]+-\d+-\d+$/, 'loaded from the update-period file under a versioned URL');
      renameSync(`${p}.ibpupd`, p);
      await turn();
      const after = await call(cache, p);
      assert.equal(after.v, 2);
      assert.match(after.url, /\/u\.mjs\?v=/, 'the live file answers once it is back');
    } finally {
      cache.close();
    }
  }));

test('app package cache - 30 replacements the agent\'s way: each next call, one event-loop turn later, runs the newest version', () =>
  withDir(async (dir) => {
    const bin = 'a.mjs';
    installPackage(dir, bin, Buffer.from(pkg(0)));
    const cache = new AppPackageCache(10);
    try {
      const urls = new Set<string>();
      for (let v = 1; v <= 30; v++) {
        installPackage(dir, bin, Buffer.from(pkg(v)));
        await turn();
        const r = await call(cache, join(dir, bin));
        assert.equal(r.v, v);
        urls.add(r.url);
      }
      assert.equal(urls.size, 30, 'every version has its own module URL');
    } finally {
      cache.close();
    }
  }));

test('app package cache - without a watch every call stats the package and sees a change at once', () =>
  withDir(async (dir) => {
    const p = join(dir, 's.mjs');
    writeFileSync(p, pkg(1));
    const cache = new AppPackageCache(10, { watch: false });
    try {
      assert.equal((await call(cache, p)).v, 1);
      assert.equal(cache.watchedDirs, 0);
      writeFileSync(p, pkg(22));
      assert.equal((await call(cache, p)).v, 22, 'no event-loop turn needed');
      unlinkSync(p);
      writeFileSync(`${p}.ibpupd`, pkg(3));
      assert.equal((await call(cache, p)).v, 3, 'the update-period file answers without a watch too');
    } finally {
      cache.close();
    }
  }));

test('app package cache - an unchanged package is not imported again', () =>
  withDir(async (dir) => {
    const p = join(dir, 'same.mjs');
    writeFileSync(p, pkg(1));
    for (const watch of [true, false]) {
      const cache = new AppPackageCache(10, { watch, revalidateMs: 0 });
      try {
        const e1 = await cache.entryOf(p, 'same');
        await turn();
        assert.equal(await cache.entryOf(p, 'same'), e1, `watch ${watch}: the cached entry`);
      } finally {
        cache.close();
      }
    }
  }));

async function waitUntil(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
