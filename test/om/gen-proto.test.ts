/** scripts/gen-proto.mjs's trimmer: keeps what it is told, exactly, and fails on anything missing. */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

type Keep = { enums?: string[]; messages?: Record<string, string[] | '*'> };
let trimProto: (file: string, text: string, keep: Keep) => string;

beforeAll(async () => {
  const script = fileURLToPath(new URL('../../scripts/gen-proto.mjs', import.meta.url));
  const mod: { trimProto: typeof trimProto } = await import(script);
  trimProto = mod.trimProto;
});

const PROTO = `
syntax = "proto2";
option java_package = "x";
package demo; // the package
import "other.proto";

/* a block comment { with a brace } */
enum Colour {
  RED = 1;   // first
  GREEN = 2;
}

message Big {
  enum Inner { A = 0; B = 1; }
  message Nested { optional string s = 1; }
  required Colour colour = 1; // kept
  optional string note = 2 [default = "a;b{c}"];
  optional Other other = 3;
  repeated Nested items = 4;
}

message Unused { optional int32 x = 1; }
`;

describe('trimProto', () => {
  it('keeps the listed fields, nested types whole, package and syntax; drops comments and the rest', () => {
    const out = trimProto('demo.proto', PROTO, { enums: ['Colour'], messages: { Big: ['colour', 'note', 'items'] } });
    expect(out).toContain('syntax = "proto2";');
    expect(out).toContain('package demo;');
    expect(out).toContain('enum Colour {\n  RED = 1;\n  GREEN = 2;\n}');
    expect(out).toContain('enum Inner { A = 0; B = 1; }');
    expect(out).toContain('message Nested { optional string s = 1; }');
    expect(out).toContain('optional string note = 2 [default = "a;b{c}"];');
    expect(out).toContain('repeated Nested items = 4;');
    expect(out).not.toMatch(/other|Unused|import|java_package|first|comment/);
  });

  it('fails naming a kept field the file does not have', () => {
    expect(() => trimProto('demo.proto', PROTO, { messages: { Big: ['colour', 'colur'] } })).toThrow(
      'demo.proto: message Big has no field colur',
    );
  });

  it('fails naming a kept declaration the file does not have', () => {
    expect(() => trimProto('demo.proto', PROTO, { enums: ['Color'], messages: { Big: '*' } })).toThrow(
      'demo.proto: no top-level Color',
    );
  });
});
