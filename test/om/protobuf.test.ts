/**
 * The trimmed generated code against protoc's descriptors of the full vendored protos: the same
 * bytes on the wire both ways, and the proto2 behaviours the OM path relies on.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, createFileRegistry, fromBinary, isFieldSet, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OMRequestSchema, OMResponseSchema, Status, Type } from '../../src/om/gen/OmClientProtocol_pb.js';
import {
  RpcKindProto,
  RpcRequestHeaderProtoSchema,
  RpcResponseHeaderProtoSchema,
  RpcSaslProtoSchema,
  RpcSaslProto_SaslState,
} from '../../src/om/gen/RpcHeader_pb.js';
import { IpcConnectionContextProtoSchema } from '../../src/om/gen/IpcConnectionContext_pb.js';
import { RequestHeaderProtoSchema } from '../../src/om/gen/ProtobufRpcEngine_pb.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let full: ReturnType<typeof createFileRegistry>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ozs3-proto-'));
  const out = join(dir, 'full.binpb');
  execFileSync('protoc', [
    `-I${root}/proto`,
    '--include_imports',
    `--descriptor_set_out=${out}`,
    'RpcHeader.proto',
    'IpcConnectionContext.proto',
    'ProtobufRpcEngine.proto',
    'OmClientProtocol.proto',
  ]);
  full = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fullMessage(name: string): DescMessage {
  const desc = full.getMessage(name);
  if (!desc) throw new Error(`${name} not in the full protos`);
  return desc;
}

/** Encodes with the trimmed schema and with the full one; both must give the same bytes and read each other. */
function sameBytes(trimmed: DescMessage, init: Record<string, unknown>): Uint8Array {
  const bytes = toBinary(trimmed, create(trimmed, init));
  const wide = fullMessage(trimmed.typeName);
  expect(Buffer.from(toBinary(wide, create(wide, init))).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
  expect(
    Buffer.from(toBinary(trimmed, fromBinary(trimmed, toBinary(wide, fromBinary(wide, bytes))))).toString('hex'),
  ).toBe(Buffer.from(bytes).toString('hex'));
  return bytes;
}

describe('trimmed protos', () => {
  it('encode the OM requests exactly as the full OmClientProtocol.proto does', () => {
    const common = { cmdType: Type.GetS3Secret, clientId: 'ozs3-1', version: 3 };
    sameBytes(OMRequestSchema, {
      ...common,
      getS3SecretRequest: { kerberosID: 'alice@EXAMPLE.COM', createIfNotExist: true },
    });
    sameBytes(OMRequestSchema, {
      ...common,
      cmdType: Type.RevokeS3Secret,
      RevokeS3SecretRequest: { kerberosID: 'bob' },
    });
    sameBytes(OMRequestSchema, {
      ...common,
      cmdType: Type.SetS3Secret,
      SetS3SecretRequest: { accessId: 'bob', secretKey: 'secret-123' },
    });
  });

  it('encode and decode the OM answers exactly as the full file does', () => {
    sameBytes(OMResponseSchema, {
      cmdType: Type.GetS3Secret,
      status: Status.OK,
      success: true,
      leaderOMNodeId: 'om2',
      getS3SecretResponse: { s3Secret: { kerberosID: 'alice', awsSecret: 'x'.repeat(64) } },
    });
    sameBytes(OMResponseSchema, { cmdType: Type.RevokeS3Secret, status: Status.S3_SECRET_NOT_FOUND, success: true });
    sameBytes(OMResponseSchema, {
      cmdType: Type.SetS3Secret,
      status: Status.OK,
      SetS3SecretResponse: { accessId: 'a', secretKey: 'b' },
    });
  });

  it('encode the Hadoop IPC headers exactly as the full files do', () => {
    sameBytes(RpcRequestHeaderProtoSchema, {
      rpcKind: RpcKindProto.RPC_PROTOCOL_BUFFER,
      callId: -33,
      clientId: new Uint8Array(16).fill(9),
      retryCount: -1,
    });
    sameBytes(RpcResponseHeaderProtoSchema, {
      callId: 0xffffffdf,
      status: 2,
      exceptionClassName: 'javax.security.sasl.SaslException',
      errorMsg: 'GSS initiate failed',
      errorDetail: 15,
      stateId: 1n << 40n,
    });
    sameBytes(RpcSaslProtoSchema, {
      state: RpcSaslProto_SaslState.NEGOTIATE,
      auths: [
        { method: 'KERBEROS', mechanism: 'GSSAPI', protocol: 'om', serverId: 'om1', challenge: new Uint8Array([1]) },
      ],
    });
    sameBytes(IpcConnectionContextProtoSchema, { protocol: 'p', userInfo: { effectiveUser: 'alice@R' } });
    sameBytes(RequestHeaderProtoSchema, {
      methodName: 'submitRequest',
      declaringClassProtocolName: 'p',
      clientProtocolVersion: 1n,
    });
  });

  it('keep every value of the Type and Status enums', () => {
    for (const name of ['hadoop.ozone.Type', 'hadoop.ozone.Status']) {
      const trimmed = name.endsWith('Type') ? Type : Status;
      const values = full.getEnum(name)!.values;
      expect(values.length).toBeGreaterThan(90);
      for (const v of values) expect((trimmed as Record<string, unknown>)[v.name]).toBe(v.number);
    }
  });

  it('are what scripts/gen-proto.mjs generates now (run it after changing proto/)', () => {
    const out = execFileSync(process.execPath, [join(root, 'scripts/gen-proto.mjs'), '--check'], { encoding: 'utf8' });
    expect(out).toMatch(/up to date/);
  });
});

describe('proto2 as protobuf-es reads it', () => {
  it('reads a status this schema does not know as OK, but not as set', () => {
    // cmdType 49, status 1000 (field 5, varint)
    const response = fromBinary(OMResponseSchema, Buffer.from('0831' + '28e807', 'hex'));
    expect(response.status).toBe(Status.OK);
    expect(isFieldSet(response, OMResponseSchema.field.status)).toBe(false);
    expect(response.$unknown?.[0]?.no).toBe(5);
  });

  it('reads an absent success as true, an absent retryCount as -1, int64 as bigint', () => {
    expect(fromBinary(OMResponseSchema, Buffer.from('0831', 'hex')).success).toBe(true);
    const header = fromBinary(
      RpcResponseHeaderProtoSchema,
      toBinary(
        RpcResponseHeaderProtoSchema,
        create(RpcResponseHeaderProtoSchema, { callId: 1, status: 0, stateId: 5n }),
      ),
    );
    expect(header.retryCount).toBe(-1);
    expect(header.stateId).toBe(5n);
  });

  it('gives the response call id as the uint32 Hadoop writes (-33 arrives as 4294967263)', () => {
    const bytes = toBinary(
      RpcResponseHeaderProtoSchema,
      create(RpcResponseHeaderProtoSchema, { callId: 0xffffffdf, status: 0 }),
    );
    const header = fromBinary(RpcResponseHeaderProtoSchema, bytes);
    expect(header.callId).toBe(4294967263);
    expect(header.callId | 0).toBe(-33);
  });
});
