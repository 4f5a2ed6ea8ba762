/**
 * `ibp ping NODE` (the Tcn tools' `tcnping`, SPEC §8.3): can every host of a server node be reached and does it
 * speak IB2? Reads the local config replica, connects to each host of the node and does the IB2 handshake with the
 * reserved app `ibp ping` (docs/protocol.md, "Ping": the platform answers the pre-request with a PONG refusal that
 * names its node and load; nothing runs). Prints one line per host with the connect and handshake times; exit 0
 * when every server host answered as that node, 1 otherwise.
 */
import { ConfigReplica } from '../agent/index.js';
import { IbpError, toIbpError } from '../core/errors.js';
import { Ib2Connection } from '../protocol/index.js';
import { PING_APP, type PongDetails } from '../platform/index.js';
import { formatTable, homeFrom, parseCommandLine } from './args.js';

const USAGE = `usage: ibp ping NODE [--home DIR] [--count N] [--timeout MS]
  IB2 handshake with every host of NODE (from the local config replica); exit 0 when all answer, 1 otherwise`;

/** One host's outcome. */
export interface PingResult {
  host: string;
  ok: boolean;
  /** TCP connect time, ms. */
  connectMs?: number;
  /** Pre-request → pre-response round trips, ms (one per `--count`). */
  handshakeMs: number[];
  /** What the host said or why it failed. */
  note: string;
}

/** Pings one host: connect, then `count` handshakes on the same connection. */
export async function pingHost(o: { ip: string; port: number; node: string; clientNode: string; count: number; timeoutMs: number; fileDir: string }): Promise<PingResult> {
  const host = `${o.ip}:${o.port}`;
  const t0 = performance.now();
  let conn: Ib2Connection;
  try {
    conn = await Ib2Connection.connect({ host: o.ip, port: o.port, connectTimeoutMs: o.timeoutMs, fileDir: o.fileDir });
  } catch (err) {
    const e = toIbpError(err);
    return { host, ok: false, handshakeMs: [], note: `${e.code}: ${e.message}` };
  }
  const connectMs = performance.now() - t0;
  const handshakeMs: number[] = [];
  let note = '';
  let ok = true;
  try {
    for (let i = 0; i < o.count && ok; i++) {
      const t1 = performance.now();
      const outcome = await conn.call({ clientNode: o.clientNode, app: PING_APP, jnlsno: `ping-${process.pid}-${i}`, body: Buffer.alloc(0), timeoutMs: o.timeoutMs }).then(
        () => new IbpError('IBP_ERR_INTERNAL', 'the host ran the reserved ping app as a transaction'),
        (e: unknown) => toIbpError(e),
      );
      const ms = performance.now() - t1;
      const cause = outcome.cause instanceof IbpError ? outcome.cause : undefined;
      if (outcome.code === 'IBP_ERR_CLIENT_REFUSED' && cause?.code === 'IBP_ERR_SERVER_PONG') {
        handshakeMs.push(ms);
        const d = cause.details as Partial<PongDetails> | undefined;
        if (d?.node !== o.node) {
          ok = false;
          note = `answers as node ${d?.node ?? '?'}, not ${o.node}`;
        } else note = `node ${d.node}, ${d.busy}/${d.total} workers busy`;
      } else if (outcome.code === 'IBP_ERR_CLIENT_REFUSED' && cause?.code === 'IBP_ERR_SERVER_APP_NOT_FOUND') {
        handshakeMs.push(ms); // an older platform without the ping answer: the handshake itself worked
        note = 'handshake ok (the platform does not know ping)';
      } else {
        ok = false;
        note = `${cause?.code ?? outcome.code}: ${cause?.message ?? outcome.message}`;
      }
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
  return { host, ok, connectMs, handshakeMs, note };
}

/** `ibp ping` with its arguments (after the subcommand); returns the exit code. */
export async function runPing(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { home: { type: 'string' }, count: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [nodeName, ...extra] = positionals;
  if (!nodeName || extra.length > 0) throw new IbpError('IBP_ERR_USAGE', `expected one NODE\n\n${USAGE}`);
  const count = values.count === undefined ? 1 : Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new IbpError('IBP_ERR_USAGE', `--count ${values.count}: expected 1..1000`);
  const home = homeFrom(values.home);
  const replica = ConfigReplica.open(home.replica);
  let results: PingResult[];
  try {
    const snap = replica.snapshot;
    const node = snap.node(nodeName);
    if (!node) throw new IbpError('IBP_ERR_REPLICA_UNKNOWN_NODE', `node ${nodeName} is not in the local config of node ${snap.thisNode}`);
    const timeoutMs = values.timeout === undefined ? snap.connectingTimeoutSec * 1000 : Number(values.timeout);
    if (!(timeoutMs > 0)) throw new IbpError('IBP_ERR_USAGE', `--timeout ${values.timeout}: expected milliseconds > 0`);
    const servers = node.hosts.filter((h) => !h.clientOnly && h.port > 0);
    if (servers.length === 0) throw new IbpError('IBP_ERR_CLIENT_NO_HOST', `node ${nodeName} has no server host (all are client-only)`);
    results = await Promise.all(
      servers.map((h) =>
        h.invalid
          ? Promise.resolve<PingResult>({ host: `${h.ip}:${h.port}`, ok: false, handshakeMs: [], note: 'marked invalid in the cluster config' })
          : pingHost({ ip: h.ip, port: h.port, node: nodeName, clientNode: snap.thisNode, count, timeoutMs, fileDir: home.file }),
      ),
    );
  } finally {
    replica.close();
  }
  const fmt = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(2)} ms`);
  const avg = (a: number[]): number | undefined => (a.length === 0 ? undefined : a.reduce((x, y) => x + y, 0) / a.length);
  const rows = results.map((r) => [r.host, r.ok ? 'ok' : 'FAILED', fmt(r.connectMs), fmt(avg(r.handshakeMs)), r.note]);
  process.stdout.write(`${formatTable(['host', 'status', 'connect', count > 1 ? `handshake (avg of ${count})` : 'handshake', 'note'], rows)}\n`);
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(failed === 0 ? `node ${nodeName}: all ${results.length} hosts answer\n` : `node ${nodeName}: ${failed} of ${results.length} hosts do not answer\n`);
  return failed === 0 ? 0 : 1;
}
