// The AST: what the user wrote, with spans, and nothing inferred. Built from the CST by ./build.ts.

/** A source range as byte-free UTF-16 offsets into one file's text; lines and columns come from SourceFile. */
export interface Span {
  file: string;
  start: number;
  end: number;
}

export interface Name {
  name: string;
  span: Span;
}

export type Expr =
  | { kind: "num"; value: number; isInt: boolean; span: Span }
  | { kind: "str"; value: string; span: Span }
  | { kind: "bool"; value: boolean; span: Span }
  | { kind: "name"; name: string; span: Span }
  | { kind: "call"; callee: Name; args: Arg[]; span: Span }
  | { kind: "list"; items: Expr[]; span: Span }
  | { kind: "unary"; op: "-" | "not"; operand: Expr; opSpan: Span; span: Span }
  | { kind: "binary"; op: BinaryOp; left: Expr; right: Expr; opSpan: Span; span: Span }
  | { kind: "ternary"; cond: Expr; then: Expr; else: Expr; span: Span }
  | { kind: "chain"; head: Expr; stages: Stage[]; span: Span };

export type BinaryOp = "+" | "-" | "*" | "/" | "%" | "@" | "==" | "!=" | "<" | ">" | "<=" | ">=" | "and" | "or";

/** One `-> f(args) as name` step of a chain. `args` is null when written without parentheses. */
export interface Stage {
  callee: Name;
  args: Arg[] | null;
  alias?: Name;
  span: Span;
}

export interface Arg {
  name?: Name;
  value: Expr;
  span: Span;
}

export interface DimDecl {
  kind: "const" | "sym";
  value: number;
  name: string;
  /** Upper bound of a symbolic dimension (`seq <= 512`), used for checks and FLOP counts. */
  max?: number;
  span: Span;
}

export interface TensorType {
  dtype: Name;
  /** null when only the element type is written (a scalar per sample). */
  dims: DimDecl[] | null;
  span: Span;
}

export type Stmt =
  | { kind: "input"; name: Name; type?: TensorType; span: Span }
  | { kind: "output"; name: Name; value?: Expr; span: Span }
  | { kind: "layer"; name: Name; value: Expr; span: Span }
  | { kind: "repeat"; count: Expr; index?: Name; body: Stmt[]; span: Span }
  | { kind: "bind"; name: Name; value: Expr; span: Span };

export interface ParamDecl {
  name: Name;
  type: Name;
  default?: Expr;
  span: Span;
}

export interface Setting {
  key: Name;
  args: Arg[];
  span: Span;
}

export interface FieldDecl {
  name: Name;
  type: TensorType;
  value: Expr;
  span: Span;
}

export interface PhaseDecl {
  name: Name;
  settings: Setting[];
  doc?: string;
  span: Span;
}

export type Decl =
  | { kind: "import"; names: Name[]; from: string; fromSpan: Span; span: Span }
  | { kind: "model"; name: Name; body: Stmt[]; doc?: string; span: Span }
  | { kind: "block"; name: Name; params: ParamDecl[]; body: Stmt[]; doc?: string; span: Span }
  | { kind: "dataset"; name: Name; fields: FieldDecl[]; settings: Setting[]; doc?: string; span: Span }
  | { kind: "train"; name: Name; dataset: Name; settings: Setting[]; phases: PhaseDecl[]; alternates: AlternateDecl[]; doc?: string; span: Span };

/** `alternate { step NAME { … } … }`: `word` is what was written where `step` belongs. */
export interface AlternateDecl {
  steps: (PhaseDecl & { word: Name })[];
  span: Span;
}

export interface FileAst {
  path: string;
  decls: Decl[];
}
