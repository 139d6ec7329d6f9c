/**
 * What the OM's answers mean: OMResponse statuses (OmClientProtocol.proto; Ozone's S3GetSecretRequest,
 * S3RevokeSecretRequest, OMSetSecretRequest, S3SecretRequestHelper) and Hadoop RPC exceptions
 * (RpcResponseHeaderProto ERROR/FATAL: exception class + message) turned into Ozs3Errors.
 */
import { explainAcceptorFailure, rc4Fix, withNameCase } from '../auth/causes.js';
import { isFieldSet } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import {
  AuthError,
  ForbiddenError,
  type Ozs3Error,
  ResponseError,
  SecretExistsError,
  SecretNotFoundError,
  UsageError,
  sanitizeText,
} from '../errors.js';
import type { S3Secret } from '../service/secret-service.js';
import { OMResponseSchema, Status, Type, type OMResponse } from './gen/OmClientProtocol_pb.js';

export const NOT_LEADER = 'org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException';
export const LEADER_NOT_READY = 'org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException';
const RETRIABLE = new Set(['org.apache.hadoop.ipc.RetriableException', 'org.apache.hadoop.ipc.StandbyException']);

/** An ERROR or FATAL answer: the server's exception class and its message's first line. */
export class OmRemoteError extends ResponseError {
  constructor(
    readonly exceptionClass: string,
    readonly remoteMessage: string,
    readonly fatal: boolean,
    readonly address: string,
  ) {
    super(
      'OM_REMOTE_EXCEPTION',
      `the OM at ${address} failed: ${simpleName(exceptionClass)}: ${firstLine(remoteMessage)}`,
      {
        hint: 'run with --verbose for the exchange; the OM log has the stack trace',
      },
    );
  }

  get notLeader(): boolean {
    return this.exceptionClass === NOT_LEADER;
  }

  /** The OM asks to be asked again later (a new leader applying its log, a busy server). */
  get retrySameNode(): boolean {
    return this.exceptionClass === LEADER_NOT_READY || RETRIABLE.has(this.exceptionClass);
  }
}

function simpleName(className: string): string {
  return sanitizeText(className.slice(className.lastIndexOf('.') + 1) || className, 100);
}

/** Hadoop puts the message first and often a stack trace after it. */
export function firstLine(text: string): string {
  return sanitizeText(text.split(/\r?\n/)[0] ?? '', 240);
}

/** The node id in "OM:om1 is not the leader. Suggested leader is OM:om2[host/ip]." (OMNotLeaderException). */
export function suggestedLeader(message: string): string | undefined {
  return /Suggested leader is OM:([^\s[\]]+)/.exec(message)?.[1];
}

/** A failure during SASL (FATAL with SaslException, AccessControlException …) as an AuthError with the fix. */
export function saslFailure(error: OmRemoteError, principal: string): AuthError {
  const text = error.remoteMessage;
  const said = firstLine(text);
  const cause = { cause: error };
  // The same causes, in the same words, as the gateway's (src/auth/causes.ts); "GSS initiate failed"
  // alone (Hadoop keeps the cause in its log) is handled below.
  const known = explainAcceptorFailure({ text: said, who: 'the OM', principal });
  if (known && known.code !== 'KRB_REPLAY')
    return new AuthError(known.code, known.message, { ...cause, hint: known.hint });
  if (/replay/i.test(text)) {
    return new AuthError('OM_REPLAY', `the OM took the Kerberos authenticator for a replay (${said})`, {
      ...cause,
      hint: 'try again; if it persists, check that the clocks agree',
    });
  }
  if (/unsupported protection|No common protection layer|Problem with callback handler/i.test(text)) {
    return new AuthError('OM_PROTECTION_MISMATCH', `the OM refused the SASL security layer ozs3 chose (${said})`, {
      ...cause,
      hint: "set hadoop.rpc.protection to the OM's value (authentication, integrity or privacy)",
    });
  }
  if (
    // Hadoop's server sends only "GSS initiate failed" (the GSSException cause stays in its log);
    // when a cause is there it is one of these, all meaning the OM's key is not the ticket's.
    /GSS initiate failed|Checksum failed|Specified version of key is not available|Cannot find key of appropriate type|Integrity check on decrypted field failed|key version/i.test(
      text,
    )
  ) {
    return new AuthError(
      'OM_CANNOT_VERIFY',
      `the OM could not verify your Kerberos ticket for ${principal} (${said})`,
      { ...cause, hint: cannotVerifyHint(principal, true) },
    );
  }
  if (/not authorized|Unauthorized connection|AuthorizationException/i.test(`${error.exceptionClass} ${text}`)) {
    return new AuthError('OM_NOT_AUTHORIZED', `the OM does not allow your principal to connect (${said})`, {
      ...cause,
      hint: 'ask an Ozone admin to check security.client.protocol.acl and your principal',
    });
  }
  return new AuthError(
    'OM_SASL_FAILED',
    `the OM rejected the Kerberos (SASL) handshake: ${simpleName(error.exceptionClass)}: ${said}`,
    {
      ...cause,
      hint: `check the OM principal (${principal}, ozone.om.kerberos.principal) and your ticket (klist); --verbose shows the exchange`,
    },
  );
}

