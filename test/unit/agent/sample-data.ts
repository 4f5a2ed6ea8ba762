import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig } from '../../../src/core/cluster-model.js';
import type { SnapshotData } from '../../../src/agent/index.js';

/** A temp directory removed by the returned function. */
export function tempDir(prefix = 'ibp-agent-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small snapshot for node CORE that calls ECIF. */
export function sampleData(overrides: Partial<SnapshotData> = {}): SnapshotData {
  return {
    thisNode: 'CORE',
    ibmsServer: { ip: '127.0.0.1', port: 16001 },
    retryConnectTimevalSec: 60,
    connectingTimeoutSec: 10,
    minCompressSize: 16,
    nodes: [
      {
        name: 'CORE',
        invalid: false,
        hosts: [{ ip: '127.0.0.3', port: 18001, clientOnly: true, invalid: false }],
        keyExp: 'core-key',
        newKeyEnableAt: 0,
        oldKeyDisableAt: 0,
        kv: { 'db.url': 'pg://core', region: 'north' },
      },
      {
        name: 'ECIF',
        invalid: false,
        hosts: [
          { ip: '127.0.0.2', port: 18001, clientOnly: false, invalid: false },
          { ip: '127.0.0.2', port: 18002, clientOnly: false, invalid: true },
        ],
        keyExp: 'ecif-key',
        oldKeyExp: 'ecif-old',
        newKeyEnableAt: 1_700_000_060,
        oldKeyDisableAt: 1_700_000_120,
        kv: {},
      },
    ],
    apps: [
      { app: 'ibp_test_echo', desc: 'echo', bin: 'ibp_test_echo.so', timeout: 50, timeout2: 0, serverNode: 'ECIF', invalid: false },
      { app: 'core_local', desc: 'served by CORE', bin: 'core_local.js', timeout: 10, timeout2: 20, serverNode: '', invalid: false },
    ],
    servedApps: ['core_local'],
    ...overrides,
  };
}

/**
 * Four nodes, three projects:
 * P1: CORE → ECIF (echo, file); P2: ECIF → CRM (crm_query); P3: GW → CORE (core_local).
 */
export function sampleCluster(): ClusterConfig {
  const node = (name: string, ip: string, kv: Record<string, string> = {}) => ({
    node: name,
    invalid: false,
    hosts: [{ ip, port: 18001, clientOnly: false, invalid: false }],
    keyExp: `${name.toLowerCase()}-key`,
    kv,
  });
  const app = (code: string, serverNode = '') => ({
    app: code, desc: code, bin: `${code}.js`, timeout: 30, timeout2: 0, serverNode, invalid: false,
  });
  return {
    nodes: [
      node('ECIF', '127.0.0.2', { ecif_secret: 's1' }),
      { ...node('CORE', '127.0.0.3', { core_param: 'p' }), hosts: [{ ip: '127.0.0.3', port: 18001, clientOnly: true, invalid: false }] },
      node('CRM', '127.0.0.4'),
      node('GW', '127.0.0.5'),
    ],
    apps: [app('ibp_test_echo', 'ECIF'), app('ibp_test_file'), app('crm_query', 'CRM'), app('core_local'), app('orphan')],
    projects: [
      { project: 'P1', serverNodes: ['ECIF'], clientNodes: ['CORE'], apps: ['ibp_test_echo', 'ibp_test_file'] },
      { project: 'P2', serverNodes: ['CRM'], clientNodes: ['ECIF'], apps: ['crm_query'] },
      { project: 'P3', serverNodes: ['CORE'], clientNodes: ['GW'], apps: ['core_local'] },
    ],
  };
}
