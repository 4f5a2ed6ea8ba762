/**
 * Small socket helpers shared by the adapters: waiting for 'drain', and closing after a protocol error so
 * that the peer still gets our last bytes (no RST over unread data) yet the socket is gone within a bound.
 */
import type { Socket } from 'node:net';
import { IbpError } from '../core/errors.js';

/** Resolves when `socket` drains; rejects if it closes first. */
export function drain(socket: Socket): Promise<void> {
  if (socket.destroyed || !socket.writable) {
    return Promise.reject(new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', 'the connection closed while writing'));
  }
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      socket.off('drain', onDrain);
      reject(new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', 'the connection closed while writing'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** Writes `buf`; when the socket buffer is full, waits for it to drain (or rejects when it closes). */
export function write(socket: Socket, buf: Buffer): Promise<void> | undefined {
  if (socket.destroyed) {
    return Promise.reject(new IbpError('IBP_ERR_PROTO_CONNECTION_CLOSED', 'the connection closed while writing'));
  }
  return socket.write(buf) ? undefined : drain(socket);
}

/**
 * Sends `last` (if any), ends the socket, discards whatever the peer still sends, and destroys the socket
 * after `lingerMs` if the peer has not closed by then. Safe to call more than once.
 */
export function closeSoon(socket: Socket, last: Buffer | undefined, lingerMs: number): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  if (socket.writable && !socket.writableEnded) {
    if (last) socket.end(last);
    else socket.end();
  }
  socket.on('data', () => {});
  socket.resume();
}