/**
 * What can make an OM refuse a ticket with only "GSS initiate failed", most likely first. The
 * ticket's RC4 is named only while its types are unknown (see withTicketTypes).
 */
function cannotVerifyHint(principal: string, rc4Possible: boolean): string {
  return (
    `the OM's log has the cause; usually its keytab lacks the KDC's current key (compare kvno ${principal} with klist -kt on the OM), ` +
    `or its clock is more than 5 min off this machine's (NTP)` +
    (rc4Possible ? '; ozs3 doctor shows whether your ticket is RC4, which JDK 17+ OMs refuse' : '')
  );
}

/**
 * An OM_CANNOT_VERIFY told apart by what this side can see: the service ticket GSSAPI just stored
 * in the user's cache (`klist -e`; a keytab login's cache is in memory, out of klist's reach). An
 * RC4 ticket is what a JDK 17+ OM refuses; an AES one rules that out of the hint.
 */
export async function withTicketTypes(error: Ozs3Error, principal: string, env: NodeJS.ProcessEnv): Promise<Ozs3Error> {
  if (error.code !== 'OM_CANNOT_VERIFY') return error;
  const { findServiceTicket, isRc4, parseKlist, runTool } = await import('../auth/klist.js');
  const listed = await runTool('klist', ['-e'], env, 2_000);
  if (listed.code !== 0) return error;
  const ticket = findServiceTicket(parseKlist(listed.stdout), principal);
  if (!ticket?.ticketType) return error;
  if (isRc4(ticket)) {
    const said = error.cause instanceof OmRemoteError ? ` (the OM said: ${firstLine(error.cause.remoteMessage)})` : '';
    return new AuthError(
      'KRB_RC4_REFUSED',
      `the OM refused your ticket for ${ticket.server}, an RC4 ticket (${ticket.ticketType}), which JDK 17 and later turn off${said}`,
      { cause: error.cause, hint: rc4Fix(ticket.server) },
    );
  }
  return new AuthError('OM_CANNOT_VERIFY', error.message, {
    cause: error.cause,
    hint: cannotVerifyHint(ticket.server, false),
  });
}

const WHAT: Record<Operation, string> = { get: 'get', revoke: 'revoke', set: 'set' };
export type Operation = 'get' | 'revoke' | 'set';
export const COMMAND_TYPE: Record<Operation, Type> = {
  get: Type.GetS3Secret,
  revoke: Type.RevokeS3Secret,
  set: Type.SetS3Secret,
};

/** The status number when the OM sent one this schema does not know (a newer OM). */
function unknownStatus(response: OMResponse): number | undefined {
  const field = response.$unknown?.find((u) => u.no === OMResponseSchema.field.status.number);
  return field ? new BinaryReader(field.data).uint32() : undefined;
}

/**
 * An OMResponse judged as proto2 demands: `status` present (an unknown value reads as OK), OK,
 * `success` not false, the expected payload present. Returns the secret for get and set.
 */
