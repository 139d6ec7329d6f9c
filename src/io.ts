/**
 * Where output goes. stdout carries data only; stderr carries messages for people.
 *
 * Writes are synchronous and checked: Ozone shows a secret once, so a failed write to stdout
 * (a closed pipe, a full disk) must be known at the very line that lost it — an asynchronous
 * stream would report it later as an 'error' event (and a stack trace). Writes to stderr never
 * throw: a message that cannot be shown must not stop the work.
 */
import { fstatSync, readFileSync, statSync } from 'node:fs';
import { isatty } from 'node:tty';
import { LocalFileError } from './errors.js';
import { describeErrno, writeAllSync } from './write-sync.js';

export interface IO {
  /** Write data to stdout. Throws OutputError when stdout cannot take it. */
  out(text: string): void;
  /** Write a message to stderr. Never throws. */
  err(text: string): void;
  /** Show (or with undefined, clear) a one-line status on stderr; only drawn when stderr is a terminal. */
  status(text: string | undefined): void;
  readonly stdinIsTTY: boolean;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** Set when stdout goes nowhere: 'closed' at start (Node then points fd 1 at /dev/null) or '/dev/null'. */
  readonly stdoutDiscarded: 'closed' | '/dev/null' | undefined;
  /** Colour on stderr: only on a terminal, never with NO_COLOR or --no-color; FORCE_COLOR forces it. */
  colorEnabled: boolean;
  /** Ask a question on the terminal and read one line; rejects with PromptAbortedError on Ctrl-C / Ctrl-D. */
  prompt(question: string): Promise<string>;
  /** Read all of stdin (for `--users-file -`). */
  readStdin(): Promise<string>;
}

/** stdout failed: the data written from here on reached nobody. Exit 9, like other local files. */
export class OutputError extends LocalFileError {
  constructor(readonly errno: string) {
    super('STDOUT_WRITE', `cannot write to stdout (${describeErrno(errno)})`);
  }
}

/** The prompt ended without an answer (Ctrl-C, Ctrl-D, or stdin closed). */
export class PromptAbortedError extends Error {
  constructor(readonly how: 'Ctrl-C' | 'end of input') {
    super(`no answer (${how})`);
  }
}

export function decideColor(env: NodeJS.ProcessEnv, isTTY: boolean, flag: boolean | undefined): boolean {
  if (flag === false) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  return isTTY && env.TERM !== 'dumb';
}

/**
 * Node reopens a closed fd 1 on /dev/null (read-write) before any JavaScript runs; a shell's
 * `>/dev/null` opens it write-only. Either way a secret written there is lost.
 */
function discardedStdout(): IO['stdoutDiscarded'] {
  try {
    const stat = fstatSync(1);
    if (!stat.isCharacterDevice() || stat.rdev !== statSync('/dev/null').rdev) return undefined;
    const flags = /^flags:\s*(\d+)/m.exec(readFileSync('/proc/self/fdinfo/1', 'utf8'))?.[1];
    return flags !== undefined && (parseInt(flags, 8) & 3) === 2 ? 'closed' : '/dev/null';
  } catch {
    return undefined;
  }
}

const CLEAR_LINE = '\r\u001b[2K';

export function createProcessIO(): IO {
  const { env } = process;
  // isatty() instead of process.stdin.isTTY: touching process.stdin sets up a stream (and on a pipe
  // the net module) that a command which never reads stdin does not need.
  const stdoutIsTTY = isatty(1);
  const stderrIsTTY = isatty(2);
  let statusLine: string | undefined;
  let stdoutBroken: OutputError | undefined;
  const raw = {
    err(text: string) {
      try {
        writeAllSync(2, Buffer.from(text));
      } catch {
        // stderr is gone (closed pipe, full disk): messages are lost, the work goes on
      }
    },
  };
  // A status line is cleared before any other write to the terminal and drawn again after it.
  const around = (write: () => void, toTerminal = true) => {
    if (statusLine === undefined || !toTerminal) return write();
    raw.err(CLEAR_LINE);
    try {
      write();
    } finally {
      raw.err(statusLine);
    }
  };
  return {
    out(text) {
      if (stdoutBroken) throw stdoutBroken;
      around(() => {
        try {
          writeAllSync(1, Buffer.from(text));
        } catch (error) {
          stdoutBroken = new OutputError((error as NodeJS.ErrnoException).code ?? 'EIO');
          throw stdoutBroken;
        }
      }, stdoutIsTTY);
    },
    err: (text) => around(() => raw.err(text)),
    status(text) {
      if (!stderrIsTTY) return;
      if (text === undefined) {
        if (statusLine !== undefined) raw.err(CLEAR_LINE);
        statusLine = undefined;
        return;
      }
      statusLine = text;
      raw.err(`${CLEAR_LINE}${text}`);
    },
    stdinIsTTY: isatty(0),
    stdoutIsTTY,
    stderrIsTTY,
    stdoutDiscarded: stdoutIsTTY ? undefined : discardedStdout(),
    colorEnabled: decideColor(env, stderrIsTTY, undefined),
    async prompt(question) {
      const { createInterface } = await import('node:readline');
      return new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: isatty(0) });
        // rl.close() emits 'close' at once: settle first, so Ctrl-C is not reported as end of input.
        let settled = false;
        rl.once('SIGINT', () => {
          settled = true;
          reject(new PromptAbortedError('Ctrl-C'));
          rl.close();
        });
        rl.once('close', () => {
          if (!settled) reject(new PromptAbortedError('end of input'));
        });
        rl.question(question, (answer) => {
          settled = true;
          rl.close();
          resolve(answer);
        });
      }).finally(() => process.stdin.pause());
    },
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}
