/**
 * Every exported declaration in ts/ (classes, functions, interfaces, type aliases, consts, enums)
 * and every public member of an exported class, interface or object type alias (methods, getters
 * and setters, properties, constructor parameter properties, constructors, signatures) carries a
 * TSDoc comment: what it computes or is, shapes and units, defaults, what it throws.
 *
 * A scan of the syntax tree with the TypeScript compiler API (typescript5: TypeScript 7 ships
 * only the native compiler, no JS API). A declaration is documented when the last comment before
 * it is a non-empty `/** … *\/` (what editors show on hover and TypeDoc/API Extractor read). Each
 * overload signature needs its own; the implementation signature after overloads is not API.
 * `private` and `#private` members are not API. Every file under ts/ is scanned (the library
 * modules re-exported by ts/index.ts, the modules they use, and the CLI), except the generated
 * wasm-bindgen glue in ts/wasm/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript5';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../ts/', import.meta.url));

/** The .ts files under ts/ (relative paths, sorted), without the generated ts/wasm/. */
function sourceFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const path = join(dir, e.name);
      if (e.isDirectory()) return relative(ROOT, path) === 'wasm' ? [] : sourceFiles(path);
      return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [relative(ROOT, path)] : [];
    })
    .sort();
}

/**
 * Whether the last comment before `node` is a TSDoc comment with some text in it. The comments
 * are read from the trivia between the previous token and the node, so a comment on the same
 * line (`{ /** … *\/ x: number }`) counts, as it does for editors.
 */
function documented(node: ts.Node, sf: ts.SourceFile): boolean {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, sf.text.slice(node.pos, node.getStart(sf)));
  let last = '';
  for (let k = scanner.scan(); k !== ts.SyntaxKind.EndOfFileToken; k = scanner.scan()) {
    if (k === ts.SyntaxKind.MultiLineCommentTrivia || k === ts.SyntaxKind.SingleLineCommentTrivia) last = scanner.getTokenText();
  }
  return last.startsWith('/**') && !last.startsWith('/**/') && last.slice(3, -2).replace(/[\s*]/g, '') !== '';
}

const hasModifier = (node: ts.Node, kind: ts.SyntaxKind) =>
  ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);

/** The name of a declaration as the report writes it. */
function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (ts.isCallSignatureDeclaration(node)) return '(call)';
  if (ts.isConstructSignatureDeclaration(node)) return 'new (call)';
  if (ts.isVariableStatement(node)) return node.declarationList.declarations.map((d) => d.name.getText(sf)).join(', ');
  const name = (node as ts.NamedDeclaration).name;
  return name ? name.getText(sf) : '(anonymous)';
}

/**
 * `file:line: name` for each exported declaration or public member in `text` without a TSDoc
 * comment (members as `Owner.member`).
 */
