// Generates src/om/gen/ from a trimmed copy of the vendored protos (proto/, never edited).
//
//   node scripts/gen-proto.mjs           trim, compile, verify, generate, write src/om/gen/
//   node scripts/gen-proto.mjs --check   the same into a temp dir; exit 1 when src/om/gen/ is stale
//
// Why trim: protobuf-es decodes every generated file's embedded descriptor at load, so start-up
// cost grows with the schema (docs/om-rpc.md, "Protobuf"). The trimmed copy keeps names,
// field numbers, labels, types and defaults exactly; enums are never trimmed (an unknown enum value
// would read as the default). The script fails when a kept declaration or field is missing, and
// compares every kept descriptor with protoc's descriptor of the full file.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { equals, fromBinary } from '@bufbuild/protobuf';
import {
  DescriptorProtoSchema,
  EnumDescriptorProtoSchema,
  FieldDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';

const root = fileURLToPath(new URL('..', import.meta.url));
const protoDir = join(root, 'proto');
const genDir = join(root, 'src/om/gen');
const plugin = join(root, 'node_modules/.bin/protoc-gen-es');

/**
 * What the OM RPC path uses. A message maps to the list of its fields to keep, or to '*' (whole,
 * nested types included). Nested enums and messages of a cut message are always kept whole.
 */
const KEEP = {
  'RpcHeader.proto': {
    enums: ['RpcKindProto'],
    messages: {
      // traceInfo, callerContext and stateId are never sent (their messages go with them).
      RpcRequestHeaderProto: ['rpcKind', 'rpcOp', 'callId', 'clientId', 'retryCount'],
      RpcResponseHeaderProto: '*',
      RpcSaslProto: '*',
    },
  },
  'IpcConnectionContext.proto': {
    messages: { UserInformationProto: '*', IpcConnectionContextProto: '*' },
  },
  'ProtobufRpcEngine.proto': {
    messages: { RequestHeaderProto: '*' },
  },
  'OmClientProtocol.proto': {
    enums: ['Type', 'Status'],
    messages: {
      OMRequest: [
        'cmdType',
        'traceID',
        'clientId',
        'version',
        'getS3SecretRequest',
        'RevokeS3SecretRequest',
        'SetS3SecretRequest',
      ],
      OMResponse: [
        'cmdType',
        'traceID',
        'success',
        'message',
        'status',
        'leaderOMNodeId',
        'getS3SecretResponse',
        'SetS3SecretResponse',
      ],
      S3Secret: '*',
      GetS3SecretRequest: '*',
      GetS3SecretResponse: '*',
      RevokeS3SecretRequest: '*',
      SetS3SecretRequest: '*',
      SetS3SecretResponse: '*',
    },
  },
};

class GenProtoError extends Error {}

function fail(message) {
  throw new GenProtoError(message);
}

/** The text without comments; string literals are kept as they are. */
function stripComments(text) {
  let out = '';
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated block comment');
      i = end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Splits a body into statements: `...;` or `head { ... }`, each with its first word and name.
 * Braces inside string literals do not occur in these files; a mismatch fails loudly.
 */
function statements(body) {
  const result = [];
  let i = 0;
  while (i < body.length) {
    while (i < body.length && /\s/.test(body[i])) i++;
    if (i >= body.length) break;
    const start = i;
    let depth = 0;
    for (; i < body.length; i++) {
      const c = body[i];
      if (c === '"' || c === "'") {
        const q = c;
        for (i++; i < body.length && body[i] !== q; i++) if (body[i] === '\\') i++;
      } else if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth < 0) fail('unbalanced braces');
        if (depth === 0) {
          i++;
          break;
        }
      } else if (c === ';' && depth === 0) {
        i++;
        break;
      }
    }
    const text = body.slice(start, i).trim();
    const words = /^(\w+)\s+([\w.]+)/.exec(text);
    result.push({ text, kind: words?.[1] ?? text.split(/\s/)[0], name: words?.[2] });
  }
  return result;
}

/** A field statement's name (`optional Type name = 3 [...];`). */
function fieldName(statement) {
  const m = /^(?:optional|required|repeated)\s+[\w.]+\s+(\w+)\s*=\s*\d+/.exec(statement.text);
  return m?.[1];
}

/** Trailing blanks (left where comments were) removed, runs of blank lines collapsed. */
function tidy(text) {
  return `${text
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .replace(/\{\n\n+/g, '{\n')
    .trim()}\n`;
}

/** The trimmed copy of one file's text, or a failure naming what is missing. */
export function trimProto(file, full, keep) {
  const top = statements(stripComments(full));
  const out = [
    `// Trimmed copy of proto/${file} (see proto/README.md for its origin), generated by`,
    '// scripts/gen-proto.mjs: names, numbers, labels, types and defaults as in the full file.',
    '',
  ];
  for (const s of top) if (s.kind === 'syntax' || s.kind === 'package') out.push(s.text, '');
  const wanted = new Set([...(keep.enums ?? []), ...Object.keys(keep.messages ?? {})]);
  for (const s of top) {
    if (!wanted.has(s.name) || (s.kind !== 'enum' && s.kind !== 'message')) continue;
    wanted.delete(s.name);
    const fields = s.kind === 'message' ? keep.messages[s.name] : '*';
    if (s.kind === 'enum' && !keep.enums?.includes(s.name)) fail(`${file}: ${s.name} is an enum, not a message`);
    if (fields === '*') {
      out.push(s.text, '');
      continue;
    }
    const open = s.text.indexOf('{');
    const inner = statements(s.text.slice(open + 1, s.text.lastIndexOf('}')));
    const missing = new Set(fields);
    const kept = [];
    for (const member of inner) {
      const name = fieldName(member);
      if (name === undefined) {
        // Nested enums and messages stay whole; options, reserved and extension ranges too.
        if (member.kind === 'oneof') fail(`${file}: ${s.name} has a oneof; cutting one is not supported`);
        kept.push(member.text);
      } else if (missing.delete(name)) {
        kept.push(member.text);
      }
    }
    if (missing.size > 0) fail(`${file}: message ${s.name} has no field ${[...missing].join(', ')}`);
    // Statements keep their original lines; only the first, trimmed by the split, is indented again.
    out.push(`message ${s.name} {`, ...kept.map((t) => `  ${t}`), '}', '');
  }
  if (wanted.size > 0) fail(`${file}: no top-level ${[...wanted].join(', ')}`);
  return tidy(out.join('\n'));
}

