/** What the master needs of every service supervisor (resident/on-demand runner, trigger runner). */
import type { ServiceSettings } from './service-config.js';

/** A supervisor's life: `running` until a soft stop, then `stopping` until its processes are gone. */
export type SupervisorState = 'new' | 'running' | 'stopping' | 'stopped';

/** How a service is run. */
export type ServiceMode = 'resident' | 'on-demand' | 'trigger';

/** One process of a service, as status reports it. */
export interface ProcessStatus {
  pid: number;
  slot: number;
  startedAt: string;
  stopping: boolean;
  /** Ready (`server-ready = notify`: it wrote READY=1; otherwise since its start). */
  ready: boolean;
}

/** A service's status (the master's status line lists one per service and generation). */
export interface ServiceStatus {
  name: string;
  generation: number;
  mode: ServiceMode;
  state: SupervisorState;
  listen: { name: string; address: string }[];
  processes: ProcessStatus[];
  /** Processes started so far (trigger: runs). */
  started: number;
  quickCrashes: number;
  /** ISO time before which no process is started (a throttled restart), when in the future. */
  throttledUntil?: string;
}

/** The supervisor of one service in one generation. */
export interface Supervisor {
  readonly settings: ServiceSettings;
  readonly generation: number;
  /** Keys of the listen sockets it uses (they stay open while it is not stopped). */
  readonly socketKeys: readonly string[];
  readonly state: SupervisorState;
  /** Starts its processes (or its watch, or its timer). */
  start(): void;
  /**
   * Soft stop: no new processes; SIGTERM to each (a service then stops accepting, finishes and exits);
   * SIGKILL after `server-stop-timeout`. Resolves when every process has exited. Idempotent.
   */
  softStop(): Promise<void>;
  /** SIGKILL to every process; resolves when they have exited. */
  destroy(): Promise<void>;
  /** Reopens `server-log` files. */
  reopenOutput(): void;
  /**
   * Resolves once the service is ready: every resident process started and ready (`server-ready = notify`:
   * wrote READY=1); at once for on-demand and trigger services. Rejects with IBP_ERR_MASTER_START when a process
   * ends before it is ready (its last STATUS= line in the message), when the supervisor stops first, or after
   * `timeoutMs`. Only the first processes count: once settled, it stays settled.
   */
  whenReady(timeoutMs?: number): Promise<void>;
  /** Sends a signal to every process it runs (not marked as a stop request). */
  signal(sig: NodeJS.Signals): void;
  status(): ServiceStatus;
}

/** Timers a supervisor sets, all cleared at once on stop. */
export class TimerSet {
  #timers = new Set<NodeJS.Timeout>();

  /** Runs `fn` after `ms` (0: on the next turn). */
  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.#timers.add(t);
  }

  clear(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}