export function undocumented(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const missing: string[] = [];
  const report = (node: ts.Node, name: string) => {
    if (documented(node, sf)) return;
    missing.push(`${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}: ${name}`);
  };
  // An implementation (with a body) that follows overload signatures of the same name.
  const isImplementation = (node: ts.Node, siblings: readonly ts.Node[]) => {
    const body = (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node)) && node.body;
    if (!body) return false;
    const i = siblings.indexOf(node);
    const prev = siblings[i - 1];
    return prev !== undefined && prev.kind === node.kind && !(prev as ts.FunctionLikeDeclaration).body && nameOf(prev, sf) === nameOf(node, sf);
  };

  const members = (owner: string, list: readonly ts.Node[]) => {
    for (const m of list) {
      if (ts.isIndexSignatureDeclaration(m) || ts.isClassStaticBlockDeclaration(m) || ts.isSemicolonClassElement(m)) continue;
      if (hasModifier(m, ts.SyntaxKind.PrivateKeyword)) continue;
      const name = (m as ts.NamedDeclaration).name;
      if (name && ts.isPrivateIdentifier(name)) continue;
      if (isImplementation(m, list)) continue;
      if (ts.isConstructorDeclaration(m)) {
        // Parameter properties (`constructor(readonly code: …)`) are public properties.
        for (const p of m.parameters) {
          if (ts.isParameterPropertyDeclaration(p, m) && !hasModifier(p, ts.SyntaxKind.PrivateKeyword)) {
            report(p, `${owner}.${p.name.getText(sf)}`);
          }
        }
      }
      // A setter is documented by its getter's comment (one property to the reader).
      if (ts.isSetAccessorDeclaration(m)) {
        const getter = list.find((g) => ts.isGetAccessorDeclaration(g) && nameOf(g, sf) === nameOf(m, sf));
        if (getter) continue;
      }
      report(m, `${owner}.${nameOf(m, sf)}`);
    }
  };
  // The object type a type alias spells out: `{ … }`, or the `{ … }`s of an intersection. The
  // variants of a union (`{ type: 'relu' } | …`) are its values, described by the alias's comment.
  const literals = (type: ts.TypeNode): ts.TypeLiteralNode[] => {
    if (ts.isTypeLiteralNode(type)) return [type];
    if (ts.isIntersectionTypeNode(type)) return type.types.flatMap(literals);
    if (ts.isParenthesizedTypeNode(type)) return literals(type.type);
    return [];
  };
  const declaration = (node: ts.Statement, siblings: readonly ts.Statement[]) => {
    if (!isImplementation(node, siblings)) report(node, nameOf(node, sf));
    if (ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node)) members(nameOf(node, sf), node.members);
    if (ts.isTypeAliasDeclaration(node)) for (const lit of literals(node.type)) members(nameOf(node, sf), lit.members);
  };

  // `export { a, b as c }` of local declarations: those declarations are exported too.
  const exportedLocally = new Set<string>();
  for (const s of sf.statements) {
    if (ts.isExportDeclaration(s) && !s.moduleSpecifier && s.exportClause && ts.isNamedExports(s.exportClause)) {
      for (const e of s.exportClause.elements) exportedLocally.add((e.propertyName ?? e.name).text);
    }
  }
  for (const s of sf.statements) {
    const kinds = ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s) || ts.isVariableStatement(s) || ts.isEnumDeclaration(s) || ts.isModuleDeclaration(s);
    if (!kinds) continue;
    const names = ts.isVariableStatement(s) ? s.declarationList.declarations.map((d) => d.name.getText(sf)) : [nameOf(s, sf)];
    if (hasModifier(s, ts.SyntaxKind.ExportKeyword) || names.some((n) => exportedLocally.has(n))) declaration(s, sf.statements);
  }
  return missing;
}

const FILES = sourceFiles();

describe('TSDoc on every exported declaration and public member', () => {
  it('scans the library, its modules and the CLI', () => {
    for (const f of ['index.ts', 'errors.ts', 'tensor.ts', 'curvature.ts', join('io', 'onnx', 'model.ts'), join('cli', 'main.ts')]) expect(FILES).toContain(f);
    expect(FILES.some((f) => f.startsWith('wasm'))).toBe(false);
  });

  it.each(FILES)('ts/%s', (file) => {
    expect(undocumented(file, readFileSync(join(ROOT, file), 'utf8'))).toEqual([]);
  });

  it('finds each kind of undocumented declaration (the scanner itself)', () => {
    const src = `
/** Documented. */
export function ok(): void {}
export function bare(): void {}
/** One. */
export function over(a: number): void;
export function over(a: string): void;
export function over(a: unknown): void {}
/* not TSDoc */
export const k = 1;
/** */
export type Empty = number;
// a line comment
export interface I {
  /** Documented. */
  a: number;
  b: string;
  m(): void;
  [key: string]: unknown;
}
export type T = { /** Documented. */ x: number; y: number } & { z: number };
function local(): void {}
export { local };
function hidden(): void {}
/** Documented. */
export class C {
  /** Documented. */
  constructor(readonly code: string, /** Documented. */ readonly kept: number, private p = 0, plain = 1) {}
  prop = 1;
  /** Documented. */
  get g(): number { return 1; }
  set g(v: number) {}
  set s(v: number) {}
  static make(): C { return new C(''); }
  private hide(): void {}
  #secret = 1;
  /** Documented. */
  m(a: number): void;
  m(a: string): void;
  m(a: unknown): void {}
  [Symbol.dispose](): void {}
}
/** Documented. */
export enum E { A }
/** Documented. */
export type U = { a: number } | { b: number };
/** Documented. */
export class D { constructor() {} }
`;
    expect(undocumented('x.ts', src)).toEqual([
      'x.ts:4: bare',
      'x.ts:7: over',
      'x.ts:10: k',
      'x.ts:12: Empty',
      'x.ts:14: I',
      'x.ts:17: I.b',
      'x.ts:18: I.m',
      'x.ts:21: T',
      'x.ts:21: T.y',
      'x.ts:21: T.z',
      'x.ts:22: local',
      'x.ts:28: C.code',
      'x.ts:29: C.prop',
      'x.ts:33: C.s',
      'x.ts:34: C.make',
      'x.ts:39: C.m',
      'x.ts:41: C.[Symbol.dispose]',
      'x.ts:48: D.constructor',
    ]);
  });
});
