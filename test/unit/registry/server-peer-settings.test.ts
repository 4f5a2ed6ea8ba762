/**
 * The registry HTTP API in-process, over a small stand-in store: a parked view long-poll keeps its session
 * listed however long the hold (a fake clock moves past the session expiry), and replies are gzip'd at or
 * above the threshold the peer states (`X-IBP-Min-Compress-Size`), else the registry's default.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { defaultIbmsConfText, parseIbmsConf } from '../../../src/core/config/index.js';
import { closeAllLogs, createLogger } from '../../../src/core/log.js';
import { generateNodeKeyPair, RegistryClient, resolveRegistrySettings, signNodeRequest } from '../../../src/registry/index.js';
import { RegistryServer } from '../../../src/registry/registry-server.js';
import { PEER_LIVE_MS } from '../../../src/registry/sessions.js';
import type { PublishedView, RegistryStore } from '../../../src/registry/store/index.js';
import { DEFAULT_MIN_COMPRESS_SIZE, type SessionRow } from '../../../src/registry/wire.js';

const ECIF = generateNodeKeyPair(1024);

/** The store's surface the server uses, in memory: one node ECIF, published on demand. */
class StandInStore {
  views = new Map<string, PublishedView>();
  version = 0;
  get cluster() {
    return { nodes: [], apps: [], projects: [] };
  }
  pendingNodes() {
    return [];
  }
  distribute() {
    return { nodes: [], version: this.version };
  }
  downloadConfig(node: string) {
    this.version += 1;
    this.views.set(node, {
      node, version: this.version, apps: [], servedApps: [], kv: {}, packages: [],
      nodes: [{ name: node, invalid: false, hosts: [], keyExp: `key-${node}`, oldKeyExp: '', newKeyEnableAt: 0, oldKeyDisableAt: 0, kv: {} }],
    });
    return { version: this.version };
  }
  published(node: string) {
    return this.views.get(node);
  }
  refreshPackages() {
    return [];
  }
  close() {}
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}
const plain = (r: Reply): Buffer => (r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body);

