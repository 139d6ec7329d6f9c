/** argv → exit code. Builds the program, runs it, prints any error once, maps it to the exit table. */
import { homedir } from 'node:os';
import { ExitCode, Ozs3Error, sanitizeText } from './errors.js';
import { createProcessIO, decideColor, type IO } from './io.js';
import { processInterrupts, type Deps } from './deps.js';
import type { HelpTexts } from './fast-path.js';

/** What the build stores in dist/help.json. */
export async function renderHelpTexts(): Promise<HelpTexts> {
  const { buildProgram, VERSION } = await import('./program.js');
  const program = buildProgram({ deps: () => ({}) as Deps, setExitCode: () => {} });
  const texts: HelpTexts = { version: VERSION, root: captureHelp(program) };
  for (const cmd of program.commands) texts[cmd.name()] = captureHelp(cmd);
  return texts;
}

function captureHelp(cmd: import('commander').Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

/** The terminal's width when stdout is one (help is wrapped to it), else undefined (the fixed width). */
function terminalColumns(io: IO): number | undefined {
  return io.stdoutIsTTY && process.stdout.columns > 0 ? process.stdout.columns : undefined;
}

export async function main(argv: string[], overrides: Partial<Deps> = {}): Promise<number> {
  const { buildProgram } = await import('./program.js');
  const { CommanderError } = await import('commander');
  const io = overrides.io ?? createProcessIO();
  const env = overrides.env ?? process.env;
  const verbose = argv.includes('-v') || argv.includes('--verbose');
  if (argv.includes('--no-color')) io.colorEnabled = false;
  else io.colorEnabled = decideColor(env, io.stderrIsTTY, undefined);

  let exitCode: number = ExitCode.ok;
  let usageHint = 'ozs3 --help';
  const deps: Deps = {
    io,
    env,
    cwd: overrides.cwd ?? process.cwd(),
    homedir: overrides.homedir ?? homedir(),
    onInterrupt: overrides.onInterrupt ?? processInterrupts,
    openService: overrides.openService,
    dispatcher: overrides.dispatcher,
  };
  const program = buildProgram({
    deps: () => deps,
    setExitCode: (code) => {
      exitCode = code;
    },
    helpWidth: overrides.io ? undefined : terminalColumns(io),
  });
  program.exitOverride();
  const output = {
    writeOut: (text: string) => io.out(text),
    writeErr: (text: string) => io.err(text),
    // Commander's own usage errors, reworded into our one-line shape (hint printed below); its
    // suggestion ("\n(Did you mean --yes?)") joins the line.
    outputError: (text: string, write: (s: string) => void) =>
      write(
        `ozs3: ${text
          .replace(/^error: /, '')
          .trimEnd()
          .replace(/\s*\n\(Did you mean (.+)\?\)$/, ' (did you mean $1?)')
          // "argument 'abc' is invalid. expected a number…" (our parser's reason, lower case)
          .replace(/ is invalid\. (?=[a-z])/, ' is invalid: ')}\n`,
      ),
  };
  program.configureOutput(output);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    cmd.configureOutput(output);
    if (cmd.name() !== 'help') {
      cmd.hook('preAction', () => {
        usageHint = `ozs3 ${cmd.name()} --help`;
      });
    }
  }
  const sub = program.commands.find((c) => argv.includes(c.name()) || c.aliases().some((a) => argv.includes(a)));
  if (sub && sub.name() !== 'help') usageHint = `ozs3 ${sub.name()} --help`;

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      // Bare `ozs3` prints help to stderr: a usage error.
      if (error.code !== 'commander.help') await printHint(io, `see '${usageHint}'`);
      return ExitCode.usage;
    }
    return reportError(error, io, verbose, usageHint);
  }
}

async function paint(io: IO) {
  if (!io.colorEnabled) return { red: (s: string) => s, yellow: (s: string) => s };
  const { Chalk } = await import('chalk');
  const chalk = new Chalk({ level: 1 });
  return { red: (s: string) => chalk.red.bold(s), yellow: (s: string) => chalk.yellow(s) };
}

async function printHint(io: IO, hint: string): Promise<void> {
  const { yellow } = await paint(io);
  io.err(`${yellow('hint:')} ${hint}\n`);
}

/** The one place errors are printed: `ozs3: <what happened>` and an optional `hint:` line. */
export async function reportError(
  error: unknown,
  io: IO,
  verbose: boolean,
  usageHint = 'ozs3 --help',
): Promise<number> {
  const { red, yellow } = await paint(io);
  if (error instanceof Ozs3Error) {
    io.err(`${red('ozs3:')} ${sanitizeText(error.message, 2000)}\n`);
    const hint = error.hint ?? (error.code === 'USAGE' ? `see '${usageHint}'` : undefined);
    if (hint) io.err(`${yellow('hint:')} ${sanitizeText(hint, 2000)}\n`);
    if (verbose && error.cause instanceof Error) io.err(`* cause: ${sanitizeText(error.cause.message, 2000)}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.err(`${red('ozs3:')} internal error: ${sanitizeText(message, 2000)}\n`);
  if (verbose && error instanceof Error && error.stack) io.err(`${error.stack}\n`);
  else io.err(`${yellow('hint:')} this is a bug in ozs3; run again with --verbose for details and report it\n`);
  return ExitCode.internal;
}
