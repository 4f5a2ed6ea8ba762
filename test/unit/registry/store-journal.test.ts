import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadClusterConfig } from '../../../src/core/config/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { JOURNAL_HEADER, readJournal } from '../../../src/registry/store/journal.js';
import { saveClusterFiles } from '../../../src/registry/store/cluster-files.js';
import type { AdminCommand } from '../../../src/registry/store/index.js';
import { MemoryLogger, plain, testHome } from './store-helpers.js';

const kv = (i: number): AdminCommand => ({ action: 'add_node_kv', node: 'LONE', key: `k${i}`, value: `v${i}` });

/** Byte offsets where each journal record (line) starts, after the header. */
function recordStarts(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let pos = JOURNAL_HEADER.length; pos < bytes.length;) {
    out.push(pos);
    pos = bytes.indexOf(0x0a, pos) + 1;
  }
  return out;
}

describe('registry store - journal and recovery', () => {
  it('journal - every acknowledged change is on disk before apply returns (reopen without close)', () => {
    const h = testHome();
    try {
      const a = h.open();
      for (let i = 0; i < 5; i++) a.apply(kv(i));
      // no close: a second store reads the files as a crash would leave them
      const b = h.open();
      assert.deepEqual(plain(b.cluster), plain(a.cluster));
      assert.equal(b.lastSeq, 5);
      b.close();
      a.close();
    } finally {
      h.cleanup();
    }
  });

  it('journal - a torn last record is dropped, every complete one is replayed, and appends continue cleanly', () => {
    const h = testHome();
    try {
      const a = h.open();
      for (let i = 0; i < 4; i++) a.apply(kv(i));
      a.close();
      const bytes = h.journalBytes();
      const starts = recordStarts(bytes);
      assert.equal(starts.length, 4);
      const lastStart = starts[3] as number;
      truncateSync(h.journalPath, lastStart + Math.floor((bytes.length - lastStart) / 2)); // crash mid-append
      const log = new MemoryLogger();
      const b = h.open({ logger: log });
      const lone = b.cluster.nodes.find((n) => n.node === 'LONE');
      assert.deepEqual(Object.keys(lone?.kv ?? {}), ['k0', 'k1', 'k2']);
      assert.equal(b.lastSeq, 3);
      assert.ok(log.warnings().some((w) => /torn last journal record/.test(w)), log.warnings().join('\n'));
      assert.equal(b.apply(kv(9)).seq, 4, 'the next record reuses the unacknowledged seq');
      b.close();
      const c = h.open();
      assert.deepEqual(Object.keys(c.cluster.nodes.find((n) => n.node === 'LONE')?.kv ?? {}), ['k0', 'k1', 'k2', 'k9']);
      c.close();
      assert.equal(readJournal(h.journalPath).tornBytes, 0);
    } finally {
      h.cleanup();
    }
  });

  it('journal - a closed store refuses changes with a coded error and writes nothing', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.apply(kv(1));
      a.close();
      a.close(); // idempotent
      const bytes = h.journalBytes();
      assert.throws(() => a.apply(kv(2)), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_JOURNAL' && /closed/.test(e.message));
      assert.throws(() => a.distribute(), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_JOURNAL');
      assert.deepEqual(h.journalBytes(), bytes);
    } finally {
      h.cleanup();
    }
  });

  it('journal - a corrupt record in the middle is a coded error naming the line', () => {
    const h = testHome();
    try {
      const a = h.open();
      for (let i = 0; i < 3; i++) a.apply(kv(i));
      a.close();
      const bytes = h.journalBytes();
      const second = recordStarts(bytes)[1] as number;
      bytes[second + 20] = bytes[second + 20] === 0x41 ? 0x42 : 0x41; // one flipped byte in record 2
      writeFileSync(h.journalPath, bytes);
      assert.throws(() => h.open(), (err: unknown) => {
        assert.ok(err instanceof IbpError);
        assert.equal(err.code, 'IBP_ERR_REGISTRY_JOURNAL');
        assert.match(err.message, /line 3 .*corrupt: checksum mismatch; records follow it/);
        return true;
      });
    } finally {
      h.cleanup();
    }
  });

  it('journal - save_config writes the .conf files, starts an empty journal, and a reopen equals', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.apply({ action: 'add_node', node: 'NEW', key_exp: 'nk' });
      a.apply({ action: 'add_node_host', node: 'NEW', ip: '10.9.9.9', port: '-7000' });
      a.apply({ action: 'add_app', app: 'new_app', bin: 'n.mjs', timeout: '9', server_node: 'NEW' });
      a.apply({ action: 'add_project', project: 'PN', server_nodes: 'NEW', client_nodes: 'LONE', apps: 'new_app orphan' });
      a.apply({ action: 'set_node', node: 'ECIF', key_exp: 'rotated' });
      assert.equal(a.unsavedChanges, 4, 'NEW, new_app, PN and ECIF');
      const files = a.saveConfig();
      assert.deepEqual(files, [h.paths.nodes, h.paths.apps, h.paths.projects]);
      assert.equal(a.unsavedChanges, 0);
      assert.equal(h.journalBytes().toString(), JOURNAL_HEADER, 'saved changes are not replayed again');
      assert.deepEqual(plain(loadClusterConfig(h.home.etc)), plain(a.cluster), 'the files hold the cluster');
      const b = h.open();
      assert.deepEqual(plain(b.cluster), plain(a.cluster));
      assert.deepEqual(b.keyState('ECIF'), a.keyState('ECIF'), 'key rotation state survives the journal rotation');
      assert.equal(b.lastSeq, a.lastSeq, 'seq continues across the rotation');
      assert.equal(b.apply(kv(1)).seq, a.lastSeq + 1);
      a.close();
      b.close();
    } finally {
      h.cleanup();
    }
  });

  it('journal - a crash inside save_config converges: some .conf files new, old journal and checkpoint', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.apply(kv(1));
      a.saveConfig(); // a checkpoint exists from here on
      a.apply({ action: 'add_node', node: 'N2' });
      a.apply({ action: 'add_app', app: 'a2', bin: 'a2.mjs', timeout: '5' });
      a.apply({ action: 'add_project', project: 'P9', server_nodes: 'N2', client_nodes: 'LONE', apps: 'a2' });
      a.apply({ action: 'set_project', project: 'P9', client_nodes: 'GW' });
      const expected = plain(a.cluster);
      // the crash: nodes and projects written, apps not, no new checkpoint, the journal still full
      saveClusterFiles({ nodes: h.paths.nodes, apps: `${h.paths.apps}.ignored`, projects: h.paths.projects }, plain(a.cluster));
      assert.throws(() => loadClusterConfig(h.home.etc), /unknown app "a2"/, 'the files alone are inconsistent');
      a.close();
      const b = h.open();
      assert.deepEqual(plain(b.cluster), expected);
      b.close();
    } finally {
      h.cleanup();
    }
  });

  it('journal - a crash after the checkpoint but before the journal reset replays nothing twice', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.apply({ action: 'add_node', node: 'N2' });
      a.apply({ action: 'add_node_kv', node: 'N2', key: 'x', value: '1' });
      const journalBefore = h.journalBytes();
      a.saveConfig();
      a.close();
      writeFileSync(h.journalPath, journalBefore); // the old journal came back
      // an operator edit made after the save must not be overwritten by the already-saved records
      const c = loadClusterConfig(h.home.etc);
      const edited = { ...c, nodes: c.nodes.map((n) => (n.node === 'N2' ? { ...n, kv: { x: 'edited' } } : n)) };
      h.writeCluster(edited);
      const b = h.open();
      assert.equal(b.cluster.nodes.find((n) => n.node === 'N2')?.kv.x, 'edited');
      assert.equal(b.lastSeq, 2);
      b.close();
    } finally {
      h.cleanup();
    }
  });

  it('journal - a journal past its bound becomes a checkpoint holding the unsaved records', () => {
    const h = testHome();
    try {
      const a = h.open({ journalMaxBytes: 600 });
      for (let i = 0; i < 12; i++) a.apply(kv(i));
      a.apply({ action: 'remove_node_kv', node: 'LONE', key: 'k3' });
      assert.ok(h.journalBytes().length <= 600 + 400, 'the journal was rotated');
      assert.ok(existsSync(join(h.home.run, 'ibms', 'checkpoint')));
      const expected = plain(a.cluster);
      a.close();
      const b = h.open();
      assert.deepEqual(plain(b.cluster), expected, 'unsaved changes survive without a save_config');
      assert.equal(b.unsavedChanges, 1, 'LONE is still unsaved');
      b.close();
      assert.notDeepEqual(plain(loadClusterConfig(h.home.etc)), expected, 'the .conf files were not written');
    } finally {
      h.cleanup();
    }
  });

  it('journal - pending nodes, versions and published views survive a restart', () => {
    const h = testHome();
    try {
      const a = h.open();
      assert.deepEqual(a.pendingNodes(), ['CORE', 'CRM', 'ECIF', 'GW', 'LONE'], 'never-published nodes are pending');
      const d1 = a.distribute();
      assert.equal(d1.version, 1);
      assert.deepEqual(a.pendingNodes(), []);
      a.apply({ action: 'set_node_kv', node: 'ECIF', key: 'ecif_secret', value: 's2' });
      const v2 = a.downloadConfig('GW').version;
      assert.equal(v2, 2);
      const views = Object.fromEntries(['CORE', 'CRM', 'ECIF', 'GW', 'LONE'].map((n) => [n, plain(a.published(n) as never)]));
      a.close();
      const b = h.open();
      assert.deepEqual(b.pendingNodes(), ['ECIF'], 'pending survives');
      assert.equal(b.version, 2, 'the version survives');
      for (const [n, v] of Object.entries(views)) assert.deepEqual(plain(b.published(n) as never), v, `view of ${n}`);
      assert.equal(b.distribute().version, 3, 'versions keep increasing');
      b.saveConfig(); // checkpoint + journal rotation
      b.close();
      const c = h.open();
      assert.equal(c.version, 3);
      assert.deepEqual(c.pendingNodes(), []);
      assert.equal(c.published('ECIF')?.kv.ecif_secret, 's2');
      assert.equal(c.downloadConfig('LONE').version, 4);
      c.close();
    } finally {
      h.cleanup();
    }
  });

  it('journal - view segments no node refers to are deleted', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.distribute();
      for (const n of ['CORE', 'CRM', 'ECIF', 'GW', 'LONE']) a.downloadConfig(n);
      const dir = join(h.home.run, 'ibms', 'views');
      assert.equal(readdirSync(dir).length, 5, 'the first publish is superseded everywhere');
      a.apply({ action: 'add_node', node: 'TMP' });
      a.distribute();
      a.apply({ action: 'remove_node', node: 'TMP' });
      assert.equal(a.published('TMP'), undefined);
      assert.equal(readdirSync(dir).length, 5, 'the removed node\'s segment went with it');
      a.close();
      writeFileSync(join(dir, 'pub-999.views'), 'stray');
      h.open().close();
      assert.ok(!existsSync(join(dir, 'pub-999.views')), 'an unreferenced segment is collected at open');
    } finally {
      h.cleanup();
    }
  });

  it('journal - a lost view segment makes its nodes pending again, with a warning', () => {
    const h = testHome();
    try {
      const a = h.open();
      a.distribute();
      a.close();
      const dir = join(h.home.run, 'ibms', 'views');
      const seg = readdirSync(dir)[0] as string;
      const bytes = readFileSync(join(dir, seg));
      bytes[bytes.length - 5] ^= 1;
      writeFileSync(join(dir, seg), bytes);
      copyFileSync(join(dir, seg), join(dir, seg)); // still there, but corrupt
      const log = new MemoryLogger();
      const b = h.open({ logger: log });
      assert.deepEqual(b.pendingNodes(), ['CORE', 'CRM', 'ECIF', 'GW', 'LONE']);
      assert.equal(b.published('ECIF'), undefined);
      assert.equal(b.version, 1, 'the version does not go back');
      assert.ok(log.warnings().some((w) => /checksum mismatch/.test(w)), log.warnings().join('\n'));
      assert.equal(b.distribute().version, 2);
      b.close();
    } finally {
      h.cleanup();
    }
  });
});
