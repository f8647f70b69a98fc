import { spawn } from 'node:child_process';

/** One smtp-source run: how many messages, how big, how many sessions, connections kept open or not. */
export interface SourceRun {
  port: number;
  sessions: number;
  messages: number;
  /** Payload bytes per message (smtp-source adds a few header lines). */
  size: number;
  /** `-d`: send the next message over the same connection. */
  keepOpen: boolean;
}

/** Run Postfix's smtp-source against 127.0.0.1:PORT; resolves with the wall time it took. */
export async function runSmtpSource(run: SourceRun): Promise<{ seconds: number; msgsPerSec: number }> {
  const args = ['-s', String(run.sessions), '-m', String(run.messages), '-l', String(run.size)];
  if (run.keepOpen) args.push('-d');
  args.push('-f', 'bench@source.test', '-t', 'sink@postroom.test', `127.0.0.1:${run.port}`);
  const started = process.hrtime.bigint();
  const child = spawn('smtp-source', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // smtp-source stops at the first unexpected reply; a run with errors measures nothing.
  if (code !== 0 || /fatal|error/i.test(stderr)) {
    throw new Error(`smtp-source ${args.join(' ')} failed (exit ${code}): ${stderr.trim().slice(0, 500)}`);
  }
  return { seconds, msgsPerSec: run.messages / seconds };
}