export function interpretResponse(
  op: Operation,
  accessId: string,
  response: OMResponse,
  /** The principal the OM authenticated (for a refusal's hint). */
  caller?: string,
): S3Secret | undefined {
  const who = `'${sanitizeText(accessId)}'`;
  if (!isFieldSet(response, OMResponseSchema.field.status)) {
    const code = unknownStatus(response);
    throw new ResponseError(
      'OM_UNKNOWN_STATUS',
      code === undefined
        ? 'the OM answered without a status'
        : `the OM answered with status ${code}, which ozs3 does not know`,
      { hint: code === undefined ? undefined : 'a newer Ozone than ozs3 knows; --verbose shows the exchange' },
    );
  }
  if (isFieldSet(response, OMResponseSchema.field.cmdType) && response.cmdType !== COMMAND_TYPE[op]) {
    throw new ResponseError(
      'OM_WRONG_ANSWER',
      `the OM answered a ${WHAT[op]} request with a ${Type[response.cmdType] ?? response.cmdType} response`,
    );
  }
  const message = firstLine(response.message);
  const said = message ? ` (${message})` : '';
  switch (response.status) {
    case Status.OK:
      break;
    case Status.S3_SECRET_ALREADY_EXISTS:
      throw new SecretExistsError(
        `S3_SECRET_ALREADY_EXISTS: ${who} already has an S3 secret, and Ozone shows a secret only once`,
        {
          hint: 'revoke it first (ozs3 revokesecret) or use --if-exists rotate',
        },
      );
    case Status.S3_SECRET_NOT_FOUND:
      throw new SecretNotFoundError(
        `S3_SECRET_NOT_FOUND: ${who} has no S3 secret to ${op === 'revoke' ? 'revoke' : 'read'}`,
      );
    case Status.ACCESS_ID_NOT_FOUND:
      throw new SecretNotFoundError(
        `ACCESS_ID_NOT_FOUND: ${who} has no S3 secret to ${op === 'set' ? 'replace' : 'read'}`,
        {
          hint:
            op === 'set' ? 'setsecret replaces an existing secret: create one first with ozs3 getsecret' : undefined,
        },
      );
    case Status.USER_MISMATCH:
    case Status.PERMISSION_DENIED:
    case Status.ACCESS_DENIED:
      throw new ForbiddenError(
        `forbidden: the OM refused to ${WHAT[op]} the S3 secret of ${who} for you (${Status[response.status]})`,
        {
          hint: withNameCase(
            'only the owner of an access id and users in ozone.s3.administrators may manage its secret',
            caller,
          ),
        },
      );
    case Status.INVALID_REQUEST:
      throw new UsageError(
        `the OM refused the request as invalid${said}`,
        {
          hint: op === 'set' ? 'a secret must have at least 8 characters' : undefined,
        },
        'OM_INVALID_REQUEST',
      );
    default:
      throw new ResponseError(
        `OM_${Status[response.status] ?? response.status}`,
        `the OM failed: ${Status[response.status] ?? response.status}${said}`,
      );
  }
  // Revoke of an absent secret is S3_SECRET_NOT_FOUND with success=true: status decides, then success.
  if (response.success === false)
    throw new ResponseError('OM_FAILED', `the OM reported a failure with status OK${said}`);
  if (op === 'revoke') return undefined;
  if (op === 'get') {
    const secret = response.getS3SecretResponse?.s3Secret;
    if (!secret || !secret.kerberosID || !secret.awsSecret)
      throw new ResponseError('MALFORMED_RESPONSE', 'the OM answered OK without the S3 secret');
    return checked({ awsAccessKey: secret.kerberosID, awsSecret: secret.awsSecret });
  }
  const set = response.SetS3SecretResponse;
  if (!set || !set.accessId || !set.secretKey)
    throw new ResponseError('MALFORMED_RESPONSE', 'the OM answered OK without the new secret');
  return checked({ awsAccessKey: set.accessId, awsSecret: set.secretKey });
}

/** No control characters in what may be printed or eval'ed (the REST parser refuses them too). */
function checked(secret: S3Secret): S3Secret {
  // eslint-disable-next-line no-control-regex
  const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
  if (unsafe.test(secret.awsAccessKey) || unsafe.test(secret.awsSecret)) {
    throw new ResponseError(
      'MALFORMED_RESPONSE',
      'the OM answered with a secret or access id holding control characters',
    );
  }
  return secret;
}

/** An OmRemoteError from a call, as the error the user sees. */
export function callFailure(error: OmRemoteError): Ozs3Error {
  const said = firstLine(error.remoteMessage);
  const cls = error.exceptionClass;
  if (/AccessControlException|AuthorizationException/.test(cls)) {
    return new ForbiddenError(`the OM refused the call: ${said}`, {
      hint: 'ask an Ozone admin to check the ACLs for your principal',
      cause: error,
    });
  }
  if (/RpcNoSuchProtocolException|RpcNoSuchMethodException|UnknownProtocol/.test(cls)) {
    return new ResponseError(
      'NOT_OZONE_MANAGER',
      `the server at ${error.address} is Hadoop RPC but not an OzoneManager (${simpleName(cls)}: ${said})`,
      {
        hint: 'check the OM address and port (ozone.om.address, default port 9862)',
        cause: error,
      },
    );
  }
  if (error.notLeader || error.retrySameNode) {
    return new ResponseError(
      'OM_NO_LEADER',
      `no OzoneManager leader answered in time (last: ${simpleName(cls)}: ${said})`,
      {
        hint: 'the OM HA service may be electing a leader: try again, or raise --timeout',
        cause: error,
      },
    );
  }
  return error;
}
