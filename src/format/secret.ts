/** Pure formatters for getsecret's stdout. */
import type { S3Secret } from '../rest/secret-xml.js';

export type SecretFormat = 'ozone' | 'export' | 'json';

/** One user's outcome in a run. `user` is undefined for the caller's own secret. */
export interface SecretOutcome {
  user?: string | undefined;
  secret?: S3Secret | undefined;
  skipped?: boolean | undefined;
  error?: { code: string; message: string } | undefined;
}

/** POSIX single quotes: nothing inside is special to the shell, whatever the server sent. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Exactly `ozone s3 getsecret`'s two lines. */
export function formatOzone(secret: S3Secret): string {
  return `awsAccessKey=${secret.awsAccessKey}\nawsSecret=${secret.awsSecret}\n`;
}

export function formatExport(secret: S3Secret): string {
  return `export AWS_ACCESS_KEY_ID=${shellQuote(secret.awsAccessKey)}\nexport AWS_SECRET_ACCESS_KEY=${shellQuote(secret.awsSecret)}\n`;
}

/** Single-user JSON: just the two keys, as the contract shows. */
export function formatJson(secret: S3Secret): string {
  return `${JSON.stringify({ awsAccessKey: secret.awsAccessKey, awsSecret: secret.awsSecret })}\n`;
}

/** One NDJSON line per user, in input order. */
export function formatJsonLine(outcome: SecretOutcome): string {
  const line: Record<string, unknown> = { user: outcome.user ?? null };
  if (outcome.secret) {
    line.awsAccessKey = outcome.secret.awsAccessKey;
    line.awsSecret = outcome.secret.awsSecret;
  } else if (outcome.error) {
    line.error = { code: outcome.error.code, message: outcome.error.message };
  } else if (outcome.skipped) {
    line.skipped = true;
  }
  return `${JSON.stringify(line)}\n`;
}

/**
 * Several users in the default or export format: each block is labelled with a `# user: NAME`
 * comment line, which `eval` ignores. User names never hold line breaks (refused on input).
 */
export function formatLabelled(format: 'ozone' | 'export', outcome: SecretOutcome): string {
  if (!outcome.secret) return '';
  const body = format === 'export' ? formatExport(outcome.secret) : formatOzone(outcome.secret);
  return `# user: ${outcome.user ?? '(you)'}\n${body}`;
}

export function formatSecret(format: SecretFormat, secret: S3Secret): string {
  switch (format) {
    case 'export':
      return formatExport(secret);
    case 'json':
      return formatJson(secret);
    default:
      return formatOzone(secret);
  }
}
