/**
 * A fault-injecting TCP proxy for in-doubt tests: real sockets on 127.0.0.1 between a client and a server.
 * It follows the IB2 frame layout (8-byte header: magic, type, u32 payload length; docs/protocol.md) in
 * each direction, so a fault lands on an exact byte: "let 5 bytes of the first REQUEST frame through to
 * the server, then reset both connections".
 *
 *   client ──c2s──▶ proxy ──c2s──▶ server
 *   client ◀──s2c── proxy ◀──s2c── server
 *
 * Actions: `reset` (RST both sides, after the forwarded bytes were handed to the kernel), `end` (FIN both
 * sides), `stall` (stop reading in that direction, so the sender meets TCP backpressure; the other
 * direction keeps flowing; `conn.destroy()` ends it). The proxy holds back the bytes of an incomplete frame header until the header is whole (at most
 * 7 bytes), so the frame type is always known when a rule is checked. A stream that is not IB2 is passed on
 * unchanged and never faulted.
 */
import net from 'node:net';
import { FrameType, IB2_HEADER_BYTES, frameTypeName, type FrameTypeName } from '../../src/protocol/ib2-frames.js';

export type Direction = 'c2s' | 's2c';
export type FaultAction = 'reset' | 'end' | 'stall';

/** Where and how to break a connection. */
export interface FaultRule {
  /** The direction whose frames are counted. */
  dir: Direction;
  /** The frame type that triggers the fault. */
  frame: FrameTypeName;
  /** Which frame of that type on the connection, from 0 (default 0). */
  nth?: number;
  /** Bytes of that frame (header included) let through before acting; 0 = act before its first byte. Past the frame's end = the whole frame. */
  afterBytes: number;
  action: FaultAction;
  /** Only on the connection accepted with this index, from 0 (default: every connection). */
  connection?: number;
}

/** What the proxy saw on one connection. */
export interface ProxiedConnection {
  index: number;
  /** Bytes forwarded in each direction. */
  bytes: Record<Direction, number>;
  /** Frames begun in each direction (whole header seen), in order. */
  frames: Record<Direction, FrameTypeName[]>;
  /** Set once the rule fired: the frame and how many of its bytes went through. */
  fault: { rule: FaultRule; frameBytes: number } | undefined;
  /** Resolves when both sockets have closed. */
  closed: Promise<void>;
  /** Destroys both sockets (ends a stalled connection). */
  destroy(): void;
}

/** One direction's frame tracking. */
class FrameCursor {
  #held: Buffer = Buffer.alloc(0);
  #raw = false;
  /** Bytes of the current frame seen (-1: at a frame boundary) and its total size. */
  #offset = -1;
  #total = 0;
  #target = false;
  #counts = new Map<number, number>();

  constructor(private readonly frames: FrameTypeName[], private readonly rule: FaultRule | undefined) {}

