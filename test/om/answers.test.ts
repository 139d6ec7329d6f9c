import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  OmRemoteError,
  callFailure,
  interpretResponse,
  saslFailure,
  suggestedLeader,
  type Operation,
} from '../../src/om/answers.js';
import { OMResponseSchema, Status, Type } from '../../src/om/gen/OmClientProtocol_pb.js';
import { ExitCode, type Ozs3Error } from '../../src/errors.js';
import { fromBinary } from '@bufbuild/protobuf';

const TYPE: Record<Operation, Type> = { get: Type.GetS3Secret, revoke: Type.RevokeS3Secret, set: Type.SetS3Secret };

function failure(f: () => unknown): Ozs3Error {
  try {
    f();
  } catch (error) {
    return error as Ozs3Error;
  }
  throw new Error('expected a throw');
}

describe('OMResponse statuses', () => {
  it.each<[Operation, Status, number, string, RegExp]>([
    [
      'get',
      Status.S3_SECRET_ALREADY_EXISTS,
      ExitCode.alreadyExists,
      'S3_SECRET_ALREADY_EXISTS',
      /^S3_SECRET_ALREADY_EXISTS: 'alice@R' already has/,
    ],
    [
      'revoke',
      Status.S3_SECRET_NOT_FOUND,
      ExitCode.notFound,
      'S3_SECRET_NOT_FOUND',
      /^S3_SECRET_NOT_FOUND: 'alice@R' has no S3 secret to revoke$/,
    ],
    [
      'set',
      Status.ACCESS_ID_NOT_FOUND,
      ExitCode.notFound,
      'S3_SECRET_NOT_FOUND',
      /^ACCESS_ID_NOT_FOUND: 'alice@R' has no S3 secret to replace$/,
    ],
    ['get', Status.USER_MISMATCH, ExitCode.forbidden, 'FORBIDDEN', /USER_MISMATCH/],
    ['revoke', Status.PERMISSION_DENIED, ExitCode.forbidden, 'FORBIDDEN', /PERMISSION_DENIED/],
    [
      'set',
      Status.INVALID_REQUEST,
      ExitCode.usage,
      'OM_INVALID_REQUEST',
      /invalid \(Secret key length should be at least 8 characters\)/,
    ],
    ['get', Status.INTERNAL_ERROR, ExitCode.response, 'OM_INTERNAL_ERROR', /the OM failed: INTERNAL_ERROR/],
  ])('%s answered %s: exit %i (%s)', (op, status, exit, code, message) => {
    const response = create(OMResponseSchema, {
      cmdType: TYPE[op],
      status,
      success: false,
      message: 'Secret key length should be at least 8 characters\n\tat org.apache...',
    });
    const error = failure(() => interpretResponse(op, 'alice@R', response));
    expect(error.exitCode).toBe(exit);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/\n/);
  });

  it('judges revoke of a missing secret by its status although success is true', () => {
    const response = create(OMResponseSchema, {
      cmdType: Type.RevokeS3Secret,
      status: Status.S3_SECRET_NOT_FOUND,
      success: true,
    });
    expect(failure(() => interpretResponse('revoke', 'a', response)).exitCode).toBe(ExitCode.notFound);
  });

  it('never takes an unknown status (read as OK by proto2) for success', () => {
    const response = fromBinary(OMResponseSchema, Buffer.from('0831' + '28e807', 'hex'));
    const error = failure(() => interpretResponse('get', 'a', response));
    expect(error.code).toBe('OM_UNKNOWN_STATUS');
    expect(error.message).toBe('the OM answered with status 1000, which ozs3 does not know');
    const none = fromBinary(OMResponseSchema, Buffer.from('0831', 'hex'));
    expect(failure(() => interpretResponse('get', 'a', none)).message).toBe('the OM answered without a status');
  });

  it('refuses OK without the secret, OK with success=false, and an answer for another command', () => {
    expect(
      failure(() =>
        interpretResponse('get', 'a', create(OMResponseSchema, { cmdType: Type.GetS3Secret, status: Status.OK })),
      ).code,
    ).toBe('MALFORMED_RESPONSE');
    expect(
      failure(() =>
        interpretResponse(
          'revoke',
          'a',
          create(OMResponseSchema, { cmdType: Type.RevokeS3Secret, status: Status.OK, success: false }),
        ),
      ).code,
    ).toBe('OM_FAILED');
    expect(
      failure(() =>
        interpretResponse('get', 'a', create(OMResponseSchema, { cmdType: Type.SetS3Secret, status: Status.OK })),
      ).code,
    ).toBe('OM_WRONG_ANSWER');
  });

  it('returns the secret of get and set, and refuses control characters in it', () => {
    const get = create(OMResponseSchema, {
      cmdType: Type.GetS3Secret,
      status: Status.OK,
      getS3SecretResponse: { s3Secret: { kerberosID: 'alice@R', awsSecret: 'abc' } },
    });
    expect(interpretResponse('get', 'alice@R', get)).toEqual({ awsAccessKey: 'alice@R', awsSecret: 'abc' });
    const set = create(OMResponseSchema, {
      cmdType: Type.SetS3Secret,
      status: Status.OK,
      SetS3SecretResponse: { accessId: 'b', secretKey: 'k\x1b[2J' },
    });
    expect(failure(() => interpretResponse('set', 'b', set)).code).toBe('MALFORMED_RESPONSE');
  });
});

