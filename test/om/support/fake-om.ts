/**
 * A scriptable fake OzoneManager for tests: Hadoop IPC v9 on 127.0.0.1:0, the SASL server side
 * (NEGOTIATE with auths, the GSS exchange through an Acceptor, the RFC 4752 layer offer, SUCCESS),
 * WRAP frames both ways, the connection context, and `submitRequest` calls answered by a small
 * secret store with a retry cache (like Ratis's, keyed by client id and call id), or by the test's
 * `onCall` hook. It records every frame, so tests can check what went over the wire: no plaintext
 * after a layer, no (client id, call id) reused by a new call, retries keeping theirs.
 *
 * Its framing is written here with @bufbuild/protobuf's BinaryReader, not with src/om/frames.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import {
  RpcRequestHeaderProtoSchema,
  RpcResponseHeaderProtoSchema,
  RpcResponseHeaderProto_RpcErrorCodeProto,
  RpcResponseHeaderProto_RpcStatusProto,
  RpcSaslProtoSchema,
  RpcSaslProto_SaslState,
  type RpcRequestHeaderProto,
} from '../../../src/om/gen/RpcHeader_pb.js';
import {
  IpcConnectionContextProtoSchema,
  type IpcConnectionContextProto,
} from '../../../src/om/gen/IpcConnectionContext_pb.js';
import { RequestHeaderProtoSchema, type RequestHeaderProto } from '../../../src/om/gen/ProtobufRpcEngine_pb.js';
import {
  OMRequestSchema,
  OMResponseSchema,
  Status,
  Type,
  type OMRequest,
} from '../../../src/om/gen/OmClientProtocol_pb.js';
import { fakeAcceptor } from './fake-gss.js';

export interface Acceptor {
  accept(token: Uint8Array): { output: Buffer; complete: boolean };
  wrap(data: Uint8Array, confidential: boolean): Buffer;
  unwrap(token: Uint8Array): { data: Buffer; confidential: boolean };
  peer(): string;
  dispose(): void;
}

export type Layer = 'authentication' | 'integrity' | 'privacy';
const BIT: Record<Layer, number> = { authentication: 1, integrity: 2, privacy: 4 };

export interface ReceivedCall {
  conn: number;
  callId: number;
  retryCount: number;
  clientId: string;
  rpcHeader: RequestHeaderProto;
  request: OMRequest;
  caller: string;
  /** Whether the frame came inside a SASL WRAP. */
  wrapped: boolean;
}

export type OmAnswer = MessageInitShape<typeof OMResponseSchema>;

export type Reply =
  | { response: OmAnswer }
  | { error: { cls: string; msg: string } }
  | { fatal: { cls: string; msg: string } }
  /** Drop the connection without answering (the request is not carried out). */
  | { close: true }
  /** Carry the request out (and keep the answer in the retry cache), then drop the connection: a lost answer. */
  | { loseAnswer: true }
  /** Never answer. */
  | { silent: true }
  /** SUCCESS with these bytes where the OMResponse belongs. */
  | { rawBody: Uint8Array }
  /** The secret store's answer (the default). */
  | undefined;

export interface FakeOmOptions {
  nodeId?: string;
  /** What NEGOTIATE advertises for KERBEROS: protocol/serverId. */
  protocol?: string;
  serverId?: string;
  /** Replace the advertised auths altogether. */
  auths?: { method: string; mechanism: string; protocol?: string; serverId?: string }[];
  /** The layers the server allows (hadoop.rpc.protection). Default: privacy. */
  offer?: Layer[];
  maxBuffer?: number;
  acceptor?: () => Acceptor;
  /** S3 admins by short name. */
  admins?: string[];
  retryCache?: boolean;
  /** Answer INITIATE with FATAL (a SaslException as the JDK server raises it). */
  saslFatal?: { cls: string; msg: string };
  onCall?: (call: ReceivedCall, om: FakeOm) => Reply | Promise<Reply>;
  /** Delay before answering a call (answers go out when ready: out of order). */
  delayMs?: (call: ReceivedCall) => number;
  /** Share one secret store between several fake OMs (an HA service). */
  secrets?: Map<string, string>;
  /** Send a ping (call id -4) before every answer, as a server may. */
  pingBeforeAnswer?: boolean;
}

