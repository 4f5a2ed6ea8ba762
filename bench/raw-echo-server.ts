/**
 * The baseline: a minimal raw Node.js TCP echo server with length-prefixed frames (u32 BE length + payload),
 * N worker processes sharing the listen socket (node:cluster, SCHED_NONE: each worker accepts itself — the
 * fastest arrangement Node offers). Prints `ready <port>` when every worker listens.
 * Usage: node raw-echo-server.js <workers> [port]
 */
import cluster from 'node:cluster';
import { createServer, type Socket } from 'node:net';

const workers = Number(process.argv[2] ?? 2);
const port = Number(process.argv[3] ?? 0);

if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let ready = 0;
  let boundPort = port;
  const forkOne = (): void => {
    const w = cluster.fork({ RAW_PORT: String(boundPort) });
    w.on('listening', (addr) => {
      boundPort = addr.port;
      if (++ready === workers) process.stdout.write(`ready ${boundPort}\n`);
    });
  };
  // The first worker picks the port; the others share it.
  forkOne();
  const wait = setInterval(() => {
    if (ready >= 1) {
      clearInterval(wait);
      for (let i = 1; i < workers; i++) forkOne();
    }
  }, 5);
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
