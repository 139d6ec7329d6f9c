/**
 * Commander wiring: the root, the shared options, the commands. Actions only hand off to
 * lazily imported `runX(opts, deps)` functions, so `--help` loads neither Kerberos nor undici.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Deps } from './deps.js';

export const VERSION = '0.1.0';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600)
    throw new InvalidArgumentError('expected a number of seconds between 0 and 3600.');
  return n;
}

function integerIn(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Options every command takes. They work before or after the command name. */
function addSharedOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <url>', 'S3 Gateway secret endpoint, e.g. https://s3g.example.com:19879 (env OZS3_ENDPOINT)')
    .option('--cluster <name>', 'a named preset from the ozs3 config file (env OZS3_CLUSTER)')
    .option('--spn <principal>', 'service principal, HTTP@host or HTTP/host@REALM (default HTTP@<endpoint host>)')
    .option('--keytab <file>', 'log in from this keytab, in a private in-memory cache (env KRB5_CLIENT_KTNAME)')
    .option('--principal <name>', 'the client principal to use (with --keytab: which key to log in as)')
    .option('--cacert <file>', 'extra trusted CA certificates, PEM (env NODE_EXTRA_CA_CERTS)')
    .option('--insecure', 'do not verify the TLS certificate (warns)')
    .addOption(
      new Option('--timeout <seconds>', 'deadline per request, body included (default 30)').argParser(positiveNumber),
    )
    .addOption(
      new Option('--retries <n>', 'retries on connection failure and 502/503/504 (default 2)').argParser(
        integerIn(0, 10),
      ),
    )
    .option('-v, --verbose', 'trace HTTP and Kerberos steps to stderr (secrets redacted)')
    .option('--no-color', 'no colour in messages (env NO_COLOR)');
}

export interface ProgramHooks {
  deps: () => Deps;
  setExitCode: (code: number) => void;
}

