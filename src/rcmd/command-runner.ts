/**
 * Running one audited argv: no shell, a scrubbed environment, a fixed working directory, its own process
 * group (so a time limit or an output limit ends everything it started), stdin closed, and output handed
 * to the caller as it comes.
 */
import { spawn } from 'node:child_process';
import { IbpError } from '../core/errors.js';

/** Where and how long a command may run. */
export interface RunLimits {
  /** Working directory (absolute). */
  cwd: string;
  /** The environment's PATH (the only way commands are looked up). */
  path: string;
  /** The agent's home: `HOME` and `IBP_HOME` of the command. */
  homeRoot: string;
  timeoutMs: number;
  /** Bytes of stdout + stderr passed on; one more kills the command. */
  maxOutputBytes: number;
  /** Between SIGTERM at the time limit and SIGKILL (default 2000 ms). */
  killGraceMs?: number;
}

/** How a command ended. */
export interface RunOutcome {
  /** The exit code, or null when a signal ended it. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The time limit was reached and the agent ended the command. */
  timedOut: boolean;
  /** The output limit was reached and the agent ended the command. */
  outputLimited: boolean;
  durationMs: number;
  outputBytes: number;
}

/** 1 = stdout, 2 = stderr (the stream id of OUTPUT frames). */
export type StreamId = 1 | 2;

/** The environment every command gets: nothing is inherited from the agent. */
export function scrubbedEnv(limits: Pick<RunLimits, 'path' | 'homeRoot'>): NodeJS.ProcessEnv {
  return { PATH: limits.path, HOME: limits.homeRoot, IBP_HOME: limits.homeRoot, LANG: 'C', LC_ALL: 'C' };
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* the group is gone */
  }
}

/**
 * Runs `argv` and resolves with how it ended. `onOutput` gets each chunk (truncated at the limit).
 * `abort` (the client went away, the agent stops) kills the process group.
 * @throws IbpError IBP_ERR_RCMD_EXEC_FAILED when it cannot be started (not found, not executable).
 */
export function runCommand(
  argv: readonly string[],
  limits: RunLimits,
  onOutput: (stream: StreamId, chunk: Buffer) => void,
  abort?: AbortSignal,
): Promise<RunOutcome> {
  const started = performance.now();
  const grace = limits.killGraceMs ?? 2000;
  return new Promise<RunOutcome>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: limits.cwd,
      env: scrubbedEnv(limits),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
    let outputBytes = 0;
    let timedOut = false;
    let outputLimited = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      abort?.removeEventListener('abort', onAbort);
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        outputLimited,
        durationMs: Math.round(performance.now() - started),
        outputBytes,
      });
    };
    /** After a kill: if some descendant still holds the pipes, stop waiting for them within a bound. */
    const hardStop = (): void => {
      timers.push(setTimeout(() => {
        killGroup(child.pid, 'SIGKILL');
        child.stdout?.destroy();
        child.stderr?.destroy();
        if (exit !== undefined) finish();
      }, grace + 1000));
    };
    const terminate = (): void => {
      killGroup(child.pid, 'SIGTERM');
      timers.push(setTimeout(() => killGroup(child.pid, 'SIGKILL'), grace));
      hardStop();
    };
    const onAbort = (): void => {
      killGroup(child.pid, 'SIGKILL');
      hardStop();
    };
    const take = (stream: StreamId) => (chunk: Buffer): void => {
      if (outputLimited) return;
      const room = limits.maxOutputBytes - outputBytes;
      if (chunk.length > room) {
        if (room > 0) onOutput(stream, chunk.subarray(0, room));
        outputBytes += Math.max(room, 0);
        outputLimited = true;
        killGroup(child.pid, 'SIGKILL');
        hardStop();
        return;
      }
      outputBytes += chunk.length;
      onOutput(stream, chunk);
    };
    child.stdout!.on('data', take(1));
    child.stderr!.on('data', take(2));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (settled || child.pid !== undefined) return; // after a start, 'error' is only a failed kill
      settled = true;
      for (const t of timers) clearTimeout(t);
      abort?.removeEventListener('abort', onAbort);
      const why = err.code === 'ENOENT' ? `not found (cwd ${limits.cwd}, PATH ${limits.path})` : err.code === 'EACCES' ? 'not executable' : err.message;
      reject(new IbpError('IBP_ERR_RCMD_EXEC_FAILED', `cannot start ${JSON.stringify(argv[0])}: ${why}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // what the command left running in its group ends with it
      killGroup(child.pid, 'SIGKILL');
      // pipes held open by a descendant that left the group must not hold the answer back
      timers.push(setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2000));
    });
    child.once('close', finish);
    if (child.pid !== undefined) {
      timers.push(setTimeout(() => {
        if (exit !== undefined) return;
        timedOut = true;
        terminate();
      }, limits.timeoutMs));
      if (abort?.aborted) onAbort();
      else abort?.addEventListener('abort', onAbort, { once: true });
    }
  });
}
