/**
 * One error hierarchy. Every error ozs3 reports has a stable `code`, an `exitCode` from the table in
 * docs/cli.md, a one-line message and an optional one-line hint. `main.ts` prints them once.
 */

export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  auth: 3,
  forbidden: 4,
  notFound: 5,
  alreadyExists: 6,
  network: 7,
  response: 8,
  localFiles: 9,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  hint?: string | undefined;
  cause?: unknown;
}

export abstract class Ozs3Error extends Error {
  abstract readonly exitCode: ExitCodeValue;
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = details.hint;
  }
}

/** Exit 2: bad flags or arguments, or nothing done because the user did not confirm. */
export class UsageError extends Ozs3Error {
  readonly exitCode = ExitCode.usage;
  constructor(message: string, details?: ErrorDetails, code = 'USAGE') {
    super(code, message, details);
  }
}

/** Exit 3: no ticket, expired, KDC unreachable, token rejected, mutual authentication failed. */
export class AuthError extends Ozs3Error {
  readonly exitCode = ExitCode.auth;
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, details);
  }
}

/** Exit 4: HTTP 403 — the caller is not an S3 administrator. */
export class ForbiddenError extends Ozs3Error {
  readonly exitCode = ExitCode.forbidden;
  constructor(message: string, details?: ErrorDetails) {
    super('FORBIDDEN', message, details);
  }
}

/** Exit 5: the server said S3_SECRET_NOT_FOUND. */
export class SecretNotFoundError extends Ozs3Error {
  readonly exitCode = ExitCode.notFound;
  constructor(message: string, details?: ErrorDetails) {
    super('S3_SECRET_NOT_FOUND', message, details);
  }
}

/** Exit 6: the server said S3_SECRET_ALREADY_EXISTS. */
export class SecretExistsError extends Ozs3Error {
  readonly exitCode = ExitCode.alreadyExists;
  constructor(message: string, details?: ErrorDetails) {
    super('S3_SECRET_ALREADY_EXISTS', message, details);
  }
}

/** Exit 7: refused, DNS, TLS, timeout, reset. */
export class NetworkError extends Ozs3Error {
  readonly exitCode = ExitCode.network;
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, details);
  }
}

/** Exit 8: 5xx, endpoint disabled, redirect, malformed or oversized body, unknown status. */
export class ResponseError extends Ozs3Error {
  readonly exitCode = ExitCode.response;
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, details);
  }
}

/** Exit 9: AWS files unreadable, unwritable or ambiguous. */
export class LocalFileError extends Ozs3Error {
  readonly exitCode = ExitCode.localFiles;
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, details);
  }
}

/** Strip control characters and escape sequences from text that came from outside (server, files). */
export function sanitizeText(text: string, max = 300): string {
  /* eslint-disable no-control-regex -- escape sequences and control characters are what this strips */
  const cleaned = text
    // CSI / OSC / other ESC sequences first, so their printable tails do not survive
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]/g, '')
    .replace(/\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?/g, '')
    .replace(/\u001b[@-_]?/g, '')
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  /* eslint-enable no-control-regex */
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned;
}
