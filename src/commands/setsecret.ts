/** `ozs3 setsecret`: set an S3 secret of the user's choice, as `ozone s3 setsecret` does (OM RPC only). */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LocalFileError, UsageError } from '../errors.js';
import type { Deps } from '../deps.js';
import { loadPlan } from '../plan/load.js';
import type { ConnectionFlags } from '../plan/plan.js';
import { openSecretService } from '../service/open.js';
import { resolveUsers } from '../batch/users.js';
import { runBatch } from '../batch/run.js';
import { createSecretOutput, secretFormat, type SecretOutputFlags } from '../batch/secret-output.js';
import { shellQuote } from '../format/secret.js';

export interface SetSecretOptions extends ConnectionFlags, SecretOutputFlags {
  user?: string[] | undefined;
  secret?: string | undefined;
  secretFile?: string | undefined;
}

/** Ozone's OMSetSecretRequest refuses shorter ones (INVALID_REQUEST). */
export const MIN_SECRET_LENGTH = 8;

async function readSecret(opts: SetSecretOptions, deps: Deps): Promise<string> {
  if (opts.secret !== undefined && opts.secretFile !== undefined) {
    throw new UsageError('give the new secret once: -s/--secret or --secret-file');
  }
  let secret: string;
  let from: string;
  if (opts.secret !== undefined) {
    secret = opts.secret;
    from = '--secret';
  } else if (opts.secretFile !== undefined) {
    from = opts.secretFile === '-' ? 'stdin' : opts.secretFile;
    let text: string;
    try {
      text =
        opts.secretFile === '-'
          ? await deps.io.readStdin()
          : await readFile(resolve(deps.cwd, opts.secretFile), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new LocalFileError('SECRET_FILE_UNREADABLE', `cannot read --secret-file ${from} (${code})`, {
        cause: error,
      });
    }
    // The first line, as `read` would take it: a file saved by an editor ends in a newline.
    secret = text.split(/\r?\n/)[0] ?? '';
  } else {
    throw new UsageError('setsecret needs the new secret: -s/--secret SECRET or --secret-file FILE|-', {
      hint: 'printf \'%s\' "$SECRET" | ozs3 setsecret --secret-file -   (keeps it out of the process list)',
    });
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new UsageError(
      `the new secret (${from}) has ${secret.length} characters; Ozone wants at least ${MIN_SECRET_LENGTH}`,
    );
  }
  // eslint-disable-next-line no-control-regex -- control characters would break every output format
  if (/[\u0000-\u001f\u007f-\u009f]/.test(secret)) {
    throw new UsageError(`the new secret (${from}) holds a control character`);
  }
  return secret;
}

/** How to reach the OM instead of the gateway the plan chose, from where that choice came. */
function towardsOm(chosenFrom: string): string {
  const om = 'name the OM with --om HOST[:PORT] or --om-service-id ID';
  if (chosenFrom === 'OZS3_ENDPOINT') return `${om} (a flag beats OZS3_ENDPOINT), or unset OZS3_ENDPOINT`;
  if (chosenFrom === '--endpoint') return `drop --endpoint and ${om}`;
  if (chosenFrom.includes('[cluster ')) return `${om}, or add om = HOST:PORT to the preset (${chosenFrom})`;
  return `${om}; the plan chose the gateway from ${chosenFrom}`;
}

export async function runSetSecret(opts: SetSecretOptions, deps: Deps): Promise<number> {
  secretFormat(opts);
  const plan = await loadPlan(opts, deps);
  if (plan.target.transport !== 'om') {
    throw new UsageError('setsecret needs the OzoneManager RPC: the S3 Gateway has no request to set a secret', {
      hint: towardsOm(plan.transport.from),
    });
  }
  const users = await resolveUsers(opts.user, undefined, deps);
  if (users.length > 1) throw new UsageError('setsecret sets one secret: name at most one user');
  const secret = await readSecret(opts, deps);
  const output = await createSecretOutput(opts, plan, false, deps);
  const service = await openSecretService(plan, deps, { connections: 1 });
  try {
    const outcome = await runBatch(
      {
        users: [users[0]],
        concurrency: 1,
        ordered: true,
        effect: 'set',
        showProgress: false,
        work: async (user) => ({ user, secret: await service.setSecret(user, secret), known: true }),
        deliver: (result) => output.deliver(result),
        recovery: (user) => `ozs3 setsecret${user === undefined ? '' : ` -u ${shellQuote(user)}`} --secret-file FILE`,
      },
      deps,
    );
    const single = outcome.results[0];
    if (single?.error && outcome.exitCode === single.error.exitCode) throw single.error;
    output.finish();
    return outcome.exitCode;
  } finally {
    await service.close();
  }
}