export interface FrameRecord {
  conn: number;
  callId: number;
  /** For SASL frames, the state name. */
  sasl?: string;
  /** Set once the connection had agreed a layer that wraps. */
  afterLayer: boolean;
  /** Came inside a WRAP (an inner frame); outer frames are what crossed the wire. */
  wrapped: boolean;
}

export interface FakeOm {
  readonly port: number;
  readonly address: string;
  readonly calls: ReceivedCall[];
  readonly frames: FrameRecord[];
  readonly contexts: IpcConnectionContextProto[];
  readonly secrets: Map<string, string>;
  /** Protocol violations seen (plaintext after a layer, reused call ids, bad wrap tokens ...). */
  readonly violations: string[];
  /** Layer agreed per connection. */
  readonly layers: Layer[];
  connections: number;
  close(): Promise<void>;
}

const SASL_ID = 0xffffffdf; // -33 as the uint32 Hadoop's server puts on the wire

export async function startFakeOm(opts: FakeOmOptions = {}): Promise<FakeOm> {
  const sockets = new Set<Socket>();
  const secrets = opts.secrets ?? new Map<string, string>();
  const cache = new Map<string, { request: string; answer: Buffer }>();
  const om: FakeOm = {
    port: 0,
    address: '',
    calls: [],
    frames: [],
    contexts: [],
    secrets,
    violations: [],
    layers: [],
    connections: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    serve(socket, om.connections++, om, opts, cache).catch((error: unknown) => {
      om.violations.push(`server error: ${(error as Error).message}`);
      socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return Object.assign(om, { port, address: `127.0.0.1:${port}` });
}

/** Reads exact byte counts off a socket. */
class Bytes {
  private buf = Buffer.alloc(0);
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private ended = false;
  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.pump();
    });
    socket.on('close', () => {
      this.ended = true;
      this.pump();
    });
  }
  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.pump();
    });
  }
  private pump(): void {
    const w = this.want;
    if (!w) return;
    if (this.buf.length >= w.n) {
      this.want = undefined;
      const out = this.buf.subarray(0, w.n);
      this.buf = this.buf.subarray(w.n);
      w.resolve(out);
    } else if (this.ended) {
      this.want = undefined;
      w.reject(new Error('closed'));
    }
  }
}

