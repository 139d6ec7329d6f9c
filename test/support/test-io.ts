/** An IO for in-process tests: buffers, no terminal unless asked, scripted answers, a stdout that can fail. */
import { OutputError, PromptAbortedError, type IO } from '../../src/io.js';

export interface TestIOOptions {
  stdin?: string;
  tty?: boolean;
  /** Answers to prompts in order; an Error rejects that prompt (e.g. new PromptAbortedError('Ctrl-C')). */
  answers?: (string | Error)[];
  /** stdout fails with this errno from the Nth write on (0: the first write fails). */
  failStdoutAt?: { write: number; errno: string };
  stdoutDiscarded?: IO['stdoutDiscarded'];
}

export function createTestIO(opts: TestIOOptions = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const answers = [...(opts.answers ?? [])];
  let writes = 0;
  const io: IO = {
    out: (t) => {
      if (opts.failStdoutAt && writes >= opts.failStdoutAt.write) throw new OutputError(opts.failStdoutAt.errno);
      writes++;
      out.push(t);
    },
    err: (t) => void err.push(t),
    status: () => {},
    stdinIsTTY: Boolean(opts.tty),
    stdoutIsTTY: Boolean(opts.tty),
    stderrIsTTY: Boolean(opts.tty),
    stdoutDiscarded: opts.stdoutDiscarded,
    colorEnabled: false,
    prompt: async (q) => {
      err.push(q);
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      if (answer === undefined) throw new PromptAbortedError('end of input');
      return answer;
    },
    readStdin: async () => opts.stdin ?? '',
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}