function protoc(args) {
  try {
    return execFileSync('protoc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if (error.code === 'ENOENT') fail('protoc not found: apt-get install protobuf-compiler');
    fail(`protoc ${args.join(' ')} failed:\n${error.stderr?.toString() ?? error.message}`);
  }
}

function descriptorSet(includeDir, files, out) {
  protoc([`-I${includeDir}`, '--include_imports', `--descriptor_set_out=${out}`, ...files]);
  return fromBinary(FileDescriptorSetSchema, readFileSync(out));
}

/** Every kept declaration must be the full file's, field for field. */
function verify(fullSet, trimmedSet) {
  const fullFiles = new Map(fullSet.file.map((f) => [f.name, f]));
  let checked = 0;
  for (const trimmed of trimmedSet.file) {
    const full = fullFiles.get(trimmed.name);
    if (!full) fail(`${trimmed.name}: not in the full descriptor set`);
    if (trimmed.package !== full.package) fail(`${trimmed.name}: package ${trimmed.package} != ${full.package}`);
    for (const e of trimmed.enumType) {
      const f = full.enumType.find((x) => x.name === e.name);
      if (!f || !equals(EnumDescriptorProtoSchema, e, f))
        fail(`${trimmed.name}: enum ${e.name} differs from the full file`);
      checked++;
    }
    for (const m of trimmed.messageType) {
      const f = full.messageType.find((x) => x.name === m.name);
      if (!f) fail(`${trimmed.name}: message ${m.name} is not in the full file`);
      for (const field of m.field) {
        const original = f.field.find((x) => x.number === field.number);
        if (!original || !equals(FieldDescriptorProtoSchema, field, original)) {
          fail(`${trimmed.name}: ${m.name}.${field.name} differs from the full file`);
        }
        checked++;
      }
      for (const nested of m.nestedType) {
        const original = f.nestedType.find((x) => x.name === nested.name);
        if (!original || !equals(DescriptorProtoSchema, nested, original)) {
          fail(`${trimmed.name}: ${m.name}.${nested.name} differs from the full file`);
        }
      }
      for (const nested of m.enumType) {
        const original = f.enumType.find((x) => x.name === nested.name);
        if (!original || !equals(EnumDescriptorProtoSchema, nested, original)) {
          fail(`${trimmed.name}: ${m.name}.${nested.name} differs from the full file`);
        }
      }
      if (m.extensionRange.length !== f.extensionRange.length)
        fail(`${trimmed.name}: ${m.name} extension ranges differ`);
    }
  }
  return checked;
}

function listFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path, d.name).slice(dir.length + 1))
    .sort();
}

function generate(outDir) {
  const work = mkdtempSync(join(tmpdir(), 'ozs3-gen-proto-'));
  try {
    const trimmedDir = join(outDir, 'proto');
    mkdirSync(trimmedDir, { recursive: true });
    const files = Object.keys(KEEP);
    for (const file of files) {
      writeFileSync(join(trimmedDir, file), trimProto(file, readFileSync(join(protoDir, file), 'utf8'), KEEP[file]));
    }
    const fullSet = descriptorSet(protoDir, files, join(work, 'full.binpb'));
    const trimmedSet = descriptorSet(trimmedDir, files, join(work, 'trimmed.binpb'));
    const checked = verify(fullSet, trimmedSet);
    protoc([
      `--plugin=protoc-gen-es=${plugin}`,
      `--es_out=${outDir}`,
      '--es_opt=target=ts,import_extension=js',
      `-I${trimmedDir}`,
      ...files,
    ]);
    return checked;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function main() {
  if (process.argv.includes('--check')) {
    const tmp = mkdtempSync(join(tmpdir(), 'ozs3-gen-check-'));
    try {
      generate(tmp);
      const expected = listFiles(tmp);
      const actual = listFiles(genDir);
      const stale = expected.filter((f) => {
        try {
          return !readFileSync(join(tmp, f)).equals(readFileSync(join(genDir, f)));
        } catch {
          return true;
        }
      });
      const extra = actual.filter((f) => !expected.includes(f));
      if (stale.length > 0 || extra.length > 0) {
        fail(`src/om/gen/ is stale (${[...stale, ...extra].join(', ')}): run node scripts/gen-proto.mjs`);
      }
      process.stdout.write(`gen-proto: src/om/gen/ is up to date (${expected.length} files)\n`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } else {
    // Into a temp dir first: a failed run leaves the committed code as it was.
    const tmp = mkdtempSync(join(tmpdir(), 'ozs3-gen-'));
    let checked;
    try {
      checked = generate(tmp);
      rmSync(genDir, { recursive: true, force: true });
      cpSync(tmp, genDir, { recursive: true });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    process.stdout.write(`gen-proto: wrote src/om/gen/ (${checked} kept fields and enums match the full protos)\n`);
  }
}

// Run as a script (not when a test imports trimProto).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (error) {
    if (!(error instanceof GenProtoError)) throw error;
    process.stderr.write(`gen-proto: ${error.message}\n`);
    process.exit(1);
  }
}
