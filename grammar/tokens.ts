// THE token vocabulary of .nnet. The lexer, the parser, completion lists and (later) the TextMate
// grammar all read this file; nothing else defines a token.
import { createToken, Lexer, type TokenType } from "chevrotain";

/** How an editor should colour a token; drives the generated TextMate grammar. */
export type TokenScope =
  | "keyword"
  | "type"
  | "constant"
  | "number"
  | "string"
  | "comment"
  | "operator"
  | "punctuation"
  | "identifier"
  | "whitespace"
  | "invalid";

export interface TokenInfo {
  token: TokenType;
  scope: TokenScope;
  /** Literal spelling for keywords and punctuation, used by completion and error messages. */
  spelling?: string;
}

const table: TokenInfo[] = [];
function tok(name: string, pattern: RegExp | string, scope: TokenScope, extra: Record<string, unknown> = {}): TokenType {
  const token = createToken({ name, pattern, ...extra });
  table.push({ token, scope, spelling: typeof pattern === "string" ? pattern : undefined });
  return token;
}

// Whitespace and comments. Comments go to a group so the formatter and doc-comment attachment see them.
export const WhiteSpace = tok("WhiteSpace", /[ \t\r\n\f\uFEFF]+/, "whitespace", { group: Lexer.SKIPPED, line_breaks: true });
export const DocComment = tok("DocComment", /\/\/\/[^\n\r]*/, "comment", { group: "comments" });
export const LineComment = tok("LineComment", /\/\/[^\n\r]*/, "comment", { group: "comments" });
export const BlockComment = tok("BlockComment", /\/\*[\s\S]*?\*\//, "comment", { group: "comments", line_breaks: true });
/** An unterminated block comment: lexed so that the error names the comment, not a stray '/'. */
export const UnterminatedComment = tok("UnterminatedComment", /\/\*[\s\S]*/, "invalid", { group: "errors", line_breaks: true });

export const Identifier = tok("Identifier", /[A-Za-z_][A-Za-z0-9_]*/, "identifier");

function keyword(word: string, scope: TokenScope = "keyword"): TokenType {
  return tok(word[0]!.toUpperCase() + word.slice(1), word, scope, { longer_alt: Identifier });
}

export const Model = keyword("model");
export const Block = keyword("block");
export const Train = keyword("train");
export const Dataset = keyword("dataset");
export const Import = keyword("import");
export const From = keyword("from");
export const Input = keyword("input");
export const Output = keyword("output");
export const Layer = keyword("layer");
export const Repeat = keyword("repeat");
export const As = keyword("as");
export const On = keyword("on");
export const Phase = keyword("phase");
export const Alternate = keyword("alternate");
export const Field = keyword("field");
export const True = keyword("true", "constant");
export const False = keyword("false", "constant");
/** Word operators (Python's): reserved like keywords, coloured as operators. */
export const And = keyword("and", "operator");
export const Or = keyword("or", "operator");
export const Not = keyword("not", "operator");

/** Tensor element types and block-parameter types. */
export const TYPE_NAMES = ["f16", "f32", "f64", "i8", "i32", "i64", "bool", "int", "float", "string"] as const;
export const TypeName = tok("TypeName", new RegExp(TYPE_NAMES.join("|")), "type", { longer_alt: Identifier });

export const NumberLit = tok("Number", /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/, "number");
export const StringLit = tok("String", /"(?:[^"\\\n\r]|\\.)*"/, "string");
/**
 * An unterminated string: a String to the parser (so that one missing quote is one error, not a cascade),
 * reported as NN1003 by the AST builder.
 */
export const UnterminatedString = tok("UnterminatedString", /"(?:[^"\\\n\r]|\\.)*/, "invalid", { categories: [StringLit] });
/** A `#` comment, as in Python: reported as NN1001 once, then skipped to the end of the line. */
export const HashComment = tok("HashComment", /#[^\n\r]*/, "invalid", { group: "errors" });

export const Arrow = tok("Arrow", "->", "operator");
export const EqEq = tok("EqEq", "==", "operator");
export const NotEq = tok("NotEq", "!=", "operator");
export const LtEq = tok("LtEq", "<=", "operator");
export const GtEq = tok("GtEq", ">=", "operator");
export const Lt = tok("Lt", "<", "operator");
export const Gt = tok("Gt", ">", "operator");
export const Equals = tok("Equals", "=", "operator");
export const Plus = tok("Plus", "+", "operator");
export const Minus = tok("Minus", "-", "operator");
export const Star = tok("Star", "*", "operator");
export const Slash = tok("Slash", "/", "operator");
export const Percent = tok("Percent", "%", "operator");
export const At = tok("At", "@", "operator");
export const Question = tok("Question", "?", "operator");
export const LBrace = tok("LBrace", "{", "punctuation");
export const RBrace = tok("RBrace", "}", "punctuation");
export const LParen = tok("LParen", "(", "punctuation");
export const RParen = tok("RParen", ")", "punctuation");
export const LBracket = tok("LBracket", "[", "punctuation");
export const RBracket = tok("RBracket", "]", "punctuation");
export const Comma = tok("Comma", ",", "punctuation");
export const Colon = tok("Colon", ":", "punctuation");
export const Semicolon = tok("Semicolon", ";", "punctuation");

/** Every token, in lexing priority order (comments before '/', keywords before identifiers). */
export const TOKENS: readonly TokenInfo[] = (() => {
  const order = [
    WhiteSpace, DocComment, LineComment, BlockComment, UnterminatedComment,
    Model, Block, Train, Dataset, Import, From, Input, Output, Layer, Repeat, As, On, Phase, Alternate, Field, True, False, And, Or, Not,
    TypeName, Identifier, NumberLit, StringLit, UnterminatedString, HashComment,
    Arrow, EqEq, NotEq, LtEq, GtEq, Lt, Gt, Equals, Plus, Minus, Star, Slash, Percent, At, Question,
    LBrace, RBrace, LParen, RParen, LBracket, RBracket, Comma, Colon, Semicolon,
  ];
  if (order.length !== table.length) throw new Error("grammar/tokens.ts: TOKENS order is missing a token");
  return order.map((t) => table.find((i) => i.token === t)!);
})();

export const KEYWORDS: readonly string[] = TOKENS.filter((t) => t.scope === "keyword").map((t) => t.spelling!);

/** The lexer with Chevrotain's token validations on (for tests): throws if a pattern is broken. */
export function validateLexer(): void {
  new Lexer(TOKENS.map((t) => t.token), { positionTracking: "full" });
}

export const lexer = new Lexer(
  TOKENS.map((t) => t.token),
  { ensureOptimizations: false, positionTracking: "full", skipValidations: true },
);
