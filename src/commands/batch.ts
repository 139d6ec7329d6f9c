/** Shared pieces of multi-user runs: progress, per-user failures, the exit code, CI log masking. */
import { ExitCode, sanitizeText } from '../errors.js';
import type { Deps } from '../deps.js';
import type { S3Secret } from '../ozone/response.js';
import type { SecretOutcome } from '../format/secret.js';

export function createProgress(deps: Deps, total: number) {
  let done = 0;
  const show = deps.io.stderrIsTTY && total > 1;
  return {
    tick() {
      done++;
      if (show) deps.io.err(`\r${done}/${total} done`);
    },
    done() {
      if (show) deps.io.err('\r\u001b[2K');
    },
  };
}

export function reportFailure(deps: Deps, user: string | undefined, error: { message: string }): void {
  deps.io.err(`ozs3: ${user === undefined ? '' : `${sanitizeText(user)}: `}${error.message}\n`);
}

/** 0 when all succeeded, else the exit code of the first failure in input order. */
export function firstFailureCode(outcomes: readonly SecretOutcome[]): number {
  for (const outcome of outcomes) {
    const error = outcome.error as { exitCode?: number } | undefined;
    if (error) return error.exitCode ?? ExitCode.internal;
  }
  return ExitCode.ok;
}

/** On GitHub Actions, register the secret as a mask (on stderr, which reaches the runner even when stdout is captured). */
export function maskSecret(secret: S3Secret, deps: Deps): void {
  if (deps.env.GITHUB_ACTIONS === 'true') deps.io.err(`::add-mask::${secret.awsSecret}\n`);
}
