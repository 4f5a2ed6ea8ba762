import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { generateCluster } from '../../../bench/registry-gen.js';
import { loadClusterConfig } from '../../../src/core/config/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { BIN_FORMAT, parseBinFile } from '../../../src/registry/store/bin-image.js';
import { binPathOf, BinTable, loadClusterFiles } from '../../../src/registry/store/index.js';
import { MemoryLogger, plain, testHome, type TestHome } from './store-helpers.js';

const json = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const isBinError = (re: RegExp) => (err: unknown): boolean => err instanceof IbpError && err.code === 'IBP_ERR_REGISTRY_BIN_IMAGE' && re.test(err.message);

/** A home whose three images were built by a store. */
function builtHome(h: TestHome): void {
  const s = h.open();
  s.buildConfig();
  s.close();
}

/** Opens the store over the damaged image of `kind`: it loads the .conf, warns with the code and rebuilds the image. */
function assertRefusedAndRebuilt(h: TestHome, kind: 'nodes' | 'apps' | 'projects', reason: RegExp): void {
  const bin = binPathOf(h.paths[kind]);
  const log = new MemoryLogger();
  const s = h.open({ logger: log });
  assert.equal(s.loadedFrom[kind], 'conf');
  assert.deepEqual(plain(s.cluster), plain(loadClusterConfig(h.home.etc)));
  const warn = log.lines.find((l) => l.level === 'warn' && reason.test(l.msg));
  assert.ok(warn, log.warnings().join('\n'));
  assert.equal((warn.obj as { code?: string }).code, 'IBP_ERR_REGISTRY_BIN_IMAGE');
  assert.ok(log.lines.some((l) => l.level === 'info' && /rebuilt the \.bin images/.test(l.msg)));
  s.close();
  assert.ok(readFileSync(bin).subarray(0, 9).toString('latin1') === `IBPBIN ${BIN_FORMAT} `, 'rebuilt in the current format');
  const again = h.open();
  assert.deepEqual(again.loadedFrom, { nodes: 'bin', apps: 'bin', projects: 'bin' });
  again.close();
}

describe('registry store - .bin format 2: versioning, refusal, lazy records', () => {
  it('bin format - an image of the previous format (1) is refused with a coded error and rebuilt from the .conf', () => {
    const h = testHome();
    try {
      builtHome(h);
      const bin = binPathOf(h.paths.apps);
      const bytes = readFileSync(bin);
      const nl = bytes.indexOf(0x0a);
      const fields = bytes.subarray(0, nl).toString('latin1').trimEnd().split(' ');
      fields[1] = '1';
      writeFileSync(bin, Buffer.concat([Buffer.from(`${fields.join(' ')}\n`, 'latin1'), bytes.subarray(nl + 1)]));
      assert.match(String(parseBinFile(readFileSync(bin), 'apps')), /format "1", this registry reads format 2/);
      const r = loadClusterFiles({ paths: h.paths });
      assert.equal(r.from.apps, 'conf');
      assert.deepEqual(r.refused, ['apps']);
      assertRefusedAndRebuilt(h, 'apps', /format "1"/);
    } finally {
      h.cleanup();
    }
  });

  it('bin format - a foreign file or an image of another kind is refused and rebuilt', () => {
    const h = testHome();
    try {
      builtHome(h);
      writeFileSync(binPathOf(h.paths.nodes), 'just some text\nthat is not an image\n');
      assertRefusedAndRebuilt(h, 'nodes', /not a \.bin image/);
      writeFileSync(binPathOf(h.paths.projects), readFileSync(binPathOf(h.paths.apps)));
      assertRefusedAndRebuilt(h, 'projects', /an image of "apps", not projects/);
    } finally {
      h.cleanup();
    }
  });

  it('bin format - a corrupt body (a flipped bit in the text) is refused at open and rebuilt', () => {
    const h = testHome();
    try {
      builtHome(h);
      const bin = binPathOf(h.paths.nodes);
      const bytes = readFileSync(bin);
      bytes[bytes.length - 2] ^= 0x01;
      writeFileSync(bin, bytes);
      assertRefusedAndRebuilt(h, 'nodes', /checksum mismatch/);
    } finally {
      h.cleanup();
    }
  });

  it('bin format - records are decoded on first access, one at a time, and equal the .conf records', () => {
    const h = testHome(generateCluster({ nodes: 30, hosts: 90, apps: 500, projects: 40 }));
    try {
      builtHome(h);
      const want = plain(loadClusterConfig(h.home.etc));
      const r = loadClusterFiles({ paths: h.paths });
      const apps = r.tables.apps!;
      assert.ok(apps instanceof BinTable);
      assert.equal(apps.count, 500);
      assert.equal(apps.name(123), want.apps[123]!.app);
      const one = apps.get(123);
      assert.deepEqual(json(one), want.apps[123]);
      assert.equal(apps.get(123), one, 'decoded once, then the same object');
      assert.equal(r.cluster.apps[123], one, 'the whole list reuses records already decoded');
      for (const kind of ['nodes', 'projects'] as const) {
        const t = r.tables[kind]!;
        for (let i = 0; i < t.count; i += 7) assert.deepEqual(json(t.get(i)), want[kind][i], `${kind} ${i}`);
      }
      assert.deepEqual(plain(r.cluster), want);
      assert.throws(() => apps.get(500), RangeError);
    } finally {
      h.cleanup();
    }
  });

  it('bin format - a body whose tables do not add up is refused when opened', () => {
    const h = testHome();
    try {
      builtHome(h);
      const bytes = readFileSync(binPathOf(h.paths.apps));
      const parsed = parseBinFile(bytes, 'apps');
      assert.ok(typeof parsed !== 'string');
      const body = Buffer.from(parsed.body);
      body.writeUInt32LE(body.readUInt32LE(0) + 1, 0); // one record more than the tables hold
      assert.throws(() => BinTable.open('apps', body, undefined, 'x.bin'), isBinError(/x\.bin: section sizes do not add up/));
    } finally {
      h.cleanup();
    }
  });
  it('bin format - when the images alone do not vouch for the cluster, a corrupt body found by the cross check falls back to its .conf', () => {
    const h = testHome();
    try {
      builtHome(h);
      // the nodes image goes stale (the cross check must run over the images' records), the apps body is corrupt
      writeFileSync(h.paths.nodes, readFileSync(h.paths.nodes, 'utf8').replace('"s1"', '"s2"'));
      const bin = binPathOf(h.paths.apps);
      const bytes = readFileSync(bin);
      bytes[bytes.length - 5] ^= 0x04;
      writeFileSync(bin, bytes);
      const log = new MemoryLogger();
      const r = loadClusterFiles({ paths: h.paths, logger: log });
      assert.deepEqual(r.from, { nodes: 'conf', apps: 'conf', projects: 'bin' });
      assert.deepEqual(r.refused.sort(), ['apps', 'nodes']);
      assert.ok(log.warnings().some((w) => /ibp_apps\.conf\.bin: checksum mismatch/.test(w)), log.warnings().join('\n'));
      assert.deepEqual(plain(r.cluster), plain(loadClusterConfig(h.home.etc)));
    } finally {
      h.cleanup();
    }
  });
});