describe('RPC exceptions', () => {
  const remote = (cls: string, msg: string) => new OmRemoteError(cls, msg, false, 'om1:9862');

  it('finds the suggested leader node id in OMNotLeaderException messages', () => {
    expect(suggestedLeader('OM:om1 is not the leader. Suggested leader is OM:om2[om2.example.com/10.0.0.2].')).toBe(
      'om2',
    );
    expect(suggestedLeader('OM:om1 is not the leader. Could not determine the leader node.')).toBeUndefined();
  });

  it.each<[string, string, string, number]>([
    [
      'javax.security.sasl.SaslException',
      'GSS initiate failed [Caused by GSSException: Failure unspecified at GSS-API level (Mechanism level: Encryption type RC4 with HMAC is not supported/enabled)]',
      'KRB_RC4_REFUSED',
      3,
    ],
    [
      'javax.security.sasl.SaslException',
      'GSS initiate failed [Caused by GSSException: Failure unspecified at GSS-API level (Mechanism level: Checksum failed)]',
      'KRB_KEY_MISMATCH',
      3,
    ],
    [
      'javax.security.sasl.SaslException',
      'GSS initiate failed [Caused by GSSException: ... Specified version of key is not available (44))]',
      'KRB_KEY_MISMATCH',
      3,
    ],
    [
      'javax.security.sasl.SaslException',
      'Problem with callback handler [Caused by javax.security.sasl.SaslException: Client selected unsupported protection: 1]',
      'OM_PROTECTION_MISMATCH',
      3,
    ],
    [
      'javax.security.sasl.SaslException',
      'GSS initiate failed [Caused by GSSException: No valid credentials provided (Mechanism level: Clock skew too great (37))]',
      'KRB_CLOCK_SKEW',
      3,
    ],
    [
      'org.apache.hadoop.security.AccessControlException',
      'Unauthorized connection for super-user: alice',
      'OM_NOT_AUTHORIZED',
      3,
    ],
    ['javax.security.sasl.SaslException', 'GSS initiate failed', 'OM_CANNOT_VERIFY', 3],
    ['javax.security.sasl.SaslException', 'something new', 'OM_SASL_FAILED', 3],
  ])('a SASL failure %s "%s" is %s', (cls, msg, code, exit) => {
    const error = saslFailure(new OmRemoteError(cls, msg, true, 'om1:9862'), 'om/om1@R');
    expect(error.code).toBe(code);
    expect(error.exitCode).toBe(exit);
    expect(error.hint).toBeTruthy();
  });

  it.each<[string, string, number]>([
    ['org.apache.hadoop.security.AccessControlException', 'Permission denied', ExitCode.forbidden],
    [
      'org.apache.hadoop.security.authorize.AuthorizationException',
      'User alice is not authorized for protocol',
      ExitCode.forbidden,
    ],
    [
      'org.apache.hadoop.ipc.RpcNoSuchProtocolException',
      'Unknown protocol: org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol',
      ExitCode.response,
    ],
    ['org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException', 'OM:om1 is not the leader.', ExitCode.response],
    ['java.io.IOException', 'boom\n\tat x.y(Z.java:1)', ExitCode.response],
  ])('a call failing with %s is exit %i', (cls, msg, exit) => {
    const error = callFailure(remote(cls, msg));
    expect(error.exitCode).toBe(exit);
    expect(error.message).not.toMatch(/\n/);
  });

  it('names the exception class and the first line of its message', () => {
    expect(remote('java.io.IOException', 'boom\n\tat x').message).toBe('the OM at om1:9862 failed: IOException: boom');
  });
});
