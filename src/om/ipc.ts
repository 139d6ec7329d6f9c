/**
 * The Hadoop IPC messages the OM path sends and reads (RpcHeader.proto, IpcConnectionContext.proto,
 * ProtobufRpcEngine.proto; Hadoop's SaslRpcClient, Client.writeConnectionContext,
 * ProtobufRpcEngine2): built and parsed with the code generated from the trimmed protos.
 */
import { create, fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import { IpcConnectionContextProtoSchema } from './gen/IpcConnectionContext_pb.js';
import { RequestHeaderProtoSchema } from './gen/ProtobufRpcEngine_pb.js';
import {
  RpcKindProto,
  RpcRequestHeaderProtoSchema,
  RpcRequestHeaderProto_OperationProto,
  RpcResponseHeaderProtoSchema,
  RpcResponseHeaderProto_RpcStatusProto,
  RpcSaslProtoSchema,
  RpcSaslProto_SaslAuthSchema,
  type RpcResponseHeaderProto,
  type RpcSaslProto,
  type RpcSaslProto_SaslAuth,
  type RpcSaslProto_SaslState,
} from './gen/RpcHeader_pb.js';
import { OMRequestSchema, OMResponseSchema, type OMRequest, type OMResponse } from './gen/OmClientProtocol_pb.js';
import {
  CONNECTION_CONTEXT_CALL_ID,
  INVALID_RETRY_COUNT,
  SASL_CALL_ID,
  encodeFrame,
  malformedFrame,
  splitDelimited,
} from './frames.js';

export { RpcSaslProto_SaslState as SaslState } from './gen/RpcHeader_pb.js';
export { RpcResponseHeaderProto_RpcStatusProto as RpcStatus } from './gen/RpcHeader_pb.js';
export type { RpcResponseHeaderProto, RpcSaslProto, RpcSaslProto_SaslAuth, OMRequest, OMResponse };

/** `@ProtocolInfo` of OzoneManagerProtocolPB. */
export const OM_PROTOCOL = 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol';
const OM_PROTOCOL_VERSION = 1n;
const METHOD = 'submitRequest';
/** RpcConstants.DUMMY_CLIENT_ID: SASL messages carry an empty client id. */
const NO_CLIENT_ID = new Uint8Array(0);

function requestHeader(callId: number, clientId: Uint8Array, retryCount: number): Uint8Array {
  return toBinary(
    RpcRequestHeaderProtoSchema,
    create(RpcRequestHeaderProtoSchema, {
      rpcKind: RpcKindProto.RPC_PROTOCOL_BUFFER,
      rpcOp: RpcRequestHeaderProto_OperationProto.RPC_FINAL_PACKET,
      callId,
      clientId,
      retryCount,
    }),
  );
}

export interface SaslAuthChoice {
  method: string;
  mechanism: string;
  protocol: string;
  serverId: string;
}

/**
 * A SASL frame (call id -33); `token` is set even when empty, as Hadoop's client does (the server
 * requires a token in RESPONSE). The chosen auth goes back without the server's challenge.
 */
export function saslFrame(state: RpcSaslProto_SaslState, token?: Uint8Array, auth?: SaslAuthChoice): Buffer {
  const message = create(RpcSaslProtoSchema, { state });
  if (token !== undefined) message.token = token;
  if (auth !== undefined) message.auths = [create(RpcSaslProto_SaslAuthSchema, auth)];
  return encodeFrame([
    requestHeader(SASL_CALL_ID, NO_CLIENT_ID, INVALID_RETRY_COUNT),
    toBinary(RpcSaslProtoSchema, message),
  ]);
}

/**
 * The connection context (call id -3): the protocol, and as effective user the authenticated
 * principal itself (ProtoUtil.makeIpcConnectionContext for KERBEROS), so the OM sees no proxy user.
 */
export function connectionContextFrame(clientId: Uint8Array, principal: string): Buffer {
  const context = create(IpcConnectionContextProtoSchema, {
    protocol: OM_PROTOCOL,
    userInfo: { effectiveUser: principal },
  });
  return encodeFrame([
    requestHeader(CONNECTION_CONTEXT_CALL_ID, clientId, INVALID_RETRY_COUNT),
    toBinary(IpcConnectionContextProtoSchema, context),
  ]);
}

/** One `submitRequest` call: RPC header, ProtobufRpcEngine request header, OMRequest. */
export function callFrame(callId: number, clientId: Uint8Array, retryCount: number, request: OMRequest): Buffer {
  const header = create(RequestHeaderProtoSchema, {
    methodName: METHOD,
    declaringClassProtocolName: OM_PROTOCOL,
    clientProtocolVersion: OM_PROTOCOL_VERSION,
  });
  return encodeFrame([
    requestHeader(callId, clientId, retryCount),
    toBinary(RequestHeaderProtoSchema, header),
    toBinary(OMRequestSchema, request),
  ]);
}

export interface Answer {
  header: RpcResponseHeaderProto;
  /** The response header's call id as Hadoop means it: uint32 on the wire, compared as int32. */
  callId: number;
  /** The payload after the header (absent for errors). */
  body: Uint8Array | undefined;
}

/** A frame from the server: its response header and what follows it. */
export function parseAnswer(payload: Uint8Array): Answer {
  const [headerBytes, body] = splitDelimited(payload, 2);
  let header: RpcResponseHeaderProto;
  try {
    header = fromBinary(RpcResponseHeaderProtoSchema, headerBytes ?? new Uint8Array(0));
  } catch (error) {
    throw malformedFrame(`unreadable response header (${(error as Error).message})`);
  }
  if (
    !isFieldSet(header, RpcResponseHeaderProtoSchema.field.callId) ||
    !isFieldSet(header, RpcResponseHeaderProtoSchema.field.status)
  ) {
    throw malformedFrame('a response header without call id or status');
  }
  return { header, callId: header.callId | 0, body };
}

export function parseSasl(body: Uint8Array | undefined): RpcSaslProto {
  if (body === undefined) throw malformedFrame('a SASL answer without its message');
  let message: RpcSaslProto;
  try {
    message = fromBinary(RpcSaslProtoSchema, body);
  } catch (error) {
    throw malformedFrame(`unreadable SASL message (${(error as Error).message})`);
  }
  if (!isFieldSet(message, RpcSaslProtoSchema.field.state))
    throw malformedFrame('a SASL message without a known state');
  return message;
}

export function hasToken(message: RpcSaslProto): boolean {
  return isFieldSet(message, RpcSaslProtoSchema.field.token);
}

export function parseOmResponse(body: Uint8Array | undefined): OMResponse {
  if (body === undefined) throw malformedFrame('a successful call without its OMResponse');
  try {
    return fromBinary(OMResponseSchema, body);
  } catch (error) {
    throw malformedFrame(`unreadable OMResponse (${(error as Error).message})`);
  }
}

export function isErrorStatus(header: RpcResponseHeaderProto): boolean {
  return header.status !== RpcResponseHeaderProto_RpcStatusProto.SUCCESS;
}
