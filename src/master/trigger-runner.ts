/**
 * A trigger (timer) service (SPEC §8.4 #127, Postfix's wakeup / ACL's trigger template):
 * `server-service = trigger:SECONDS` runs `server-command` (argv, no shell) every SECONDS, the first time one
 * interval after the start. A run still going when the next one is due makes that one skipped (logged), never
 * overlapped. Runs get the service's keys in the environment, no listen sockets.
 */
import type { Logger } from 'pino';
import type { ServiceSettings } from './service-config.js';
import { ServiceOutput, serviceEnv, startServiceProcess, type ServiceProcess } from './service-spawn.js';
import { signal } from './service-runner.js';
import type { ServiceStatus, Supervisor, SupervisorState } from './supervisor.js';

export interface TriggerRunnerOptions {
  settings: ServiceSettings;
  log: Logger;
  generation: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a trigger service (see the module comment). */
export class TriggerRunner implements Supervisor {
  readonly settings: ServiceSettings;
  readonly generation: number;
  readonly socketKeys: readonly string[] = [];
  #log: Logger;
  #env: NodeJS.ProcessEnv;
  #cwd: string;
  #intervalMs: number;
  #state: SupervisorState = 'new';
  #timer: NodeJS.Timeout | undefined;
  #run: ServiceProcess | undefined;
  #runs = 0;
  #skipped = 0;
  #output: ServiceOutput | undefined;
  #stopped: Promise<void> | undefined;

  constructor(o: TriggerRunnerOptions) {
    if (o.settings.endpoints.kind !== 'trigger') throw new TypeError(`${o.settings.name} is not a trigger service`);
    this.settings = o.settings;
    this.generation = o.generation;
    this.#intervalMs = o.settings.endpoints.intervalMs;
    this.#log = o.log.child({ service: o.settings.name, generation: o.generation });
    this.#env = o.env ?? process.env;
    this.#cwd = o.cwd ?? process.cwd();
  }

  get state(): SupervisorState {
    return this.#state;
  }

  start(): void {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    this.#output = new ServiceOutput(this.settings, this.#log);
    // Kept referenced: between runs this timer is what the master waits on.
    this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
    this.#log.info({ mode: 'trigger', intervalMs: this.#intervalMs }, 'service started');
  }

  #tick(): void {
    if (this.#state !== 'running') return;
    if (this.#run) {
      this.#skipped++;
      this.#log.warn({ pid: this.#run.pid, skipped: this.#skipped }, 'trigger run skipped: the previous run is still going');
      return;
    }
    const env = serviceEnv(this.settings, [], this.#env, process.pid);
    const run = startServiceProcess(this.settings, [], this.#output!.stdio(), env, this.#cwd);
    this.#run = run;
    this.#runs++;
    this.#log.info({ pid: run.pid, run: this.#runs }, 'trigger run started');
    void run.ended.then((end) => {
      this.#run = undefined;
      const failed = end.code !== 0;
      this.#log[failed ? 'warn' : 'info']({ pid: run.pid, run: this.#runs, code: end.code, signal: end.signal, ranMs: end.endedAt - end.startedAt }, 'trigger run finished');
    });
  }

  softStop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    if (this.#timer) clearInterval(this.#timer);
    const run = this.#run;
    if (run) {
      signal(run, 'SIGTERM');
      const kill = setTimeout(() => signal(run, 'SIGKILL'), this.settings.stopTimeoutMs);
      await run.ended;
      clearTimeout(kill);
    }
    this.#output?.close();
    this.#state = 'stopped';
    this.#log.info({ runs: this.#runs, skipped: this.#skipped }, 'service stopped');
  }

  async destroy(): Promise<void> {
    const stopped = this.softStop();
    if (this.#run) signal(this.#run, 'SIGKILL');
    await stopped;
  }

  whenReady(): Promise<void> {
    return Promise.resolve();
  }

  signal(sig: NodeJS.Signals): void {
    const p = this.#run;
    if (!p) return;
    try {
      p.child.kill(sig);
    } catch {
      /* already gone */
    }
  }

  reopenOutput(): void {
    this.#output?.reopen();
  }

  status(): ServiceStatus {
    const r = this.#run;
    return {
      name: this.settings.name,
      generation: this.generation,
      mode: 'trigger',
      state: this.#state,
      listen: [],
      processes: r ? [{ pid: r.pid, slot: 0, startedAt: new Date(r.startedAt).toISOString(), stopping: r.stopRequested, ready: true }] : [],
      started: this.#runs,
      quickCrashes: 0,
    };
  }
}
