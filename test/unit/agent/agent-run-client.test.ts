/** `runAgent` makes its registry client from `ibma.conf`: address, node, key, and the compression threshold. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAgent, type AgentClientOptions, type AgentRegistryClient } from '../../../src/agent/index.js';
import { defaultIbmaConfText, parseIbmaConf } from '../../../src/core/config/index.js';
import { ibpHome } from '../../../src/core/home.js';
import { tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));

describe('agent run - the registry client', () => {
  it('agent run - the client gets ibma.comm.min_compress_size, so the agent states its threshold to the registry', async () => {
    const t = tempDir('ibp-agent-run-');
    temps.push(t.cleanup);
    const home = ibpHome(t.dir);
    for (const d of [home.keys, home.log, home.etc]) mkdirSync(d, { recursive: true });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(join(home.keys, 'CORE.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const text = defaultIbmaConfText({ thisNode: 'CORE', ibmsIp: '127.0.0.1', ibmsPort: 16009 }).replace(/"min_compress_size" : \d+/, '"min_compress_size" : 77');
    const conf = parseIbmaConf(text, 'ibma.conf');
    let given: AgentClientOptions | undefined;
    const client: AgentRegistryClient = {
      getView: () => new Promise(() => undefined), // never answers: the agent stays "fetching"
      getPackage: () => Promise.reject(new Error('unused')),
      heartbeat: () => Promise.resolve(),
    };
    const running = await runAgent({ home, conf, createClient: (o) => ((given = o), client) });
    try {
      assert.equal(given?.minCompressSize, 77);
      assert.deepEqual({ ip: given?.ip, port: given?.port, node: given?.node }, { ip: '127.0.0.1', port: 16009, node: 'CORE' });
    } finally {
      await running.stop();
    }
  });
});
