/**
 * `ozs3 --help`, `ozs3 CMD --help`, `ozs3 help [CMD]` and `--version` without loading commander or
 * even Node's ESM loader: the commonest start-up, served from the texts commander itself rendered at
 * build time (dist/help.json). Built a second time as dist/fast-path.cjs for bin/ozs3.
 */
import { readFileSync } from 'node:fs';
import { describeErrno, writeAllSync } from './write-sync.js';

/** Help and version texts, keyed by command ('root' for the program itself). */
export type HelpTexts = Record<string, string> & { version: string };

export const COMMAND_NAMES: Readonly<Record<string, string>> = {
  getsecret: 'getsecret',
  'get-secret': 'getsecret',
  revokesecret: 'revokesecret',
  'revoke-secret': 'revokesecret',
  setsecret: 'setsecret',
  'set-secret': 'setsecret',
  doctor: 'doctor',
  completion: 'completion',
  help: 'root',
};

/** Which text argv asks for, if it asks for nothing but help or the version. */
export function helpKey(argv: readonly string[]): string | undefined {
  const isHelp = (a: string | undefined) => a === '--help' || a === '-h';
  const [first, second] = argv;
  if (argv.length === 1 && first === '--version') return 'version';
  if (argv.length === 1 && (isHelp(first) || first === 'help')) return 'root';
  if (argv.length === 2 && first && COMMAND_NAMES[first] && isHelp(second)) return COMMAND_NAMES[first];
  if (argv.length === 2 && first === 'help' && second && COMMAND_NAMES[second]) return COMMAND_NAMES[second];
  return undefined;
}

/** The width the texts were rendered at (program.ts HELP_WIDTH). */
const RENDERED_WIDTH = 80;

/**
 * The text to print for argv, or undefined when commander must run: help.json is absent, or the
 * terminal is narrower than the texts (the terminal would break lines mid-word; commander wraps
 * to its width).
 */
export function fastOutput(argv: readonly string[], helpFile: string, columns?: number): string | undefined {
  const key = helpKey(argv);
  if (key === undefined) return undefined;
  if (key !== 'version' && columns !== undefined && columns < RENDERED_WIDTH) return undefined;
  let texts: HelpTexts;
  try {
    texts = JSON.parse(readFileSync(helpFile, 'utf8')) as HelpTexts;
  } catch {
    return undefined; // running from source: commander renders it
  }
  const text = texts[key];
  return text === undefined ? undefined : key === 'version' ? `${text}\n` : text;
}

/**
 * Writes a fast-path text to fd 1 (setting up process.stdout, a net.Socket on a pipe, costs more
 * than the write) and returns the exit status: 0, or 9 with one line on stderr when stdout cannot
 * take it (a full disk, a closed pipe), as for every other output of ozs3.
 */
export function printFast(text: string): number {
  try {
    writeAllSync(1, Buffer.from(text));
    return 0;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    try {
      writeAllSync(2, Buffer.from(`ozs3: cannot write to stdout (${describeErrno(code)})\n`));
    } catch {
      // stderr is gone too
    }
    return 9;
  }
}
