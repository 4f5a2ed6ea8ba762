/**
 * A frame-editing TCP proxy for the message-security tests: real sockets on 127.0.0.1 between an IB2 client and
 * server. It cuts each direction into IB2 frames (8-byte header: magic, type, u32 payload length) and passes
 * every whole frame through `edit`, which returns the bytes to forward instead: the frame unchanged, a changed
 * copy (a flipped byte, a shorter payload with its length fixed), another frame recorded earlier (a replay),
 * or nothing. Unlike the fault proxy (test/helpers/fault-proxy.ts), which breaks connections, this one changes
 * what travels while keeping the framing valid, so it is the security layer that must notice.
 */
import net from 'node:net';
import { IB2_HEADER_BYTES } from '../../src/protocol/ib2-frames.js';

export type EditDirection = 'c2s' | 's2c';

/** One whole frame on its way. */
export interface EditedFrame {
  dir: EditDirection;
  /** The proxied connection, from 0 in accept order. */
  connection: number;
  /** Frame type byte. */
  type: number;
  /** Frames of this type before this one in this direction on this connection. */
  nth: number;
  /** The whole frame, header included (a copy: safe to keep). */
  bytes: Buffer;
}

/** Returns what to forward for `f` (its bytes unchanged by default). */
export type FrameEdit = (f: EditedFrame) => Buffer;

/** A frame with its payload replaced (length field fixed). */
export function withPayload(frame: Buffer, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(IB2_HEADER_BYTES + payload.length);
  frame.copy(out, 0, 0, 4);
  out.writeUInt32BE(payload.length, 4);
  payload.copy(out, IB2_HEADER_BYTES);
  return out;
}

/** A copy of `frame` with the byte at `at` (from the start of the payload; negative: from the end) flipped. */
export function flipPayloadByte(frame: Buffer, at: number): Buffer {
  const out = Buffer.from(frame);
  const i = at >= 0 ? IB2_HEADER_BYTES + at : out.length + at;
  out[i] = out[i]! ^ 0x5a;
  return out;
}

export class EditProxy {
  readonly port: number;
  #server: net.Server;
  #sockets = new Set<net.Socket>();

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** A proxy to 127.0.0.1:`target` that forwards what `edit` returns. */
  static async start(target: number, edit: FrameEdit): Promise<EditProxy> {
    let connections = 0;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const connection = connections++;
      const upstream = net.connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      pipeFrames(client, upstream, 'c2s', connection, edit);
      pipeFrames(upstream, client, 's2c', connection, edit);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const p = new EditProxy(server, (server.address() as net.AddressInfo).port);
    p.#sockets = sockets;
    return p;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function pipeFrames(from: net.Socket, to: net.Socket, dir: EditDirection, connection: number, edit: FrameEdit): void {
  let held: Buffer = Buffer.alloc(0);
  const counts = new Map<number, number>();
  from.on('data', (chunk: Buffer) => {
    held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    for (;;) {
      if (held.length < IB2_HEADER_BYTES) break;
      const total = IB2_HEADER_BYTES + held.readUInt32BE(4);
      if (held.length < total) break;
      const type = held[3]!;
      const nth = counts.get(type) ?? 0;
      counts.set(type, nth + 1);
      const bytes = Buffer.from(held.subarray(0, total));
      held = held.subarray(total);
      const out = edit({ dir, connection, type, nth, bytes });
      if (out.length > 0 && !to.destroyed) to.write(out);
    }
  });
  from.once('end', () => to.end());
}
