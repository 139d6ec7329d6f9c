/**
 * Commander wiring: the root, the shared options, the commands. Actions only hand off to lazily
 * imported `runX(opts, deps)` functions, so `--help` loads neither Kerberos nor the HTTP stack.
 * Options are read into typed objects here (options.ts), at the one flags → options boundary.
 */
import { Command, Help, InvalidArgumentError, Option } from 'commander';
import { renderHelpSections, wrapWords, type HelpSection } from './help-text.js';
import type { Deps } from './deps.js';
import { readDoctorOptions, readGetSecretOptions, readRevokeSecretOptions, readSetSecretOptions } from './options.js';

export const VERSION = '0.1.0';

/** The width help is pre-rendered at (dist/help.json); narrower terminals get it rendered live. */
export const HELP_WIDTH = 80;

/** Below this many columns for descriptions, they go under their flags instead of beside them. */
const NARROW_COLUMN = 30;

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 3600) {
    throw new InvalidArgumentError('expected a number of seconds, more than 0 and at most 3600.');
  }
  return n;
}

function integerIn(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

/** The profile names ozs3's AWS file editor accepts (docs/aws-files.md), checked before anything runs. */
function profileName(value: string): string {
  if (!/^[A-Za-z0-9_\-@+.%:/]+$/.test(value)) {
    throw new InvalidArgumentError('a profile name holds only letters, digits and _ - @ + . % : /');
  }
  return value;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Options every command takes. They work before or after the command name. */
function addSharedOptions(cmd: Command, timeoutHelp = 'deadline per request, body included (default 30)'): Command {
  return cmd
    .option('--endpoint <url>', 'S3 Gateway secret endpoint, e.g. https://s3g.example.com:19879 (env OZS3_ENDPOINT)')
    .option('--om <host[:port]>', 'talk to this OzoneManager over Hadoop RPC instead (default port 9862)')
    .option('--om-service-id <id>', 'an OzoneManager HA service from ozone-site.xml ($OZONE_CONF_DIR)')
    .option('--cluster <name>', 'a named preset from the ozs3 config file (env OZS3_CLUSTER)')
    .option('--spn <principal>', 'service principal, HTTP/host@REALM (REST) or om/host@REALM (OM)')
    .option('--keytab <file>', 'log in from this keytab, in a private in-memory cache (env KRB5_CLIENT_KTNAME)')
    .option('--principal <name>', 'the client principal to use (with --keytab: which key to log in as)')
    .option('--cacert <file>', 'extra trusted CA certificates, PEM (env NODE_EXTRA_CA_CERTS)')
    .option('--insecure', 'do not verify the TLS certificate (warns)')
    .addOption(new Option('--timeout <seconds>', timeoutHelp).argParser(seconds))
    .addOption(
      new Option('--retries <n>', 'retries on connection failure and 502/503/504 (default 2)').argParser(
        integerIn(0, 10),
      ),
    )
    .option('--no-mutual-auth', 'accept a gateway answer without a mutual-authentication token (unsafe)')
    .option('-v, --verbose', 'trace HTTP and Kerberos steps to stderr (secrets redacted)')
    .option('--no-color', 'no colour in messages (env NO_COLOR)');
}

function addUserOptions(cmd: Command, many: boolean): Command {
  cmd.option('-u, --user <name>', `whose secret (S3 admins only${many ? '; repeatable' : ''})`, collect);
  if (many) cmd.option('--users-file <file>', 'users one per line, # comments; - for stdin');
  return cmd;
}

function addAwsOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--write-aws', what)
    .addOption(new Option('--profile <name>', 'AWS profile (default "default")').argParser(profileName));
}

export interface ProgramHooks {
  deps: () => Deps;
  setExitCode: (code: number) => void;
  /** Help width: HELP_WIDTH when pre-rendering; the terminal's width when rendering live. */
  helpWidth?: number | undefined;
}

export function buildProgram(hooks: ProgramHooks): Command {
  const helpWidth = hooks.helpWidth ?? HELP_WIDTH;
  const program = new Command('ozs3')
    .description('Get and revoke Apache Ozone S3 secrets with your Kerberos login.')
    .version(VERSION, '--version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand(false)
    .showSuggestionAfterError(true)
    .configureHelp(helpLayout(helpWidth));
  addSharedOptions(program);
  after(program, [
    {
      title: 'Examples',
      examples: [
        [undefined, 'kinit alice@EXAMPLE.COM'],
        [undefined, 'ozs3 getsecret --endpoint https://s3g.example.com:19879'],
        ['any user, Ozone 2.x: ask the OzoneManager', 'ozs3 getsecret --om om.example.com'],
        [undefined, 'ozs3 getsecret --write-aws --profile ozone --s3-endpoint https://s3g.example.com:9879'],
        [undefined, 'eval "$(ozs3 getsecret -e)"'],
        [undefined, 'ozs3 revokesecret -u bob --yes'],
      ],
    },
    {
      prose: [
        'Exit status: 0 done, 1 bug, 2 usage/not confirmed, 3 Kerberos, 4 forbidden, 5 not found, 6 already exists, 7 network, 8 unexpected response, 9 local files or stdout, 129/130/143 interrupted (SIGHUP/SIGINT/SIGTERM).',
      ],
    },
  ]);

  const hand = <T>(read: (cmd: Command) => T, load: () => Promise<(opts: T, deps: Deps) => Promise<number>>) =>
    async function (this: Command) {
      const opts = read(this);
      const runCommand = await load();
      hooks.setExitCode(await runCommand(opts, hooks.deps()));
    };

  const getsecret = new Command('getsecret')
    .alias('get-secret')
    .description('get an S3 secret (yours, or with -u another user’s as an S3 admin)');
  addUserOptions(getsecret, true)
    .option('-e, --export', 'print export lines for eval')
    .option('--json', 'print JSON (NDJSON with several users)');
  addAwsOptions(getsecret, 'write the key pair into ~/.aws/credentials and ~/.aws/config (prints no secret)')
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
    .action(hand(readGetSecretOptions, async () => (await import('./commands/getsecret.js')).runGetSecret));
  addSharedOptions(getsecret);
  after(getsecret, [
    {
      title: 'Examples',
      examples: [
        ['awsAccessKey=… / awsSecret=…, like ozone s3 getsecret', 'ozs3 getsecret'],
        ['sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY', 'eval "$(ozs3 getsecret -e)"'],
        [undefined, 'ozs3 getsecret --write-aws --profile ozone --s3-endpoint https://s3g.example.com:9879'],
        [undefined, 'ozs3 getsecret --keytab svc.keytab --principal svc@EXAMPLE.COM --json'],
        ['S3 admin: NDJSON, one line per user', 'ozs3 getsecret -u alice -u bob --json'],
        [undefined, 'ozs3 getsecret --users-file users.txt --if-exists skip --json'],
      ],
    },
  ]);

  const revokesecret = new Command('revokesecret')
    .alias('revoke-secret')
    .description('revoke an S3 secret (yours, or with -u another user’s as an S3 admin)');
  addUserOptions(revokesecret, true).option('-y, --yes', 'do not ask for confirmation (required without a terminal)');
  addAwsOptions(revokesecret, 'also remove the revoked key pair from the AWS profile')
    .addOption(
      new Option('--concurrency <n>', 'parallel requests with several users (default 4)').argParser(integerIn(1, 64)),
    )
    .action(hand(readRevokeSecretOptions, async () => (await import('./commands/revokesecret.js')).runRevokeSecret));
  addSharedOptions(revokesecret);
  after(revokesecret, [
    {
      title: 'Examples',
      examples: [
        ['asks, then revokes your own secret', 'ozs3 revokesecret'],
        ['S3 admin, no prompt (needed in scripts)', 'ozs3 revokesecret -u bob --yes'],
        [undefined, 'ozs3 revokesecret --yes --write-aws --profile ozone'],
      ],
    },
  ]);

  const setsecret = new Command('setsecret')
    .alias('set-secret')
    .description('set an S3 secret of your choice (OzoneManager RPC only; a secret must exist)');
  addUserOptions(setsecret, false)
    .option('-s, --secret <secret>', 'the new secret, at least 8 characters (visible to other users in ps)')
    .option('--secret-file <file>', 'read the new secret from a file, or - for stdin (first line)')
    .option('-e, --export', 'print export lines for eval')
    .option('--json', 'print JSON');
  addAwsOptions(setsecret, 'write the key pair into ~/.aws/credentials and ~/.aws/config (prints no secret)')
    .option('--region <region>', 'region for the profile (default us-west-1 when it has none)')
    .option('--s3-endpoint <url>', 'S3 endpoint_url for the profile, e.g. https://s3g.example.com:9879')
    .action(hand(readSetSecretOptions, async () => (await import('./commands/setsecret.js')).runSetSecret));
  addSharedOptions(setsecret);
  after(setsecret, [
    {
      prose: [
        'Ozone sets a secret only where one exists (get one first) and wants at least 8 characters. Only the OzoneManager RPC can set one: name it with --om or --om-service-id, or let ozone-site.xml ($OZONE_CONF_DIR) name it.',
      ],
    },
    {
      title: 'Examples',
      examples: [
        [undefined, 'ozs3 setsecret --om om.example.com --secret-file ~/new-secret'],
        [
          'the secret never shows in the process list',
          'printf \'%s\' "$NEW" | ozs3 setsecret --om-service-id prod --secret-file -',
        ],
        ['S3 admin', "ozs3 setsecret -u bob -s 'a-long-secret' --om om.example.com"],
      ],
    },
  ]);

  const doctor = new Command('doctor')
    .description('diagnose Kerberos, DNS, TLS and endpoint problems, one line per check with a fix')
    .option('--json', 'print the report as one JSON object')
    .action(hand(readDoctorOptions, async () => (await import('./commands/doctor.js')).runDoctor));
  addSharedOptions(doctor, 'deadline per check (default 5)');
  after(doctor, [
    {
      prose: [
        'First the plan: every setting a command would use and where it came from. Then the checks, in order. REST: ticket (or keytab), client name, krb5.conf, service principal, service ticket (encryption types, token size), dns, tcp, tls, clock, gateway, spnego, admin rule (not checkable without creating a secret: always skip), aws files. OM RPC: ticket (or keytab), client name, krb5.conf, then for each OM: dns, tcp, sasl; service ticket, aws files.',
        'Each line starts with ok, warn, fail or skip, then what was found; warn and fail add a "fix:" line. The report is the command\'s output: it goes to stdout (--json: one JSON object with "plan", "checks" and "ok"). Nothing is created or revoked. Each check gives up after --timeout seconds (default 5).',
        'Exit status: 0 when no check failed (warnings allowed), else that of the first failed check: 2 settings, 3 Kerberos or clock skew, 7 DNS/TCP/TLS, 8 not an Ozone secret endpoint (or not Hadoop RPC) or disabled, 9 AWS files or --cacert.',
      ],
    },
    {
      title: 'Examples',
      examples: [
        [undefined, 'ozs3 doctor --endpoint https://s3g.example.com:19879'],
        [undefined, 'ozs3 doctor --om-service-id prod'],
        [undefined, 'ozs3 doctor --cluster prod --json | jq \'.checks[] | select(.status != "ok")\''],
        [undefined, 'ozs3 doctor --keytab svc.keytab --principal svc@EXAMPLE.COM'],
      ],
    },
  ]);

  const completion = new Command('completion')
    .description('print a shell completion script: bash or zsh')
    .argument('<shell>', 'bash or zsh')
    .action(async (shell: string) => {
      const { runCompletion } = await import('./commands/completion.js');
      hooks.setExitCode(runCompletion({ shell, program }, hooks.deps()));
    });

  after(completion, [
    {
      title: 'Examples',
      examples: [
        [undefined, 'ozs3 completion bash > ~/.local/share/bash-completion/completions/ozs3'],
        ['then restart zsh', 'ozs3 completion zsh > "${fpath[1]}/_ozs3"'],
        ['this shell only', 'source <(ozs3 completion bash)'],
      ],
    },
  ]);

  const help = new Command('help')
    .description('show help for a command')
    .argument('[command]', 'a command')
    .action((name: string | undefined) => {
      const target = findCommand(program, name);
      if (target === undefined) {
        const known = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
        const near = suggest(name!, known);
        program.error(`unknown command '${name}'${near ? ` (did you mean ${near}?)` : ''}`, {
          code: 'ozs3.unknownHelpTopic',
          exitCode: 2,
        });
      }
      target!.outputHelp();
    });

  for (const cmd of [getsecret, revokesecret, setsecret, doctor, completion, help]) {
    cmd.helpOption('-h, --help', 'show help').configureHelp(helpLayout(helpWidth));
    program.addCommand(cmd);
  }
  return program;

  function after(cmd: Command, sections: HelpSection[]): void {
    cmd.addHelpText('after', () => renderHelpSections(sections, helpWidth));
  }
}

/** Options, descriptions below their flags when the terminal is too narrow for two columns. */
function helpLayout(helpWidth: number): Partial<Help> {
  return {
    helpWidth,
    formatItem(term, termWidth, description, helper) {
      if (!description || helpWidth - termWidth - 4 >= NARROW_COLUMN) {
        return Help.prototype.formatItem.call(helper, term, termWidth, description, helper);
      }
      const indent = '      ';
      return [`  ${term}`, ...wrapWords(description, helpWidth - indent.length).map((l) => indent + l)].join('\n');
    },
  };
}

/** `help`, `help help` → the root; `help CMD` → CMD (aliases too); undefined for an unknown name. */
function findCommand(program: Command, name: string | undefined): Command | undefined {
  if (name === undefined || name === 'help') return program;
  return program.commands.find((c) => c.name() === name || c.aliases().includes(name));
}

/** The closest known name within two edits, as commander suggests for unknown commands. */
export function suggest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Damerau–Levenshtein (optimal string alignment): a swap of two letters is one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
