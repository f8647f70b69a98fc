import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mailError, MailError, SYSEXITS } from '../../core/errors.js';
import type { CommandAction } from './definition.js';

/** What a command run produced. */
export interface CommandResult {
  exitCode: number;
  /** stdout, cut at maxOutput. */
  output: Buffer;
  truncated: boolean;
}

/** Names a command sees besides its own `env`: nothing of ours (no API token, no database URL). */
const PASSED_THROUGH = ['PATH', 'LANG', 'LC_ALL', 'TZ'];

/** The environment of a workflow command: PATH/LANG/TZ, the workflow's env, then our metadata. */
export function commandEnv(action: CommandAction, meta: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of PASSED_THROUGH) if (process.env[k] !== undefined) env[k] = process.env[k];
  Object.assign(env, action.env);
  // spawn() refuses a NUL in the environment; a header value could carry one.
  for (const [k, v] of Object.entries(meta)) env[k] = v.replace(/\u0000/g, '');
  return env;
}

/**
 * Run `action.command` with `input` on stdin, never through a shell: the argv goes to execve()
 * as it is, so nothing in a message can become a shell word. Resolves on exit 0. Exit 75
 * (EX_TEMPFAIL), a timeout, or a command that cannot start for lack of resources is a
 * transient MailError (the delivery retries it); any other exit code is permanent, with the
 * tail of stderr as the reason.
 */
export function runCommand(action: CommandAction, input: Readable, meta: Record<string, string>, signal: AbortSignal): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = action.command;
    const child = spawn(file, args, { shell: false, env: commandEnv(action, meta), stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let truncated = false;
    let errTail = Buffer.alloc(0);
    let timedOut = false;
    let aborted = false;
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      input.destroy();
      fn();
    };
    const kill = () => {
      child.kill('SIGTERM');
      // A command that ignores SIGTERM must not hold the delivery for ever.
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, action.timeout);
    const onAbort = () => {
      aborted = true;
      kill();
    };
    signal.addEventListener('abort', onAbort);

    child.stdout.on('data', (c: Buffer) => {
      // Past the cap we keep reading (so the command is not blocked on a full pipe) and drop.
      if (outBytes < action.maxOutput) out.push(c.subarray(0, action.maxOutput - outBytes));
      if (outBytes + c.length > action.maxOutput) truncated = true;
      outBytes += c.length;
    });
    child.stderr.on('data', (c: Buffer) => {
      errTail = Buffer.concat([errTail, c]).subarray(-2048);
    });
    // A command that exits without reading its input closes the pipe: EPIPE is not our failure.
    child.stdin.on('error', () => {});
    input.on('error', (err) => {
      child.kill('SIGKILL');
      finish(() => reject(err));
    });
    input.pipe(child.stdin);

    child.on('error', (err: NodeJS.ErrnoException) => {
      // ENOENT/EACCES: the workflow names a program that is not there: a configuration error,
      // permanent until someone fixes the workflow. EAGAIN/ENOMEM: the machine is busy.
      const transient = err.code === 'EAGAIN' || err.code === 'ENOMEM' || err.code === 'EMFILE';
      finish(() =>
        reject(
          transient
            ? mailError('TARGET_TEMPFAIL', `cannot start ${file}: ${err.code}`)
            : mailError('TARGET_REJECTED', `cannot start ${file}: ${err.code ?? err.message}`),
        ),
      );
    });
    child.on('close', (code, sig) => {
      const stderr = errTail.toString('utf8').replace(/\s+/g, ' ').trim().slice(-300);
      finish(() => {
        if (timedOut) return reject(mailError('TARGET_TIMEOUT', `${file} killed after ${action.timeout} ms`));
        if (aborted) return reject(signal.reason instanceof MailError ? signal.reason : mailError('TIMEOUT', `${file} stopped: attempt aborted`));
        if (code === 0) return resolve({ exitCode: 0, output: Buffer.concat(out), truncated });
        const why = `${file} ${code === null ? `killed by ${sig}` : `exited ${code}`}${stderr ? `: ${stderr}` : ''}`;
        // sysexits.h EX_TEMPFAIL: the program itself says "try again later", as an MTA's pipe would.
        if (code === SYSEXITS.TEMPFAIL || code === null) return reject(Object.assign(mailError('TARGET_TEMPFAIL', why), { exitCode: code }));
        reject(Object.assign(mailError('TARGET_REJECTED', why), { exitCode: code }));
      });
    });
  });
}
