/**
 * An independent check of the Hadoop RPC framing (what `tshark -d tcp.port==PORT,hadoop` would do:
 * Debian 12's tshark 4.0 has only the pre-protobuf `hdfs` dissector, no `hadoop` one). The built CLI
 * talks to the Java test OM through a recording TCP relay; this file splits the two byte streams
 * into frames by the wire format alone (docs/om-rpc.md) and has `protoc --decode` (C++ protobuf,
 * not the client's protobuf-es) read every message from the vendored .proto files. Each frame must
 * decode completely, with no byte left over, and tell the story of one getsecret.
 */
import { execFile } from 'node:child_process';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startRealm, type Realm } from '../support/realm.js';
import { startOmServer, type OmServer } from '../support/om-server.js';
import { assertBuilt, runCli } from '../support/run-cli.js';

const execFileP = promisify(execFile);
const PROTO_DIR = join(import.meta.dirname, '..', '..', 'proto');

let realm: Realm;
let om: OmServer;
let relay: Server;
let relayPort: number;
const toServer: Buffer[] = [];
const toClient: Buffer[] = [];

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  await realm.addPrincipal('alice', { password: 'pw-alice' });
  om = await startOmServer(realm, { protection: 'authentication' });
  // A relay that keeps every byte each way.
  relay = createServer((client) => {
    const server = createConnection({ host: '127.0.0.1', port: om.nodes[0]!.port });
    client.on('data', (b: Buffer) => (toServer.push(b), server.write(b)));
    server.on('data', (b: Buffer) => (toClient.push(b), client.write(b)));
    client.on('end', () => server.end());
    server.on('end', () => client.end());
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayPort = (relay.address() as { port: number }).port;
});

afterAll(async () => {
  relay?.close();
  await om?.close();
  await realm?.stop();
});

/** protoc --decode=TYPE: the text form, or the failure (protoc exits 1 on bytes that do not parse). */
async function decode(type: string, bytes: Buffer): Promise<string> {
  const child = execFileP('protoc', [`--proto_path=${PROTO_DIR}`, `--decode=${type}`, ...PROTO_FILES], {
    encoding: 'utf8',
  });
  child.child.stdin!.end(bytes);
  const text = await child.then(
    (r) => r.stdout,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new Error('protoc not found: apt-get install protobuf-compiler');
      throw error;
    },
  );
  // protoc prints a field the schema does not name by its number ("7: 1"): the bytes were not what
  // the schema says, or the vendored schema lost a field.
  expect(text, `${type} has fields the schema does not name`).not.toMatch(/^\s*\d+(: | \{)/m);
  return text;
}
const PROTO_FILES = [
  'RpcHeader.proto',
  'IpcConnectionContext.proto',
  'ProtobufRpcEngine.proto',
  'OmClientProtocol.proto',
];

/** A varint at `at`: [value, bytes it took]. */
function varint(buf: Buffer, at: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    const byte = buf[at + i]!;
    value |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  throw new Error(`varint too long at ${at}`);
}

/** The varint-delimited messages of one frame; throws if they do not fill it exactly. */
function delimited(frame: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < frame.length) {
    const [length, took] = varint(frame, at);
    at += took;
    if (at + length > frame.length) throw new Error(`a message of ${length} bytes overruns its frame`);
    parts.push(frame.subarray(at, at + length));
    at += length;
  }
  return parts;
}

/** 4-byte big-endian length + that many bytes, until the stream ends; throws on a torn frame. */
function frames(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    if (at + 4 > stream.length) throw new Error('a torn length prefix at the end');
    const length = stream.readUInt32BE(at);
    if (at + 4 + length > stream.length) throw new Error(`a frame of ${length} bytes is cut off`);
    out.push(stream.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

// The request header's callId is sint32; the response header's is uint32, so -33 comes back as 2^32 - 33.
const callId = (text: string) => Number(/^callId: (-?\d+)$/m.exec(text)?.[1]) | 0;

describe('a getsecret session on the wire, read by protoc', () => {
  it('every frame of both directions decodes completely, in the order Hadoop RPC prescribes', async () => {
    const cc = await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-wire' });
    const r = await runCli(['getsecret', '--om', `localhost:${relayPort}`], {
      env: cacheEnv(realm, cc),
    });
    expect(r.code, r.stderr).toBe(0);

    const up = Buffer.concat(toServer);
    // The connection header: "hrpc", version 9, service class 0, auth protocol SASL (-33).
    expect([...up.subarray(0, 7)]).toEqual([...Buffer.from('hrpc'), 9, 0, 0xdf]);
    const sent: string[] = [];
    for (const frame of frames(up.subarray(7))) {
      const [header, ...rest] = delimited(frame);
      const head = await decode('hadoop.common.RpcRequestHeaderProto', header!);
      const id = callId(head);
      if (id === -33) {
        expect(rest).toHaveLength(1);
        sent.push(`sasl ${/^state: (\w+)/m.exec(await decode('hadoop.common.RpcSaslProto', rest[0]!))?.[1]}`);
      } else if (id === -3) {
        expect(rest).toHaveLength(1);
        const context = await decode('hadoop.common.IpcConnectionContextProto', rest[0]!);
        expect(context).toMatch(/protocol: "org\.apache\.hadoop\.ozone\.om\.protocol\.OzoneManagerProtocol"/);
        sent.push('context');
      } else {
        expect(id).toBeGreaterThanOrEqual(0);
        expect(rest).toHaveLength(2);
        const request = await decode('hadoop.common.RequestHeaderProto', rest[0]!);
        expect(request).toMatch(/methodName: "submitRequest"/);
        const om = await decode('hadoop.ozone.OMRequest', rest[1]!);
        expect(om).toMatch(/^cmdType: GetS3Secret$/m);
        expect(om).toMatch(/kerberosID: "alice@OZS3\.TEST"/);
        sent.push(`call ${id}`);
      }
    }
    // INITIATE carries the AP-REQ; the first RESPONSE is empty (mutual authentication is done), the
    // second carries the wrapped RFC 4752 layer choice.
    expect(sent).toEqual(['sasl NEGOTIATE', 'sasl INITIATE', 'sasl RESPONSE', 'sasl RESPONSE', 'context', 'call 0']);

    const got: string[] = [];
    for (const frame of frames(Buffer.concat(toClient))) {
      const [header, ...rest] = delimited(frame);
      const head = await decode('hadoop.common.RpcResponseHeaderProto', header!);
      expect(head).toMatch(/^status: SUCCESS$/m);
      const id = callId(head);
      expect(rest).toHaveLength(1);
      if (id === -33) {
        got.push(`sasl ${/^state: (\w+)/m.exec(await decode('hadoop.common.RpcSaslProto', rest[0]!))?.[1]}`);
      } else {
        const answer = await decode('hadoop.ozone.OMResponse', rest[0]!);
        expect(answer).toMatch(/^cmdType: GetS3Secret$/m);
        expect(answer).toMatch(/^status: OK$/m);
        expect(answer).toContain(`awsSecret: "${(await om.secrets())['alice@OZS3.TEST']}"`);
        got.push(`call ${id}`);
      }
    }
    // The GSSAPI exchange: the server's challenge, then the RFC 4752 layer offer, then success.
    expect(got).toEqual(['sasl NEGOTIATE', 'sasl CHALLENGE', 'sasl CHALLENGE', 'sasl SUCCESS', 'call 0']);
  });
});
