/**
 * A listen socket the master owns but never accepts on, so that every connection goes to a service process.
 *
 * Node.js has no public way to hold a listening socket without polling it (a `net.Server` always accepts, and
 * a listening handle cannot be paused: DESIGN §7). So:
 * - the socket is created and bound with `net._createServerHandle` (what `node:cluster` uses for shared
 *   handles): a libuv handle that owns the fd and is never started, so the master's event loop never polls it;
 * - `listen(2)` is called by a short helper process that inherits the fd (`listen-helper.ts`) and exits before
 *   its event loop runs; the listening state belongs to the socket, so the master's fd is listening afterwards;
 * - for on-demand services, `watch()` re-opens the same handle as a *stream* and starts reading: when a
 *   connection waits, `read(2)` on a listening socket fails (ENOTCONN/EINVAL), libuv reports it and stops
 *   reading. That tells the master "a connection waits" without accepting it. `open()` on the same fd resets
 *   the handle for the next watch, so nothing leaks per cycle.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import * as net from 'node:net';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { IbpError } from '../core/errors.js';
import { formatListenAddress, type ListenAddress } from './service-address.js';

const LISTEN_HELPER = join(dirname(fileURLToPath(import.meta.url)), 'listen-helper.js');
/** listen(2) backlog of every master socket (the kernel caps it at net.core.somaxconn). */
export const LISTEN_BACKLOG = 1024;

/** The libuv stream handle methods used here (TCP or Pipe wrap). */
interface RawHandle {
  fd: number;
  onread: ((...args: unknown[]) => void) | undefined;
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  setBlocking(blocking: boolean): number;
  getsockname?(out: { port?: number; address?: string }): number;
  close(cb?: () => void): void;
}

type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => RawHandle | number;
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;

function sysError(addr: ListenAddress, what: string, errno: number): IbpError {
  const name = getSystemErrorName(errno);
  return new IbpError('IBP_ERR_MASTER_LISTEN', `cannot ${what} ${addr.text} (${formatListenAddress(addr)}): ${name}`, {
    details: { address: addr.text, errno: name },
  });
}

/** Resolves true when something accepts connections on a unix socket path. */
function unixPathInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A bound, listening socket held by the master (see the module comment). */
export class ListenSocket {
  readonly address: ListenAddress;
  #h: RawHandle;
  #port: number;
  #watching = false;
  #onReadable: (() => void) | undefined;
  #closed = false;

  private constructor(address: ListenAddress, h: RawHandle, port: number) {
    this.address = address;
    this.#h = h;
    this.#port = port;
  }

  /**
   * Creates and binds the socket (not yet listening: see `makeListening`). A leftover unix socket file nobody
   * accepts on is removed first.
   * @throws IbpError IBP_ERR_MASTER_LISTEN (in use, address not on this host, path not a socket, …).
   */
  static async bind(address: ListenAddress): Promise<ListenSocket> {
    let h: RawHandle | number;
    if (address.kind === 'unix') {
      let isSocket = false;
      try {
        const st = lstatSync(address.path);
        if (!st.isSocket()) throw new IbpError('IBP_ERR_MASTER_LISTEN', `cannot bind ${address.text}: ${address.path} exists and is not a socket`);
        isSocket = true;
      } catch (err) {
        if (err instanceof IbpError) throw err;
      }
      if (isSocket) {
        if (await unixPathInUse(address.path)) {
          throw new IbpError('IBP_ERR_MASTER_LISTEN', `cannot bind ${address.text}: something already accepts on ${address.path}`);
        }
        try {
          unlinkSync(address.path);
        } catch {
          /* gone meanwhile */
        }
      }
      try {
        mkdirSync(dirname(address.path), { recursive: true });
      } catch {
        /* bind reports it */
      }
      h = createServerHandle(address.path, -1, -1);
    } else {
      h = createServerHandle(address.host, address.port, address.family);
    }
    if (typeof h === 'number') throw sysError(address, 'bind', h);
    let port = 0;
    if (address.kind === 'tcp') {
      // libuv defers a bind's EADDRINUSE to listen(); an unbound socket would then listen on a random port.
      // So a TCP bind is checked by the port it got.
      const out: { port?: number } = {};
      h.getsockname?.(out);
      port = out.port ?? 0;
      if (port === 0 || (address.port !== 0 && port !== address.port)) {
        h.close();
        throw sysError(address, 'bind', -constants.errno.EADDRINUSE);
      }
    }
    return new ListenSocket(address, h, port);
  }

