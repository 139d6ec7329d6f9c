/**
 * A test daemon (krb5kdc, httpd) under a tiny sh guard holding a pipe from this process: when this
 * process dies, even by SIGKILL, the pipe closes, `read` returns, and the guard stops the daemon.
 * No daemon outlives the test run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';

export interface Daemon {
  /** The guard shell. */
  child: ChildProcess;
  /** The daemon itself. */
  pid: number;
  exited: Promise<number | null>;
}

export interface DaemonOptions {
  /** Program and arguments; the daemon must stay in the foreground. */
  command: string[];
  env: Record<string, string>;
  /** Loopback TCP port that answers once the daemon is up. */
  port: number;
  /** The address that port is on; default 127.0.0.1. */
  host?: string;
  timeoutMs: number;
  /** Shown, last lines, when the daemon does not come up. */
  logFile: string;
  /**
   * Run the guard in its own process group and let it ignore SIGTERM: httpd's prefork MPM, stopping
   * under -DFOREGROUND, sends SIGTERM to its whole group, which would otherwise be ours.
   */
  ownProcessGroup?: boolean;
}

function guardScript(ignoreTerm: boolean): string {
  return [
    ...(ignoreTerm ? ["trap '' TERM"] : []),
    'exec 3<&0',
    '"$@" </dev/null &',
    'daemon=$!',
    'echo "pid $daemon"',
    '( read -r _ <&3; kill -TERM "$daemon" 2>/dev/null ) &',
    'guard=$!',
    'wait "$daemon"; rc=$?',
    'kill -9 "$guard" 2>/dev/null',
    'exit "$rc"',
  ].join('\n');
}

export function tcpAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Kills the guard's whole process group (own-group daemons) or the guard and the daemon. */
export function killDaemon(daemon: Pick<Daemon, 'child' | 'pid'>, ownProcessGroup: boolean): void {
  const targets = ownProcessGroup ? [-(daemon.child.pid ?? 0)] : [daemon.child.pid ?? 0, daemon.pid];
  for (const target of targets) {
    try {
      if (target) process.kill(target, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Starts the daemon and waits until its port answers; on failure, says why with the log's tail. */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon | { failed: string }> {
  const [program] = opts.command;
  const ownGroup = Boolean(opts.ownProcessGroup);
  const child = spawn('/bin/sh', ['-c', guardScript(ownGroup), 'daemon-guard', ...opts.command], {
    env: opts.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: ownGroup,
  });
  let output = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
  });
  child.stdin?.on('error', () => {}); // the guard may be gone already when we close its pipe
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  const pid = await new Promise<number>((resolve) => {
    child.stdout?.on('data', (chunk: string) => {
      output += chunk;
      const m = /pid (\d+)/.exec(output);
      if (m?.[1]) resolve(Number(m[1]));
    });
    void exited.then(() => resolve(0));
  });
  child.stderr?.on('data', (chunk: string) => {
    output = (output + chunk).slice(-4000);
  });
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline && exitCode === undefined) {
    if (await tcpAnswers(opts.port, opts.host)) return { child, pid, exited };
    await new Promise((r) => setTimeout(r, 10));
  }
  if (exitCode === undefined) {
    child.stdin?.end();
    killDaemon({ child, pid }, ownGroup);
    await exited;
  }
  let log = '';
  try {
    log = (await readFile(opts.logFile, 'utf8')).split('\n').slice(-10).join('\n');
  } catch {
    // no log yet
  }
  const said = output.replace(/^pid \d+\n?/, '').trim();
  return {
    failed:
      `${program} did not answer on ${opts.host ?? '127.0.0.1'}:${opts.port} (exit ${String(exitCode)}): ${said} ${log}`.trim(),
  };
}
