/**
 * How getsecret and setsecret hand a secret over: stdout in the chosen format, and/or an AWS
 * profile. The AWS files are checked before any request (Ozone shows a secret once: a file ozs3
 * cannot edit must stop the run before the secret exists, not after).
 */
import { UsageError, sanitizeText } from '../errors.js';
import { OutputError } from '../io.js';
import type { ConnectionPlan } from '../plan/plan.js';
import type { Deps } from '../deps.js';
import { formatJsonLine, formatLabelled, formatSecret, shellQuote, type SecretFormat } from '../format/secret.js';
import type { S3Secret } from '../rest/secret-xml.js';
import { maskSecret, type UserResult } from './run.js';

export interface SecretOutputFlags {
  export?: boolean | undefined;
  json?: boolean | undefined;
  writeAws?: boolean | undefined;
  profile?: string | undefined;
  region?: string | undefined;
  s3Endpoint?: string | undefined;
}

export function secretFormat(flags: SecretOutputFlags): SecretFormat {
  if (flags.export && flags.json) throw new UsageError('-e/--export and --json cannot be used together');
  if (!flags.writeAws) {
    for (const [flag, value] of [
      ['--profile', flags.profile],
      ['--region', flags.region],
      ['--s3-endpoint', flags.s3Endpoint],
    ] as const) {
      if (value !== undefined) throw new UsageError(`${flag} only goes with --write-aws`);
    }
  }
  if (flags.s3Endpoint !== undefined) {
    try {
      const url = new URL(flags.s3Endpoint);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    } catch {
      throw new UsageError(`invalid --s3-endpoint '${sanitizeText(flags.s3Endpoint)}': expected an http(s) URL`);
    }
  }
  return flags.json ? 'json' : flags.export ? 'export' : 'ozone';
}

/** Whether the run prints secrets on stdout (not only into an AWS profile). */
export function printsSecrets(flags: SecretOutputFlags): boolean {
  return !flags.writeAws || Boolean(flags.export) || Boolean(flags.json);
}

/**
 * stdout closed or /dev/null: every secret printed there is lost for good. Refuse before anything
 * is requested.
 */
function refuseDiscardedStdout(flags: SecretOutputFlags, deps: Deps): void {
  const where = deps.io.stdoutDiscarded;
  if (!where || !printsSecrets(flags)) return;
  throw new UsageError(
    `stdout is ${where === 'closed' ? 'closed' : '/dev/null'}: the secret would be lost (Ozone shows a secret only once); nothing was requested`,
    { hint: 'send stdout to a file or a pipe, or use --write-aws --profile NAME' },
  );
}

export interface SecretOutput {
  deliver(result: UserResult): Promise<void>;
  /** Throws what went wrong with the AWS files after the secret was handed over on stdout instead. */
  finish(): void;
}

export interface AwsWriteSettings {
  profile?: string | undefined;
  region?: string | undefined;
  s3Endpoint?: string | undefined;
}

/**
 * Checks everything about the output before any request: stdout can take a secret, the AWS files
 * can be edited. The profile's region and endpoint_url fall back to the plan's (preset, ozone-site.xml).
 */
export async function createSecretOutput(
  flags: SecretOutputFlags,
  plan: Pick<ConnectionPlan, 'region' | 's3Endpoint'>,
  batch: boolean,
  deps: Deps,
): Promise<SecretOutput> {
  const format = secretFormat(flags);
  refuseDiscardedStdout(flags, deps);
  const aws: AwsWriteSettings = {
    profile: flags.profile,
    region: flags.region ?? plan.region?.value,
    s3Endpoint: flags.s3Endpoint ?? plan.s3Endpoint?.value,
  };
  const writer = flags.writeAws ? await prepareAwsWrite(aws, deps) : undefined;
  const prints = printsSecrets(flags);
  let laterError: Error | undefined;
  return {
    async deliver(result) {
      if (batch) {
        if (result.secret) maskSecret(result.secret, deps);
        deps.io.out(format === 'json' ? formatJsonLine(result) : formatLabelled(format, result));
        return;
      }
      if (!result.secret) {
        if (format === 'json' && result.skipped) deps.io.out(formatJsonLine(result));
        return;
      }
      maskSecret(result.secret, deps);
      let saved = false;
      if (writer) {
        try {
          await writer.write(result.secret);
          saved = true;
        } catch (error) {
          laterError = error instanceof Error ? error : new Error(String(error));
          // The secret exists now and Ozone will not show it again: hand it over rather than lose it.
          if (!prints) {
            deps.io.err('ozs3: could not write the AWS files; the new secret follows on stdout so it is not lost\n');
            deps.io.out(formatSecret('ozone', result.secret));
          }
        }
      }
      if (!prints) return;
      try {
        deps.io.out(formatSecret(format, result.secret));
      } catch (error) {
        // Safe in the profile: the failed print is an error, not a lost secret.
        if (!saved || !(error instanceof OutputError)) throw error;
        deps.io.err(`ozs3: the secret is in profile '${aws.profile ?? 'default'}', but printing it failed\n`);
        laterError ??= error;
      }
    },
    finish() {
      if (laterError) throw laterError;
    },
  };
}

async function prepareAwsWrite(aws: AwsWriteSettings, deps: Deps): Promise<{ write(secret: S3Secret): Promise<void> }> {
  const { resolveAwsPaths, writeAwsProfile, checkAwsProfileWritable } = await import('../aws/write-profile.js');
  const paths = resolveAwsPaths(deps.env, deps.homedir);
  const profile = aws.profile ?? 'default';
  const base = { profile, region: aws.region, s3Endpoint: aws.s3Endpoint, paths };
  await checkAwsProfileWritable(base);
  return {
    async write(secret) {
      const result = await writeAwsProfile({ ...base, accessKey: secret.awsAccessKey, secret: secret.awsSecret });
      for (const notice of result.notices) deps.io.err(`ozs3: ${notice}\n`);
      deps.io.err(`ozs3: wrote profile '${profile}' to ${paths.credentials} and ${paths.config}\n`);
    },
  };
}

/** The command that gets a lost secret back: revoke the lost one and get a new one. */
export function rotateCommand(command: 'getsecret', user: string | undefined): string {
  return `ozs3 ${command}${user === undefined ? '' : ` -u ${shellQuote(user)}`} --if-exists rotate`;
}