  /** The fd the master holds (handed to service processes). */
  get fd(): number {
    return this.#h.fd;
  }

  /** The bound TCP port (the chosen one for port 0), 0 for a unix socket. */
  get port(): number {
    return this.#port;
  }

  /** `127.0.0.1:8080` or the socket path. */
  describe(): string {
    return formatListenAddress(this.address, this.#port);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sets O_NONBLOCK on the socket. The flag belongs to the socket shared by every process holding it, so it is
   * set to what the next service process expects just before it starts (`server-nonblocking`).
   */
  setNonBlocking(on: boolean): void {
    if (this.#closed) return;
    const err = this.#h.setBlocking(!on);
    if (err !== 0) throw sysError(this.address, 'set O_NONBLOCK on', err);
  }

  /** Calls `onReadable` once, when a connection waits to be accepted; the connection is left in the backlog. */
  watch(onReadable: () => void): void {
    if (this.#closed || this.#watching) return;
    this.#onReadable = onReadable;
    this.#h.onread = () => {
      if (!this.#watching) return;
      this.#watching = false;
      this.#h.readStop();
      const cb = this.#onReadable;
      this.#onReadable = undefined;
      // Not from inside libuv's read callback: it stops the handle after we return, undoing a re-watch.
      if (cb) setImmediate(cb);
    };
    let err = this.#h.open(this.#h.fd);
    if (err === 0) err = this.#h.readStart();
    if (err !== 0) throw sysError(this.address, 'watch', err);
    this.#watching = true;
  }

  /** Stops a watch that has not fired. */
  unwatch(): void {
    if (!this.#watching) return;
    this.#watching = false;
    this.#onReadable = undefined;
    this.#h.readStop();
  }

  get watching(): boolean {
    return this.#watching;
  }

  /** True when a connection waits in the backlog right now (checked over two event-loop turns). */
  async probe(): Promise<boolean> {
    if (this.#closed) return false;
    let fired = false;
    this.unwatch();
    this.watch(() => (fired = true));
    for (let i = 0; i < 2 && !fired; i++) await new Promise((r) => setImmediate(r));
    this.unwatch();
    return fired;
  }

  /** Closes the master's copy (a unix socket file is removed); processes holding the fd keep theirs. */
  close(): void {
    if (this.#closed) return;
    this.unwatch();
    this.#closed = true;
    this.#h.close();
  }
}

/**
 * Calls listen(2) on freshly bound sockets, in a helper process (see the module comment). Synchronous: it runs
 * at start and on reload only.
 * @throws IbpError IBP_ERR_MASTER_LISTEN when the helper fails.
 */
export function makeListening(sockets: readonly ListenSocket[], backlog: number = LISTEN_BACKLOG): void {
  if (sockets.length === 0) return;
  const r = spawnSync(process.execPath, [LISTEN_HELPER, String(sockets.length), String(backlog)], {
    stdio: ['ignore', 'ignore', 'pipe', ...sockets.map((s) => s.fd)],
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) {
    const why = r.error?.message || r.stderr.trim() || `exit ${r.status}`;
    throw new IbpError('IBP_ERR_MASTER_LISTEN', `cannot listen on ${sockets.map((s) => s.address.text).join(', ')}: ${why}`, { cause: r.error });
  }
}