export function buildProgram(hooks: ProgramHooks): Command {
  const program = new Command('ozs3')
    .description('Get and revoke Apache Ozone S3 secrets with your Kerberos login.')
    .version(VERSION, '--version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .addHelpCommand('help [command]', 'show help for a command')
    .showSuggestionAfterError(true)
    // Fixed width, so the help pre-rendered at build time is what commander would print.
    .configureHelp({ helpWidth: 80 });
  addSharedOptions(program);
  program.addHelpText(
    'after',
    `
Examples:
  kinit alice@EXAMPLE.COM
  ozs3 getsecret --endpoint https://s3g.example.com:19879
  ozs3 getsecret --write-aws --profile ozone --s3-endpoint https://s3g.example.com:9879
  eval "$(ozs3 getsecret -e)"
  ozs3 revokesecret -u bob --yes

Exit status: 0 done, 1 bug, 2 usage/not confirmed, 3 Kerberos, 4 forbidden, 5 not found,
6 already exists, 7 network, 8 unexpected response, 9 local files.`,
  );

  const run = (load: () => Promise<(opts: never, deps: Deps) => Promise<number>>) =>
    async function (this: Command) {
      const runCommand = await load();
      hooks.setExitCode(await runCommand(this.optsWithGlobals() as never, hooks.deps()));
    };

  const getsecret = new Command('getsecret')
    .alias('get-secret')
    .description('get an S3 secret (yours, or with -u another user’s as an S3 admin)')
    .option('-u, --user <name>', 'whose secret (S3 admins only; repeatable)', collect)
    .option('--users-file <file>', 'users one per line, # comments; - for stdin')
    .option('-e, --export', 'print export lines for eval')
    .option('--json', 'print JSON (NDJSON with several users)')
    .option('--write-aws', 'write the key pair into ~/.aws/credentials and ~/.aws/config (prints no secret)')
    .option('--profile <name>', 'AWS profile to write (default "default")')
    .option('--region <region>', 'region for the profile (default us-west-1 when it has none)')
    .option('--s3-endpoint <url>', 'S3 endpoint_url for the profile, e.g. https://s3g.example.com:9879')
    .addOption(
      new Option('--if-exists <mode>', 'when a secret exists: fail, skip, or rotate (revoke + get)').choices([
        'fail',
        'skip',
        'rotate',
      ]),
    )
    .addOption(
      new Option('--concurrency <n>', 'parallel requests with several users (default 4)').argParser(integerIn(1, 64)),
    )
    .action(run(async () => (await import('./commands/getsecret.js')).runGetSecret as never));
  addSharedOptions(getsecret).addHelpText(
    'after',
    `
Examples:
  ozs3 getsecret                                   # awsAccessKey=… / awsSecret=…, like ozone s3 getsecret
  eval "$(ozs3 getsecret -e)"                      # sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
  ozs3 getsecret --write-aws --profile ozone --s3-endpoint https://s3g.example.com:9879
  ozs3 getsecret --keytab svc.keytab --principal svc@EXAMPLE.COM --json
  ozs3 getsecret -u alice -u bob --json            # S3 admin: NDJSON, one line per user
  ozs3 getsecret --users-file users.txt --if-exists skip --json`,
  );

  const revokesecret = new Command('revokesecret')
    .alias('revoke-secret')
    .description('revoke an S3 secret (yours, or with -u another user’s as an S3 admin)')
    .option('-u, --user <name>', 'whose secret (S3 admins only; repeatable)', collect)
    .option('--users-file <file>', 'users one per line, # comments; - for stdin')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--write-aws', 'also remove the revoked key pair from the AWS profile')
    .option('--profile <name>', 'AWS profile to clean (default "default")')
    .addOption(
      new Option('--concurrency <n>', 'parallel requests with several users (default 4)').argParser(integerIn(1, 64)),
    )
    .action(run(async () => (await import('./commands/revokesecret.js')).runRevokeSecret as never));
  addSharedOptions(revokesecret).addHelpText(
    'after',
    `
Examples:
  ozs3 revokesecret                                # asks, then revokes your own secret
  ozs3 revokesecret -u bob --yes                   # S3 admin, no prompt (needed in scripts)
  ozs3 revokesecret --yes --write-aws --profile ozone`,
  );

  const doctor = new Command('doctor')
    .description('diagnose Kerberos, DNS, TLS and endpoint problems, one line per check with a fix')
    .option('--json', 'print the report as one JSON object')
    .action(run(async () => (await import('./commands/doctor.js')).runDoctor as never));
  addSharedOptions(doctor).addHelpText(
    'after',
    `
Checks, in order: endpoint, ticket (or keytab), krb5.conf, service principal,
dns, tcp, tls, clock, gateway, spnego, aws files. Each line starts with
ok, warn, fail or skip, then what was found; warn and fail add a "fix:" line.
The report is the command's output: it goes to stdout (--json: one JSON object
with "checks":[{"name","status","detail","fix"}] and "ok"). Nothing is created
or revoked. Each check gives up after --timeout seconds (default 5 here).

Exit status: 0 when no check failed (warnings allowed), else that of the first
failed check: 2 endpoint setting, 3 Kerberos or clock skew, 7 DNS/TCP/TLS,
8 not an Ozone secret endpoint or disabled, 9 AWS files or --cacert.

Examples:
  ozs3 doctor --endpoint https://s3g.example.com:19879
  ozs3 doctor --cluster prod --json | jq '.checks[] | select(.status != "ok")'
  ozs3 doctor --keytab svc.keytab --principal svc@EXAMPLE.COM
  ozs3 doctor --cacert ca.pem --timeout 10`,
  );

  const completion = new Command('completion')
    .description('print a shell completion script: bash or zsh')
    .argument('[shell]', 'bash or zsh')
    .action(async function (this: Command, shell: string | undefined) {
      const { runCompletion } = await import('./commands/completion.js');
      hooks.setExitCode(await runCompletion({ shell }, hooks.deps()));
    })
    .addHelpText(
      'after',
      `
Examples:
  ozs3 completion bash > ~/.local/share/bash-completion/completions/ozs3
  ozs3 completion zsh > "\${fpath[1]}/_ozs3"        # then restart zsh
  source <(ozs3 completion bash)                   # this shell only`,
    );

  for (const cmd of [getsecret, revokesecret, doctor, completion])
    program.addCommand(cmd.configureHelp({ helpWidth: 80 }));
  return program;
}
