/**
 * Helper process of `makeListening` (listen-socket.ts): calls listen(2) on the bound sockets it inherits at
 * fds 3.. and exits at once, before its event loop ever polls them (so it never accepts a connection).
 * Usage: node listen-helper.js COUNT BACKLOG
 */
import { Server } from 'node:net';

const count = Number(process.argv[2]);
const backlog = Number(process.argv[3]);
let failed = 0;
for (let i = 0; i < count; i++) {
  const server = new Server();
  server.on('error', () => undefined);
  server.listen({ fd: 3 + i, backlog });
  // On failure net.Server drops its handle at once (the 'error' event only comes on the next tick).
  if ((server as unknown as { _handle: unknown })._handle == null) {
    process.stderr.write(`listen(2) failed on fd ${3 + i}\n`);
    failed++;
  }
}
process.exit(failed === 0 ? 0 : 1);
