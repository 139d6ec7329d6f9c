/**
 * Runs a shell command on a real terminal: a pty from util-linux `script`. Keys are typed when a
 * pattern shows on the screen (Ctrl-C is '\x03', Ctrl-D '\x04'); `cols` sets the terminal width.
 */
import { spawn } from 'node:child_process';
import { STACK_TRACE } from './run-cli.js';

export interface PtyStep {
  /** Type `keys` once the screen (everything printed so far) matches this. */
  when: RegExp;
  keys: string;
}

export interface PtyResult {
  code: number | null;
  /** Everything the terminal received, escape sequences included. */
  screen: string;
}

export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function onPty(
  command: string,
  opts: { env: Record<string, string>; steps?: PtyStep[]; cols?: number; cwd?: string; timeoutMs?: number },
): Promise<PtyResult> {
  // `noflsh`: on Ctrl-C the tty driver otherwise discards output the program wrote and the reader
  // (here `script`) had not read yet, so a line ozs3 printed could be missing from `screen`.
  // A terminal emulator reads at once; a loaded test machine may not (CI saw one revoke line gone).
  const sized = `stty noflsh${opts.cols ? ` cols ${opts.cols} rows 50` : ''}; ${command}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', sized, '/dev/null'], {
      env: opts.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.once('error', (error) =>
      reject(new Error(`script (Debian package bsdutils) is needed for terminal tests: ${error.message}`)),
    );
    const steps = [...(opts.steps ?? [])];
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      screen += chunk;
      while (steps[0] && steps[0].when.test(screen)) child.stdin.write(steps.shift()!.keys);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      // As runCli: no run on a terminal may show a Node stack trace or an internal error.
      if (STACK_TRACE.test(screen)) reject(new Error(`a stack trace on the terminal:\n${screen}`));
      else resolve({ code, screen });
    });
  });
}