  /** Splits a chunk into bytes to forward and whether the rule fires after them. */
  feed(chunk: Buffer): { out: Buffer; fire: boolean; frameBytes: number } {
    let buf = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    this.#held = Buffer.alloc(0);
    if (this.#raw) return { out: buf, fire: false, frameBytes: 0 };
    const parts: Buffer[] = [];
    let off = 0;
    while (off < buf.length) {
      if (this.#offset < 0) {
        if (buf.length - off < IB2_HEADER_BYTES) {
          this.#held = Buffer.from(buf.subarray(off));
          break;
        }
        if (buf[off] !== 0x49 || buf[off + 1] !== 0x42 || buf[off + 2] !== 0x32 || frameTypeName(buf[off + 3]!) === undefined) {
          this.#raw = true;
          parts.push(buf.subarray(off));
          break;
        }
        const type = buf[off + 3]!;
        const name = frameTypeName(type)!;
        this.frames.push(name);
        const n = this.#counts.get(type) ?? 0;
        this.#counts.set(type, n + 1);
        this.#offset = 0;
        this.#total = IB2_HEADER_BYTES + buf.readUInt32BE(off + 4);
        this.#target = this.rule !== undefined && FrameType[this.rule.frame] === type && (this.rule.nth ?? 0) === n;
      }
      const take = Math.min(this.#total - this.#offset, buf.length - off);
      if (this.#target) {
        const cut = Math.min(this.rule!.afterBytes, this.#total);
        if (this.#offset + take >= cut) {
          const n = cut - this.#offset;
          parts.push(buf.subarray(off, off + n));
          return { out: Buffer.concat(parts), fire: true, frameBytes: cut };
        }
      }
      parts.push(buf.subarray(off, off + take));
      off += take;
      this.#offset += take;
      if (this.#offset === this.#total) this.#offset = -1;
    }
    buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    return { out: buf, fire: false, frameBytes: 0 };
  }
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<net.Socket>();
  #rule: FaultRule | undefined;
  #faultWaiters: Array<(c: ProxiedConnection) => void> = [];
  /** Every connection accepted, in order. */
  readonly connections: ProxiedConnection[] = [];

  private constructor(server: net.Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Starts a proxy on 127.0.0.1 (an ephemeral port) in front of `target`. */
  static async start(target: { host?: string; port: number }, port = 0): Promise<FaultProxy> {
    const server = net.createServer();
    const proxy = new FaultProxy(server, { host: target.host ?? '127.0.0.1', port: target.port });
    server.on('connection', (s) => proxy.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** The rule for connections accepted from now on (undefined: pass everything). */
  setRule(rule: FaultRule | undefined): void {
    this.#rule = rule;
  }

  /** Resolves with the connection on which the rule fires next (or fired already since `since`). */
  waitFault(ms: number, since = 0): Promise<ProxiedConnection> {
    const hit = this.connections.slice(since).find((c) => c.fault);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no fault within ${ms} ms`)), ms);
      this.#faultWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /** Destroys both sockets of every connection (e.g. the stalled ones). */
  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** Stops listening and destroys every proxied socket. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const index = this.connections.length;
    const rule = this.#rule && (this.#rule.connection === undefined || this.#rule.connection === index) ? this.#rule : undefined;
    const upstream = net.connect(this.#target.port, this.#target.host);
    const conn: ProxiedConnection = {
      index, bytes: { c2s: 0, s2c: 0 }, frames: { c2s: [], s2c: [] }, fault: undefined,
      closed: Promise.all([closedOf(client), closedOf(upstream)]).then(() => undefined),
      destroy: () => {
        client.destroy();
        upstream.destroy();
      },
    };
    this.connections.push(conn);
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => this.#sockets.delete(s));
      s.setNoDelay(true);
    }
    client.pause();
    upstream.once('connect', () => client.resume());
    // A side that goes away takes the other with it, the way it went (FIN or RST).
    const pass = (from: net.Socket, to: net.Socket): void => {
      from.once('end', () => { if (!to.destroyed) to.end(); });
      from.once('close', (hadError) => {
        if (to.destroyed) return;
        if (hadError) to.resetAndDestroy();
        else to.end();
      });
    };
    pass(client, upstream);
    pass(upstream, client);
    const wire = (dir: Direction, from: net.Socket, to: net.Socket): void => {
      const cursor = new FrameCursor(conn.frames[dir], rule && rule.dir === dir ? rule : undefined);
      from.on('data', (chunk: Buffer) => {
        // After a fault nothing more passes in its direction (the rest of a chunk past the cut is dropped);
        // after a reset or an end, nothing passes at all.
        if (conn.fault && (conn.fault.rule.dir === dir || conn.fault.rule.action !== 'stall')) return;
        const { out, fire, frameBytes } = cursor.feed(chunk);
        conn.bytes[dir] += out.length;
        if (!fire) {
          if (out.length > 0) to.write(out);
          return;
        }
        conn.fault = { rule: rule!, frameBytes };
        from.pause();
        const act = (): void => {
          if (rule!.action === 'reset') {
            if (!client.destroyed) client.resetAndDestroy();
            if (!upstream.destroyed) upstream.resetAndDestroy();
          } else if (rule!.action === 'end') {
            client.end();
            upstream.end();
            client.resume();
            upstream.resume();
          }
          for (const w of this.#faultWaiters.splice(0)) w(conn);
        };
        if (out.length > 0) to.write(out, act);
        else act();
      });
    };
    wire('c2s', client, upstream);
    wire('s2c', upstream, client);
  }
}

function closedOf(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    else s.once('close', () => resolve());
  });
}
