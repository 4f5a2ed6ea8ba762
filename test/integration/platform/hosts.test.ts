import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { ibmaConfText, stopPlatform } from '../../../src/cli/scratch-cluster.js';
import { startTestCluster, type TestCluster } from '../../helpers/cluster.js';

describe('client host choice on a node with two hosts', () => {
  let c: TestCluster;
  before(async () => {
    c = await startTestCluster({ serverHosts: 2, workers: 1 });
  });
  after(async () => {
    await c?.close();
  });

  test('short calls spread over both idle hosts', async () => {
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      const seen = new Set<number>();
      for (let i = 0; i < 10; i++) seen.add((await env.call('ibp_test_echo', 'x')).host.port);
      assert.deepEqual([...seen].sort(), [...c.ports].sort());
    } finally {
      await env.close();
    }
  });

  test('a host that refuses connections is suspended and calls move on to the other one, never failing', async () => {
    await stopPlatform(c.platforms[0]!);
    const env = await IbacEnv.create({ home: c.clientHome });
    try {
      for (let i = 0; i < 6; i++) {
        const r = await env.call('ibp_test_echo', `${i}`);
        assert.equal(r.host.port, c.ports[1]);
        assert.equal(r.text(), `${i}`);
      }
    } finally {
      await env.close();
    }
    // A new environment (as another local process would) reads the suspension from the shared load table.
    const env2 = await IbacEnv.create({ home: c.clientHome });
    try {
      assert.equal((await env2.call('ibp_test_echo', 'y')).host.port, c.ports[1]);
    } finally {
      await env2.close();
    }
  });
});

describe('client environment from an ibma.conf', () => {
  let c: TestCluster;
  before(async () => {
    c = await startTestCluster({ start: false });
  });
  after(async () => {
    await c?.close();
  });

  test('the config must name the replica node; a wrong or missing one is a coded error', async () => {
    const env = await IbacEnv.create({ home: c.clientHome, config: 'ibma.conf' });
    assert.equal(env.snapshot.thisNode, 'CORE');
    await env.close();
    writeFileSync(join(c.clientHome, 'etc', 'other.conf'), ibmaConfText('ECIF'));
    await assert.rejects(IbacEnv.create({ home: c.clientHome, config: 'other.conf' }), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CONFIG_INVALID' && /this_node is ECIF/.test(e.message));
    await assert.rejects(IbacEnv.create({ home: c.clientHome, config: 'missing.conf' }), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CONFIG_READ');
  });
});
