/** Where output goes. stdout carries data only; stderr carries messages for people. */
import { isatty } from 'node:tty';
export interface IO {
  /** Write data to stdout, as is. */
  out(text: string): void;
  /** Write a message to stderr, as is. */
  err(text: string): void;
  readonly stdinIsTTY: boolean;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** Colour on stderr: only on a terminal, never with NO_COLOR or --no-color; FORCE_COLOR forces it. */
  colorEnabled: boolean;
  /** Ask a question on the terminal and read one line of answer. */
  prompt(question: string): Promise<string>;
  /** Read all of stdin (for `--users-file -`). */
  readStdin(): Promise<string>;
}

export function decideColor(env: NodeJS.ProcessEnv, isTTY: boolean, flag: boolean | undefined): boolean {
  if (flag === false) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  return isTTY && env.TERM !== 'dumb';
}

export function createProcessIO(): IO {
  const { env } = process;
  // isatty() instead of process.stdin.isTTY: touching process.stdin sets up a stream (and on a pipe
  // the net module) that a command which never reads stdin does not need.
  const stderrIsTTY = isatty(2);
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    stdinIsTTY: isatty(0),
    stdoutIsTTY: isatty(1),
    stderrIsTTY,
    colorEnabled: decideColor(env, stderrIsTTY, undefined),
    async prompt(question) {
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: isatty(0) });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** An IO for unit tests: buffers, no terminal, scripted answers. */
export function createTestIO(opts: { stdin?: string; tty?: boolean; answers?: string[] } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const answers = [...(opts.answers ?? [])];
  const io: IO = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    stdinIsTTY: Boolean(opts.tty),
    stdoutIsTTY: Boolean(opts.tty),
    stderrIsTTY: Boolean(opts.tty),
    colorEnabled: false,
    prompt: async (q) => {
      err.push(q);
      return answers.shift() ?? '';
    },
    readStdin: async () => opts.stdin ?? '',
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}