describe('registry - parked long-polls and per-peer compression', () => {
  let home: string;
  let store: StandInStore;
  let server: RegistryServer;
  let port: number;
  let admin: RegistryClient;
  /** The registry's clock runs this far ahead of the real one (moved by the tests). */
  let skewMs = 0;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'ibp-reg-peer-'));
    for (const d of ['keys', 'so', 'log']) mkdirSync(join(home, d));
    writeFileSync(join(home, 'keys', 'ibms.admin.token'), 'secret-token\n');
    writeFileSync(join(home, 'keys', 'ECIF.pub'), ECIF.publicKeyPem);
    const conf = parseIbmsConf(defaultIbmsConfText({ ip: '127.0.0.1', port: 0 }), 'ibms.conf');
    const settings = resolveRegistrySettings(conf, home, join(home, 'etc', 'ibms.conf'));
    store = new StandInStore();
    const log = createLogger({ homeRoot: home, output: 'file::log/ibms_worker.log', level: 'INFO', name: 'ibms-worker' });
    server = new RegistryServer({ settings, store: store as unknown as RegistryStore, log, now: () => Date.now() + skewMs });
    port = (await server.listen('127.0.0.1', 0)).port;
    admin = new RegistryClient({ ip: '127.0.0.1', port, adminToken: 'secret-token' });
    store.downloadConfig('ECIF');
  });
  after(async () => {
    await server.close(1000);
    await closeAllLogs();
    rmSync(home, { recursive: true, force: true });
  });

  const viewRows = async (): Promise<SessionRow[]> =>
    (await admin.admin<{ rows: SessionRow[] }>('GET', 'sessions')).rows.filter((r) => r.role === 'view' && r.node === 'ECIF');

  test('sessions - a long-poll parked longer than the session expiry keeps its peer listed; the expiry counts from its reply', async () => {
    const ecif = new RegistryClient({ ip: '127.0.0.1', port, node: 'ECIF', nodeKeyPem: ECIF.privateKeyPem });
    const parked = ecif.getView(store.version, 60);
    const deadline = Date.now() + 10_000;
    while ((await viewRows()).length === 0) {
      assert.ok(Date.now() < deadline, 'the long-poll shows up as a view session');
      await new Promise((r) => setTimeout(r, 20));
    }
    skewMs += PEER_LIVE_MS + 5_000; // the registry's clock: past the expiry while the poll is still held
    const held = await viewRows();
    assert.equal(held.length, 1, 'a parked long-poll keeps its session listed');
    assert.ok(held[0]!.lastSeenMs >= Date.now() + skewMs - 5_000, 'a parked poll counts as seen now');
    store.downloadConfig('ECIF');
    server.published(['ECIF']);
    assert.equal((await parked).status, 200);
    skewMs += PEER_LIVE_MS - 2_000;
    assert.equal((await viewRows()).length, 1, 'still listed within the expiry after its reply');
    skewMs += 4_000;
    assert.equal((await viewRows()).length, 0, 'gone once the expiry passed without a poll');
    skewMs = 0;
    ecif.close();
  });

  test('compression - without a stated threshold the default applies; a peer stating one gets replies at or above it gzipped', async () => {
    const health = await raw(port, 'GET', '/v1/health', { 'accept-encoding': 'gzip' });
    const size = health.body.length;
    assert.ok(size < DEFAULT_MIN_COMPRESS_SIZE, 'health is small');
    assert.equal(health.headers['content-encoding'], undefined, 'under the default: not gzipped');
    const hdr = (n: number): Record<string, string> => ({ 'accept-encoding': 'gzip', 'x-ibp-min-compress-size': String(n) });
    const at = await raw(port, 'GET', '/v1/health', hdr(size));
    assert.equal(at.headers['content-encoding'], 'gzip', 'a body exactly at the threshold is gzipped');
    assert.equal(JSON.parse(plain(at).toString()).ok, true);
    const above = await raw(port, 'GET', '/v1/health', hdr(size + 1));
    assert.equal(above.headers['content-encoding'], undefined, 'a body under the threshold is not');
    const noAccept = await raw(port, 'GET', '/v1/health', { 'x-ibp-min-compress-size': '0' });
    assert.equal(noAccept.headers['content-encoding'], undefined, 'never without Accept-Encoding: gzip');
    const bad = await raw(port, 'GET', '/v1/health', { 'x-ibp-min-compress-size': '-3' });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body.toString()).error.code, 'IBP_ERR_REGISTRY_HTTP');
  });

  test("compression - the view reply follows the node's stated threshold", async () => {
    const path = '/v1/view';
    const signed = (extra: Record<string, string>): Record<string, string> => ({ ...signNodeRequest('ECIF', ECIF.privateKeyPem, 'GET', path), 'accept-encoding': 'gzip', ...extra });
    const dflt = await raw(port, 'GET', path, signed({}));
    assert.equal(dflt.status, 200);
    assert.ok(dflt.body.length < DEFAULT_MIN_COMPRESS_SIZE && dflt.body.length > 16, `view of ${dflt.body.length} bytes`);
    assert.equal(dflt.headers['content-encoding'], undefined);
    const small = await raw(port, 'GET', path, signed({ 'x-ibp-min-compress-size': '16' }));
    assert.equal(small.headers['content-encoding'], 'gzip');
    assert.deepEqual(JSON.parse(plain(small).toString()), JSON.parse(dflt.body.toString()));
  });

  test('compression - a client with a threshold states it and gzips request bodies at or above it; the admin client does neither', async () => {
    const seen: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
    const echo = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true,"serverTimeMs":1}');
      });
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as { port: number }).port;
    try {
      const beat = { role: 'ibma' as const, host: { ip: '127.0.0.1', port: -18001 }, pid: 1 };
      const json = Buffer.from(JSON.stringify(beat));
      const node = (minCompressSize: number): RegistryClient => new RegistryClient({ ip: '127.0.0.1', port: echoPort, node: 'ECIF', nodeKeyPem: ECIF.privateKeyPem, minCompressSize });
      await node(json.length).heartbeat(beat);
      await node(json.length + 1).heartbeat(beat);
      await new RegistryClient({ ip: '127.0.0.1', port: echoPort, adminToken: 't' }).admin('POST', 'apply', { action: 'add_node', node: 'X'.repeat(40) });
      assert.equal(seen[0]!.headers['x-ibp-min-compress-size'], String(json.length));
      assert.equal(seen[0]!.headers['content-encoding'], 'gzip');
      assert.deepEqual(JSON.parse(gunzipSync(seen[0]!.body).toString()), beat);
      assert.equal(seen[1]!.headers['content-encoding'], undefined, 'under the threshold: sent as is');
      assert.deepEqual(JSON.parse(seen[1]!.body.toString()), beat);
      assert.equal(seen[2]!.headers['x-ibp-min-compress-size'], undefined);
      assert.equal(seen[2]!.headers['content-encoding'], undefined);
      assert.throws(() => node(-1), { code: 'IBP_ERR_CLIENT_BAD_ARGUMENT' });
    } finally {
      await new Promise((r) => echo.close(r));
    }
  });

  test('compression - the registry takes a gzipped heartbeat from a client stating a small threshold', async () => {
    const ecif = new RegistryClient({ ip: '127.0.0.1', port, node: 'ECIF', nodeKeyPem: ECIF.privateKeyPem, minCompressSize: 16 });
    await ecif.heartbeat({ role: 'ibma', host: { ip: '127.0.0.1', port: -18001 }, pid: 4242, viewVersion: store.version });
    const rows = (await admin.admin<{ rows: SessionRow[] }>('GET', 'sessions')).rows;
    assert.ok(rows.some((r) => r.role === 'ibma' && r.host === '127.0.0.1:-18001' && r.pid === 4242), JSON.stringify(rows));
  });
});
