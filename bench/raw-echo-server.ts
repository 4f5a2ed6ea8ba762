/**
 * The baseline: a minimal raw Node.js TCP echo server with length-prefixed frames (u32 BE length + payload),
 * N worker processes sharing the listen socket (node:cluster, SCHED_NONE: each worker accepts itself — the
 * fastest arrangement Node offers). Prints `ready <port>` when every worker listens.
 * Usage: node raw-echo-server.js <workers> [port] [rr]
 * With `rr` the primary accepts and hands each connection to a worker (node:cluster SCHED_RR), the way the ibas
 * master does: the bench prints what that hand-over costs against workers accepting themselves.
 */
import cluster from 'node:cluster';
import { createServer, type Socket } from 'node:net';

const workers = Number(process.argv[2] ?? 2);
const port = Number(process.argv[3] ?? 0);

if (cluster.isPrimary) {
  cluster.schedulingPolicy = process.argv[4] === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
  // In cluster mode every worker listening on port 0 shares one handle, hence one port.
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork({ RAW_PORT: String(port) }).on('listening', (addr) => {
      if (++ready === workers) process.stdout.write(`ready ${addr.port}\n`);
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  });
} else {
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (buf.length < 4 + len) break;
        socket.write(buf.subarray(0, 4 + len));
        buf = buf.subarray(4 + len);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(Number(process.env.RAW_PORT ?? 0), '127.0.0.1');
}
