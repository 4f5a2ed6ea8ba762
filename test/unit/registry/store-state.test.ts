import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AppConfig, NodeConfig, ProjectConfig } from '../../../src/core/cluster-model.js';
import { ClusterState, hostAddress } from '../../../src/registry/store/cluster-state.js';

/** A small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every index of a state, as plain sorted data. */
function indexes(s: ClusterState, nodes: string[], apps: string[], bins: string[], addrs: string[]) {
  const sorted = (x: Iterable<string>) => [...x].sort();
  return {
    cluster: s.toCluster(),
    // while names clash (never in a valid cluster) any node holding the address may answer
    owners: addrs.map((a) => {
      const holders = s.nodeList().filter((n) => n.hosts.some((h) => hostAddress(h) === a)).map((n) => n.node);
      const owner = s.hostOwner(a);
      return holders.length === 0 ? owner === undefined : owner !== undefined && holders.includes(owner);
    }),
    server: nodes.map((n) => sorted(s.serverProjectsOf(n))),
    client: nodes.map((n) => sorted(s.clientProjectsOf(n))),
    serverNodeApps: nodes.map((n) => sorted(s.appsWithServerNode(n))),
    appProjects: apps.map((a) => sorted(s.projectsOfApp(a))),
    binApps: bins.map((b) => sorted(s.appsOfBin(b))),
    serving: apps.map((a) => sorted(s.servingNodes(a))),
  };
}

describe('registry store - cluster state indexes', () => {
  it('state - indexes kept up to date through random puts and deletes equal indexes built from scratch', () => {
    const rnd = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const nodes = ['A', 'B', 'C', 'D', 'E'];
    const apps = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
    const bins = ['x.mjs', 'y.mjs', 'z.mjs'];
    const projects = ['P1', 'P2', 'P3'];
    const addrs = ['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1', '10.0.0.4:1'];
    const live = new ClusterState();
    // build every lazy index early, so that the updates below go through the incremental paths
    indexes(live, nodes, apps, bins, addrs);
    const some = (xs: string[]) => xs.filter(() => rnd() < 0.4);
    for (let step = 0; step < 2000; step++) {
      const r = rnd();
      if (r < 0.25) {
        const hosts = some(addrs).map((a) => ({ ip: a.split(':')[0] as string, port: 1, clientOnly: false, invalid: false }));
        const n: NodeConfig = { node: pick(nodes), invalid: false, hosts, keyExp: '', kv: {} };
        live.putNode(n);
      } else if (r < 0.35) live.delNode(pick(nodes));
      else if (r < 0.6) {
        const a: AppConfig = { app: pick(apps), desc: '', bin: pick(bins), timeout: 1, timeout2: 0, serverNode: rnd() < 0.5 ? pick(nodes) : '', invalid: false };
        live.putApp(a);
      } else if (r < 0.7) live.delApp(pick(apps));
      else if (r < 0.92) {
        const p: ProjectConfig = { project: pick(projects), serverNodes: some(nodes), clientNodes: some(nodes), apps: some(apps) };
        live.putProject(p);
      } else live.delProject(pick(projects));
      if (step % 97 === 0 || step === 1999) {
        const fresh = ClusterState.from(live.toCluster());
        assert.deepEqual(indexes(live, nodes, apps, bins, addrs), indexes(fresh, nodes, apps, bins, addrs), `step ${step}`);
      }
    }
  });

  it('state - a replaced record keeps its place; a deleted and re-added one goes last', () => {
    const s = new ClusterState();
    for (const n of ['A', 'B', 'C']) s.putNode({ node: n, invalid: false, hosts: [], keyExp: '', kv: {} });
    s.putNode({ node: 'A', invalid: true, hosts: [], keyExp: '', kv: {} });
    assert.deepEqual(s.nodeList().map((n) => n.node), ['A', 'B', 'C']);
    s.delNode('B');
    s.putNode({ node: 'B', invalid: false, hosts: [], keyExp: '', kv: {} });
    assert.deepEqual(s.nodeList().map((n) => n.node), ['A', 'C', 'B']);
    assert.equal(hostAddress({ ip: '::1', port: 5 }), '[::1]:5');
  });
});
