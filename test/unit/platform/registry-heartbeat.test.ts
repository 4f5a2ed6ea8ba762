import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IbpLogger } from '../../../src/core/log.js';
import { generateNodeKeyPair, type HeartbeatBody } from '../../../src/registry/index.js';
import { BoardSlot, createBoard } from '../../../src/platform/bulletin-board.js';
import { RegistryHeartbeat, type HeartbeatTarget } from '../../../src/platform/registry-heartbeat.js';
import type { PlatformSettings } from '../../../src/platform/settings.js';

interface Rec {
  level: string;
  msg: string;
}

/** A logger that records level and message (the heartbeat uses info, warn and debug). */
function recordingLog(): { log: IbpLogger; records: Rec[] } {
  const records: Rec[] = [];
  const at = (level: string) => (_obj: object, msg: string) => void records.push({ level, msg });
  return { log: { info: at('info'), warn: at('warn'), debug: at('debug'), error: at('error') } as unknown as IbpLogger, records };
}

const ibmaConf = (port: number) => `{ "ibma" : { "this_node" : "ECIF" } , "ibms" : { "server" : { "ip" : "127.0.0.1" , "port" : ${port} } } }\n`;

describe('platform registration heartbeat', () => {
  let home: string;
  let settings: PlatformSettings;
  let boardPath: string;
  const slots: BoardSlot[] = [];

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'ibp-hb-'));
    for (const d of ['etc', 'keys', 'run']) mkdirSync(join(home, d));
    writeFileSync(join(home, 'etc', 'ibma.conf'), ibmaConf(16001));
    boardPath = join(home, 'run', 'b.board');
    createBoard(boardPath, 4, process.pid);
    // 3 live workers, one busy; one slot empty
    const states = ['busy', 'idle', 'idle'] as const;
    states.forEach((st, i) => {
      const s = new BoardSlot(boardPath, i, i + 1, 5000 + i);
      s.set(st, { app: st === 'busy' ? 'ibp_test_echo' : '' });
      slots.push(s);
    });
    writeFileSync(join(home, 'run', 'stats'), JSON.stringify({ version: 1, masterPid: process.pid, writtenAtMs: Date.now(), windowMs: 3000,
      apps: [{ app: 'a', count: 10, errors: 0, tps: 2.5, avgMs: 1, maxMs: 2 }, { app: 'b', count: 5, errors: 1, tps: 0.5, avgMs: 1, maxMs: 2 }] }));
    settings = { homeRoot: home, ip: '127.0.0.1', port: 18001, ibmaConfigFilename: 'ibma.conf', statsPath: join(home, 'run', 'stats') } as PlatformSettings;
  });
  afterEach(() => {
    for (const s of slots.splice(0)) s.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('without keys/NODE.key it warns once, sends nothing, and registers as soon as the key appears', async () => {
    const { log, records } = recordingLog();
    const bodies: HeartbeatBody[] = [];
    const targets: HeartbeatTarget[] = [];
    const hb = new RegistryHeartbeat({
      settings, log, boardPath, periodMs: 3_600_000,
      createClient: (t) => {
        targets.push(t);
        return { heartbeat: async (b) => void bodies.push(b), close: () => undefined };
      },
    });
    for (let i = 0; i < 3; i++) await hb.beat();
    assert.equal(bodies.length, 0);
    const warns = records.filter((r) => r.level === 'warn');
    assert.equal(warns.length, 1, JSON.stringify(records));
    assert.match(warns[0]!.msg, /no private key .*ECIF\.key: the platform runs without registering/);
    assert.equal(records.filter((r) => r.level === 'debug').length, 2);

    writeFileSync(join(home, 'keys', 'ECIF.key'), 'PEM');
    await hb.beat();
    assert.equal(hb.registered, true);
    assert.deepEqual(targets.map((t) => [t.node, t.ip, t.port, t.keyPem]), [['ECIF', '127.0.0.1', 16001, 'PEM']]);
    assert.deepEqual(bodies[0], { role: 'ibas', host: { ip: '127.0.0.1', port: 18001 }, pid: process.pid, load: { busy: 1, total: 3 }, stats: { tps: 3, txCount: 15 } });
    assert.ok(records.some((r) => r.level === 'info' && /registered with the registry/.test(r.msg)));
    await hb.stop();
  });

  test('a registry that is down is warned about once, retried quietly, and the platform registers when it is back', async () => {
    const { log, records } = recordingLog();
    writeFileSync(join(home, 'keys', 'ECIF.key'), 'PEM');
    let up = false;
    let sent = 0;
    const hb = new RegistryHeartbeat({
      settings, log, boardPath, periodMs: 3_600_000,
      createClient: () => ({
        heartbeat: async () => {
          if (!up) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          sent++;
        },
        close: () => undefined,
      }),
    });
    for (let i = 0; i < 4; i++) await hb.beat(); // never rejects
    assert.equal(hb.registered, false);
    assert.equal(records.filter((r) => r.level === 'warn').length, 1);
    assert.match(records.find((r) => r.level === 'warn')!.msg, /heartbeat to the registry failed; transactions are not affected/);
    up = true;
    await hb.beat();
    assert.equal(sent, 1);
    assert.equal(hb.registered, true);
    up = false;
    await hb.beat();
    assert.equal(records.filter((r) => r.level === 'warn').length, 2, 'a new outage after a success is warned again');
    await hb.stop();
    await hb.beat();
    assert.equal(sent, 1, 'nothing after stop');
  });

  test('the real client signs the heartbeat as the node (checked by a stand-in registry)', async () => {
    const pair = generateNodeKeyPair();
    writeFileSync(join(home, 'keys', 'ECIF.key'), pair.privateKeyPem);
    const seen: { node: string; sign: boolean; body: HeartbeatBody }[] = [];
    const server: Server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        seen.push({ node: String(req.headers['x-ibp-node']), sign: typeof req.headers['x-ibp-sign'] === 'string', body: JSON.parse(data) as HeartbeatBody });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ok: true, serverTimeMs: Date.now() }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      writeFileSync(join(home, 'etc', 'ibma.conf'), ibmaConf((server.address() as { port: number }).port));
      const { log } = recordingLog();
      const hb = new RegistryHeartbeat({ settings, log, boardPath, periodMs: 3_600_000 });
      hb.start();
      const end = Date.now() + 10_000;
      while (hb.sent === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await hb.stop();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.node, 'ECIF');
      assert.equal(seen[0]!.sign, true);
      assert.equal(seen[0]!.body.role, 'ibas');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
