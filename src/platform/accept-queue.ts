/**
 * The master's accept queue: connections that arrived while no worker was idle wait here, bounded in count
 * (`accept_queue_count`) and time (`accept_queue_timeout`). Past either bound a connection is closed before any
 * byte was read from it, so its client sees a close before the pre-response: never in doubt.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/** While connections wait, the queue tries to hand them over this often (workers also say when they turn idle). */
const POLL_MS = 2;

interface Waiting {
  socket: Socket;
  since: number;
}

export interface AcceptQueueOptions {
  maxCount: number;
  timeoutMs: number;
  log: Logger;
  /** Hands a socket to an idle worker; false when none is idle. */
  dispatch: (socket: Socket) => boolean;
  /** The queue became non-empty (true) or empty (false). */
  onWaitingChange: (waiting: boolean) => void;
  /** Called after each drain that left connections waiting (FORK: start workers for them). */
  onStillWaiting?: (count: number) => void;
}

export class AcceptQueue {
  #o: AcceptQueueOptions;
  #queue: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(o: AcceptQueueOptions) {
    this.#o = o;
  }

  /** Connections waiting now (closed ones may still be counted until the next drain). */
  get length(): number {
    return this.#queue.length;
  }

  /** Queues a socket; closes it at once when the queue is full. */
  push(socket: Socket): void {
    if (this.#queue.length >= this.#o.maxCount) {
      this.#o.log.warn({ queued: this.#queue.length }, 'accept queue full; closing a new connection');
      socket.destroy();
      return;
    }
    this.#queue.push({ socket, since: Date.now() });
    if (this.#queue.length === 1) this.#o.onWaitingChange(true);
    this.#timer ??= setInterval(() => this.drain(), POLL_MS);
    this.#o.onStillWaiting?.(this.#queue.length);
  }

  /** Hands waiting connections to idle workers, oldest first; closes those past the time bound. */
  drain(): void {
    const now = Date.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.socket.destroyed) {
        this.#queue.shift();
        continue;
      }
      if (now - head.since > this.#o.timeoutMs) {
        this.#queue.shift();
        this.#o.log.warn({ waitedMs: now - head.since }, 'no idle worker within accept_queue_timeout; closing the connection');
        head.socket.destroy();
        continue;
      }
      if (!this.#o.dispatch(head.socket)) break;
      this.#queue.shift();
    }
    if (this.#queue.length === 0) this.#idle();
    else this.#o.onStillWaiting?.(this.#queue.length);
  }

  #idle(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#o.onWaitingChange(false);
  }

  /** Closes every waiting connection (stop). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const q of this.#queue) q.socket.destroy();
    this.#queue = [];
  }
}
