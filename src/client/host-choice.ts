/** Host choice for a node (feature #43): valid server hosts, not suspended, lowest observed load first. */
import type { LoadTable, SnapshotNode } from '../agent/index.js';

export interface ChosenHost {
  node: string;
  ip: string;
  port: number;
  /** The load-table key `<node>/<ip>:<port>`. */
  key: string;
}

export class HostChooser {
  #loads: LoadTable;
  #rr = 0;

  constructor(loads: LoadTable) {
    this.#loads = loads;
  }

  /**
   * The node's usable hosts in the order to try: lowest busy/total first, round-robin among equal loads.
   * Invalid hosts, client-only hosts and hosts suspended after a failed connect are left out.
   */
  order(node: SnapshotNode): ChosenHost[] {
    const now = Date.now();
    const scored: { h: ChosenHost; load: number }[] = [];
    for (const host of node.hosts) {
      if (host.invalid || host.clientOnly) continue;
      const key = `${node.name}/${host.ip}:${host.port}`;
      const e = this.#loads.read(key);
      if (e && e.suspendedUntilMs > now) continue;
      const load = e && e.total > 0 ? e.busy / e.total : 0;
      scored.push({ h: { node: node.name, ip: host.ip, port: host.port, key }, load });
    }
    if (scored.length <= 1) return scored.map((s) => s.h);
    const start = this.#rr++ % scored.length;
    const rotated = [...scored.slice(start), ...scored.slice(0, start)];
    rotated.sort((a, b) => a.load - b.load); // stable: equal loads keep the rotation
    return rotated.map((s) => s.h);
  }
}
