import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { generateCluster } from '../../../bench/registry-gen.js';
import type { ClusterConfig } from '../../../src/core/cluster-model.js';
import { loadClusterConfig } from '../../../src/core/config/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { encodeBinBody } from '../../../src/registry/store/bin-image.js';
import { decodeBinBody } from '../../../src/registry/store/bin-table.js';
import { binPathOf, loadClusterFiles, loadClusterFilesNow } from '../../../src/registry/store/index.js';
import { MemoryLogger, plain, smallCluster, testHome } from './store-helpers.js';

describe('registry store - .bin images', () => {
  it('bin - a .bin load equals the .conf load, for a generated cluster', () => {
    const h = testHome(generateCluster({ nodes: 40, hosts: 130, apps: 900, projects: 60 }));
    try {
      const fromConf = plain(loadClusterConfig(h.home.etc));
      const a = h.open();
      assert.deepEqual(a.loadedFrom, { nodes: 'conf', apps: 'conf', projects: 'conf' });
      const bins = a.buildConfig();
      assert.deepEqual(bins, [binPathOf(h.paths.nodes), binPathOf(h.paths.apps), binPathOf(h.paths.projects)]);
      a.close();
      for (const binCheck of ['stat', 'sha256'] as const) {
        const r = loadClusterFiles({ paths: h.paths, binCheck });
        assert.deepEqual(r.from, { nodes: 'bin', apps: 'bin', projects: 'bin' }, binCheck);
        assert.equal(r.crossChecked, true, 'images built together vouch for the cross-file check');
        assert.deepEqual(plain(r.cluster), fromConf, binCheck);
      }
      const b = h.open();
      assert.deepEqual(b.loadedFrom, { nodes: 'bin', apps: 'bin', projects: 'bin' });
      assert.deepEqual(plain(b.cluster), fromConf);
      b.close();
    } finally {
      h.cleanup();
    }
  });

  it('bin - odd strings survive an image: non-ASCII, a lone surrogate, a KV key named __proto__, empty lists', () => {
    const c: ClusterConfig = smallCluster();
    const kv: Record<string, string> = { 中文: '值', emoji: '😀' };
    Object.defineProperty(kv, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
    c.nodes[0] = { ...c.nodes[0]!, kv, keyExp: 'k\uD800x' };
    c.apps[0] = { ...c.apps[0]!, desc: 'déjà vu 交易' };
    c.projects.push({ project: 'EMPTY', serverNodes: [], clientNodes: [], apps: [] });
    for (const kind of ['nodes', 'apps', 'projects'] as const) {
      const back = decodeBinBody(kind, encodeBinBody(kind, c[kind]));
      assert.deepEqual(back, c[kind], kind);
    }
    const back = decodeBinBody('nodes', encodeBinBody('nodes', c.nodes));
    assert.ok(Object.hasOwn(back[0]!.kv, '__proto__'));
    assert.equal(Object.getPrototypeOf(back[0]!.kv), Object.prototype);
  });

  it('bin - a stale image (the .conf changed after build_config) is ignored with a warning', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.buildConfig();
      a.close();
      const text = readFileSync(h.paths.apps, 'utf8').replace('"crm_query desc"', '"changed desc"');
      writeFileSync(h.paths.apps, text);
      const log = new MemoryLogger();
      const b = h.open({ logger: log });
      assert.deepEqual(b.loadedFrom, { nodes: 'bin', apps: 'conf', projects: 'bin' });
      assert.equal(b.cluster.apps.find((x) => x.app === 'crm_query')?.desc, 'changed desc');
      assert.ok(log.warnings().some((w) => /ibp_apps\.conf\.bin.*stale/.test(w)), log.warnings().join('\n'));
      b.close();
    } finally {
      h.cleanup();
    }
  });

  it('bin - a touched but unchanged .conf still uses its image (the sha256 agrees); a same-size edit does not', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.buildConfig();
      a.close();
      // same bytes, new mtime: stat differs, sha256 matches → image used
      const later = new Date(Date.now() + 5000);
      utimesSync(h.paths.nodes, later, later);
      assert.equal(loadClusterFiles({ paths: h.paths }).from.nodes, 'bin');
      // same size, other content
      const text = readFileSync(h.paths.nodes, 'utf8');
      writeFileSync(h.paths.nodes, text.replace('"s1"', '"s9"'));
      assert.equal(loadClusterFiles({ paths: h.paths, binCheck: 'sha256' }).from.nodes, 'conf');
      assert.equal(loadClusterFiles({ paths: h.paths }).from.nodes, 'conf', 'the write changed the stat');
    } finally {
      h.cleanup();
    }
  });

  it('bin - a torn image is ignored at load, a corrupt body when its records are first read', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.buildConfig();
      a.close();
      const bin = binPathOf(h.paths.projects);
      const bytes = readFileSync(bin);
      bytes[bytes.length - 3] ^= 0x20;
      writeFileSync(bin, bytes);
      const r = loadClusterFiles({ paths: h.paths });
      assert.equal(r.from.projects, 'bin', 'opening an image does not read its body');
      assert.throws(() => r.cluster, (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_REGISTRY_BIN_IMAGE' && /checksum mismatch/.test(err.message));
      const log = new MemoryLogger();
      const now = loadClusterFilesNow({ paths: h.paths, logger: log });
      assert.equal(now.from.projects, 'conf');
      assert.deepEqual(now.refused, ['projects']);
      assert.ok(log.warnings().some((w) => /ibp_projects\.conf\.bin: checksum mismatch/.test(w)), log.warnings().join('\n'));
      assert.deepEqual(plain(now.cluster), plain(loadClusterConfig(h.home.etc)));
      writeFileSync(bin, bytes.subarray(0, bytes.length - 10));
      const log2 = new MemoryLogger();
      const torn = loadClusterFiles({ paths: h.paths, logger: log2 });
      assert.equal(torn.from.projects, 'conf');
      assert.deepEqual(torn.refused, ['projects']);
      assert.ok(log2.warnings().some((w) => /torn/.test(w)));
      assert.equal((log2.lines.find((l) => l.level === 'warn')?.obj as { code?: string }).code, 'IBP_ERR_REGISTRY_BIN_IMAGE');
    } finally {
      h.cleanup();
    }
  });

  it('bin - build_config with unsaved changes images the files on disk, not memory', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.apply({ action: 'add_node', node: 'UNSAVED' });
      a.buildConfig();
      a.close();
      const r = loadClusterFiles({ paths: h.paths });
      assert.deepEqual(r.from, { nodes: 'bin', apps: 'bin', projects: 'bin' });
      assert.equal(r.cluster.nodes.some((n) => n.node === 'UNSAVED'), false);
      const b = h.open();
      assert.ok(b.cluster.nodes.some((n) => n.node === 'UNSAVED'), 'the journal still brings it back');
      b.saveConfig();
      b.buildConfig();
      b.close();
      assert.ok(loadClusterFiles({ paths: h.paths }).cluster.nodes.some((n) => n.node === 'UNSAVED'));
    } finally {
      h.cleanup();
    }
  });

  it('bin - build_config of invalid .conf files throws the loader error naming the file', () => {
    const h = testHome();
    try {
      const a = h.open();
      writeFileSync(h.paths.projects, readFileSync(h.paths.projects, 'utf8').replace('"crm_query"', '"no_such_app"'));
      assert.throws(() => a.buildConfig(), (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_INVALID' && /ibp_projects\.conf:\d+:\d+/.test(err.message));
      a.close();
    } finally {
      h.cleanup();
    }
  });

  it('bin - an app defined twice fails open with the loader\'s located error', () => {
    const h = testHome();
    try {
      const c = smallCluster();
      c.apps.push({ ...c.apps[1]!, desc: 'again' });
      h.writeCluster(c);
      assert.throws(() => h.open(), (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_INVALID' && /ibp_apps\.conf:\d+:\d+: duplicate app "ibp_test_file"/.test(err.message));
    } finally {
      h.cleanup();
    }
  });

  it('bin - an inconsistent set of .conf files fails open with the loader\'s located error', () => {
    const h = testHome();
    try {
      writeFileSync(h.paths.projects, readFileSync(h.paths.projects, 'utf8').replace('"CRM"', '"NOPE"'));
      assert.throws(() => h.open(), (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_INVALID' && /ibp_projects\.conf:\d+:\d+: .*unknown node "NOPE"/.test(err.message));
    } finally {
      h.cleanup();
    }
  });
});