function delimited(...messages: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) {
    const len: number[] = [];
    let v = m.length;
    while (v > 0x7f) {
      len.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    len.push(v);
    parts.push(Buffer.from(len), Buffer.from(m));
  }
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

function responseHeader(init: MessageInitShape<typeof RpcResponseHeaderProtoSchema>): Uint8Array {
  return toBinary(
    RpcResponseHeaderProtoSchema,
    create(RpcResponseHeaderProtoSchema, { serverIpcVersionNum: 9, ...init }),
  );
}

function shortName(principal: string): string {
  return principal.split(/[/@]/)[0]!;
}

async function serve(
  socket: Socket,
  conn: number,
  om: FakeOm,
  opts: FakeOmOptions,
  cache: Map<string, { request: string; answer: Buffer }>,
): Promise<void> {
  const input = new Bytes(socket);
  const header = await input.read(7);
  if (header.toString('latin1', 0, 4) !== 'hrpc' || header[4] !== 9 || header[5] !== 0 || header[6] !== 0xdf) {
    om.violations.push(`bad connection header ${header.toString('hex')}`);
    socket.destroy();
    return;
  }
  const offer = opts.offer ?? ['privacy'];
  const acceptor = (opts.acceptor ?? fakeAcceptor)();
  let layer: Layer | undefined;
  let stage: 'negotiate' | 'initiate' | 'await-empty' | 'await-choice' | 'done' = 'negotiate';
  let caller = '';
  let inner = Buffer.alloc(0);

  const writePlain = (frame: Buffer) => {
    if (layer && layer !== 'authentication') {
      const token = acceptor.wrap(frame, layer === 'privacy');
      socket.write(
        delimited(
          responseHeader({ callId: SASL_ID, status: RpcResponseHeaderProto_RpcStatusProto.SUCCESS }),
          toBinary(RpcSaslProtoSchema, create(RpcSaslProtoSchema, { state: RpcSaslProto_SaslState.WRAP, token })),
        ),
      );
    } else {
      socket.write(frame);
    }
  };
  const sasl = (
    state: RpcSaslProto_SaslState,
    token?: Uint8Array,
    auths?: MessageInitShape<typeof RpcSaslProtoSchema>['auths'],
  ) => {
    const message = create(RpcSaslProtoSchema, { state, ...(auths ? { auths } : {}) });
    if (token) message.token = token;
    socket.write(
      delimited(
        responseHeader({ callId: SASL_ID, status: RpcResponseHeaderProto_RpcStatusProto.SUCCESS }),
        toBinary(RpcSaslProtoSchema, message),
      ),
    );
  };
  const fatal = (callId: number, cls: string, msg: string) => {
    writePlain(
      delimited(
        responseHeader({
          callId: callId >>> 0,
          status: RpcResponseHeaderProto_RpcStatusProto.FATAL,
          exceptionClassName: cls,
          errorMsg: msg,
          errorDetail: RpcResponseHeaderProto_RpcErrorCodeProto.FATAL_UNAUTHORIZED,
        }),
      ),
    );
    socket.end();
  };

  const handleCall = async (h: RpcRequestHeaderProto, reader: BinaryReader, wrapped: boolean) => {
    const rpcHeader = fromBinary(RequestHeaderProtoSchema, reader.bytes());
    const requestBytes = reader.bytes();
    const request = fromBinary(OMRequestSchema, requestBytes);
    const clientId = Buffer.from(h.clientId).toString('hex');
    const call: ReceivedCall = {
      conn,
      callId: h.callId,
      retryCount: h.retryCount,
      clientId,
      rpcHeader,
      request,
      caller,
      wrapped,
    };
    om.calls.push(call);
    const key = `${clientId}:${h.callId}`;
    const seen = cache.get(key);
    const requestHex = Buffer.from(requestBytes).toString('hex');
    if (seen && seen.request !== requestHex)
      om.violations.push(`reused (clientId, callId) ${key} for a different request`);
    if (seen && h.retryCount <= 0) om.violations.push(`call ${key} sent again with retryCount ${h.retryCount}`);
    let answer: Buffer;
    if (seen && seen.answer.length > 0) {
      answer = seen.answer;
    } else {
      const hooked = await opts.onCall?.(call, om);
      const lose = hooked !== undefined && 'loseAnswer' in hooked;
      const reply =
        hooked === undefined || lose
          ? { response: defaultAnswer(request, caller, om.secrets, opts.admins ?? []) }
          : hooked;
      if ('close' in reply) {
        cache.set(key, { request: requestHex, answer: Buffer.alloc(0) });
        socket.destroy();
        return;
      }
      if ('silent' in reply) return;
      if ('fatal' in reply) {
        fatal(h.callId, reply.fatal.cls, reply.fatal.msg);
        return;
      }
      const headerInit = { callId: h.callId >>> 0, clientId: h.clientId, retryCount: h.retryCount };
      answer =
        'rawBody' in reply
          ? delimited(
              responseHeader({ ...headerInit, status: RpcResponseHeaderProto_RpcStatusProto.SUCCESS }),
              reply.rawBody,
            )
          : 'error' in reply
            ? delimited(
                responseHeader({
                  ...headerInit,
                  status: RpcResponseHeaderProto_RpcStatusProto.ERROR,
                  exceptionClassName: reply.error.cls,
                  errorMsg: reply.error.msg,
                  errorDetail: RpcResponseHeaderProto_RpcErrorCodeProto.ERROR_APPLICATION,
                }),
              )
            : delimited(
                responseHeader({ ...headerInit, status: RpcResponseHeaderProto_RpcStatusProto.SUCCESS }),
                toBinary(OMResponseSchema, create(OMResponseSchema, reply.response)),
              );
      const isRetryable = 'error' in reply;
      cache.set(key, {
        request: requestHex,
        answer: isRetryable || opts.retryCache === false ? Buffer.alloc(0) : answer,
      });
      if (lose) {
        socket.destroy();
        return;
      }
    }
    const delay = opts.delayMs?.(call) ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (socket.destroyed) return;
    if (opts.pingBeforeAnswer) {
      writePlain(
        delimited(responseHeader({ callId: 0xfffffffc, status: RpcResponseHeaderProto_RpcStatusProto.SUCCESS })),
      );
    }
    writePlain(answer);
  };

  const handleFrame = async (frame: Buffer, wrapped: boolean): Promise<void> => {
    const reader = new BinaryReader(frame);
    const h = fromBinary(RpcRequestHeaderProtoSchema, reader.bytes());
    const afterLayer = layer !== undefined && layer !== 'authentication';
    // As Hadoop's client writes every header: protocol buffers, final packet.
    if (Number(h.rpcKind) !== 2 || Number(h.rpcOp) !== 0) om.violations.push(`header kind ${h.rpcKind} op ${h.rpcOp}`);
    if (h.callId === -33) {
      // SaslRpcClient's saslHeader: the dummy (empty) client id and retry count -1.
      if (h.clientId.length !== 0 || h.retryCount !== -1)
        om.violations.push('SASL header with a client id or retry count');
      const message = fromBinary(RpcSaslProtoSchema, reader.bytes());
      om.frames.push({ conn, callId: -33, sasl: RpcSaslProto_SaslState[message.state], afterLayer, wrapped });
      if (message.state === RpcSaslProto_SaslState.WRAP) {
        if (!afterLayer) om.violations.push('WRAP without a layer');
        const { data, confidential } = acceptor.unwrap(message.token);
        if (layer === 'privacy' && !confidential) om.violations.push('integrity-only token on a privacy connection');
        inner = Buffer.concat([inner, data]);
        while (inner.length >= 4 && inner.length >= 4 + inner.readUInt32BE(0)) {
          const n = inner.readUInt32BE(0);
          const innerFrame = inner.subarray(4, 4 + n);
          inner = inner.subarray(4 + n);
          await handleFrame(Buffer.from(innerFrame), true);
        }
        return;
      }
      await handleSasl(message.state, message.token, message.auths);
      return;
    }
    om.frames.push({ conn, callId: h.callId, afterLayer, wrapped });
    if (afterLayer && !wrapped) om.violations.push(`plaintext frame (call id ${h.callId}) after the ${layer} layer`);
    if (stage !== 'done') {
      om.violations.push(`call id ${h.callId} before SASL completed`);
      return;
    }
    if (h.callId === -3) {
      if (h.clientId.length !== 16 || h.retryCount !== -1) om.violations.push('connection context header');
      om.contexts.push(fromBinary(IpcConnectionContextProtoSchema, reader.bytes()));
      return;
    }
    if (h.clientId.length !== 16) om.violations.push(`client id of ${h.clientId.length} bytes`);
    void handleCall(h, reader, wrapped).catch((error: unknown) =>
      om.violations.push(`call error: ${(error as Error).message}`),
    );
  };

  const handleSasl = async (
    state: RpcSaslProto_SaslState,
    token: Uint8Array,
    auths: { method: string }[],
  ): Promise<void> => {
    if (state === RpcSaslProto_SaslState.NEGOTIATE && stage === 'negotiate') {
      stage = 'initiate';
      sasl(
        RpcSaslProto_SaslState.NEGOTIATE,
        undefined,
        opts.auths ?? [
          {
            method: 'TOKEN',
            mechanism: 'DIGEST-MD5',
            protocol: '',
            serverId: 'default',
            challenge: new Uint8Array([1, 2]),
          },
          {
            method: 'KERBEROS',
            mechanism: 'GSSAPI',
            protocol: opts.protocol ?? 'om',
            serverId: opts.serverId ?? 'localhost',
          },
        ],
      );
      return;
    }
    if (state === RpcSaslProto_SaslState.INITIATE && stage === 'initiate') {
      if (auths.length !== 1 || auths[0]!.method !== 'KERBEROS')
        om.violations.push('INITIATE without the KERBEROS auth');
      if (opts.saslFatal) {
        fatal(-33, opts.saslFatal.cls, opts.saslFatal.msg);
        return;
      }
      const { output, complete } = acceptor.accept(token);
      if (!complete) throw new Error('fake OM: multi-step GSS not supported');
      caller = acceptor.peer();
      if (output.length > 0) {
        stage = 'await-empty';
        sasl(RpcSaslProto_SaslState.CHALLENGE, output);
      } else {
        sendOffer();
      }
      return;
    }
    if (state === RpcSaslProto_SaslState.RESPONSE && stage === 'await-empty') {
      if (token.length !== 0) om.violations.push('non-empty RESPONSE after the AP-REP');
      sendOffer();
      return;
    }
    if (state === RpcSaslProto_SaslState.RESPONSE && stage === 'await-choice') {
      const { data } = acceptor.unwrap(token);
      const mask = offer.reduce((m, l) => m | BIT[l], 0);
      const chosen = data[0]! & mask;
      if (data.length < 4 || chosen === 0) {
        fatal(
          -33,
          'javax.security.sasl.SaslException',
          `Problem with callback handler [Caused by Client selected unsupported protection: ${data[0]}]`,
        );
        return;
      }
      if (data.length > 4) om.violations.push('authorization id sent');
      layer = chosen & 4 ? 'privacy' : chosen & 2 ? 'integrity' : 'authentication';
      om.layers[conn] = layer;
      stage = 'done';
      sasl(RpcSaslProto_SaslState.SUCCESS);
      return;
    }
    om.violations.push(`unexpected SASL ${RpcSaslProto_SaslState[state]} in stage ${stage}`);
    socket.destroy();
  };

  const sendOffer = () => {
    const bytes = Buffer.alloc(4);
    bytes[0] = offer.reduce((m, l) => m | BIT[l], 0);
    bytes.writeUIntBE(opts.maxBuffer ?? 65536, 1, 3);
    stage = 'await-choice';
    sasl(RpcSaslProto_SaslState.CHALLENGE, acceptor.wrap(bytes, false));
  };

  try {
    for (;;) {
      const length = (await input.read(4)).readUInt32BE(0);
      await handleFrame(await input.read(length), false);
    }
  } catch (error) {
    if ((error as Error).message !== 'closed') throw error;
  } finally {
    acceptor.dispose();
  }
}

/** The secret store: S3GetSecretRequest, S3RevokeSecretRequest, OMSetSecretRequest as Ozone answers. */
function defaultAnswer(request: OMRequest, caller: string, secrets: Map<string, string>, admins: string[]): OmAnswer {
  const base = { cmdType: request.cmdType, traceID: request.traceID, success: true };
  const allowed = (accessId: string) => accessId === caller || admins.includes(shortName(caller));
  const mismatch = (accessId: string): OmAnswer => ({
    ...base,
    success: false,
    status: Status.USER_MISMATCH,
    message: `Requested accessId '${accessId}' doesn't match current user '${caller}', nor does current user has administrator privilege.`,
  });
  switch (request.cmdType) {
    case Type.GetS3Secret: {
      const id = request.getS3SecretRequest!.kerberosID;
      if (!allowed(id)) return mismatch(id);
      if (secrets.has(id)) {
        return {
          ...base,
          success: false,
          status: Status.S3_SECRET_ALREADY_EXISTS,
          message: `Secret for '${id}' already exists`,
        };
      }
      const secret = randomBytes(32).toString('hex');
      secrets.set(id, secret);
      return { ...base, status: Status.OK, getS3SecretResponse: { s3Secret: { kerberosID: id, awsSecret: secret } } };
    }
    case Type.RevokeS3Secret: {
      const id = request.RevokeS3SecretRequest!.kerberosID;
      if (!allowed(id)) return mismatch(id);
      if (!secrets.delete(id)) return { ...base, status: Status.S3_SECRET_NOT_FOUND };
      return { ...base, status: Status.OK };
    }
    case Type.SetS3Secret: {
      const { accessId, secretKey } = request.SetS3SecretRequest!;
      if (!secrets.has(accessId)) {
        return {
          ...base,
          success: false,
          status: Status.ACCESS_ID_NOT_FOUND,
          message: `accessId '${accessId}' not found.`,
        };
      }
      if (secretKey.length < 8) {
        return {
          ...base,
          success: false,
          status: Status.INVALID_REQUEST,
          message: 'Secret key length should be at least 8 characters',
        };
      }
      if (!allowed(accessId)) return mismatch(accessId);
      secrets.set(accessId, secretKey);
      return { ...base, status: Status.OK, SetS3SecretResponse: { accessId, secretKey } };
    }
    default:
      return { ...base, success: false, status: Status.INVALID_REQUEST, message: 'unsupported' };
  }
}
