import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppPackageCache } from '../../../src/platform/app-cache.js';
import { IbpError } from '../../../src/core/errors.js';

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
