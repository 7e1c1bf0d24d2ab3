// The Chevrotain parser: grammar rules only. Error recovery is on and the entry point never throws;
// the CST it builds is turned into an AST by compiler/ast/build.ts. spec/language.md has the EBNF.
import { CstParser, EOF, type CstNode, type IRecognitionException, type IToken } from "chevrotain";
import * as T from "./tokens.js";

/**
 * How deeply expressions (parentheses, lists, call arguments, the else of a ternary, unary minus and not) and
 * bodies (repeat) may nest. Far below the JavaScript stack's limit, so that no later recursive stage (the AST
 * builder, lowering, the checks, the formatter, the language server) ever runs out of stack: a file nested
 * deeper is one NN1007 diagnostic instead.
 */
export const MAX_NESTING = 64;

/** Thrown (and caught in parseText) at the token that opens the level past MAX_NESTING. */
class TooDeep extends Error {
  constructor(readonly token: IToken) {
    super("nesting too deep");
  }
}

class NnetParser extends CstParser {
  /** The current nesting depth (see MAX_NESTING); reset for each parse. */
  depth = 0;
  /**
   * When set, each top-level declaration's CST is handed over as soon as it is parsed and dropped from the
   * `file` CST, so that a caller that only wants the AST (parseFile) never holds the CST of a whole file.
   */
  onDecl: ((cst: CstNode) => void) | undefined;

  /** Grammar validation costs start-up time on every run; spec/unit/grammar.test.ts runs it once instead. */
  constructor(validate = false) {
    super(T.TOKENS.map((t) => t.token), { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: "onlyOffset", skipValidations: !validate });
    this.performSelfAnalysis();
  }

  file = this.RULE("file", () => {
    this.MANY(() => {
      const decl: CstNode = this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
        { ALT: () => this.SUBRULE(this.blockDecl) },
        { ALT: () => this.SUBRULE(this.datasetDecl) },
        { ALT: () => this.SUBRULE(this.trainDecl) },
      ]);
      this.ACTION(() => this.handOver(decl));
    });
  });

  /** Gives a parsed declaration to onDecl and removes it from the `file` node being built (see onDecl). */
  private handOver(decl: CstNode): void {
    if (!this.onDecl || !decl) return;
    const stack = (this as unknown as { CST_STACK: CstNode[] }).CST_STACK;
    const siblings = stack[stack.length - 1]?.children[decl.name];
    if (siblings?.[siblings.length - 1] !== decl) return; // not where Chevrotain put it: keep it in the CST
    siblings.pop();
    this.onDecl(decl);
  }

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.LBrace);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(T.RBrace);
    this.CONSUME(T.From);
    this.CONSUME(T.StringLit);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.body);
    this.CONSUME(T.RBrace);
  });

  blockDecl = this.RULE("blockDecl", () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.paramDecl) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.body);
    this.CONSUME(T.RBrace);
  });

  paramDecl = this.RULE("paramDecl", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.CONSUME(T.TypeName);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expression);
    });
  });

  body = this.RULE("body", () => {
    this.nested(() => this.MANY(() => this.SUBRULE(this.statement)), true);
  });

  /** One level deeper; past MAX_NESTING, the parse stops (TooDeep) at the token `at` looks ahead to. */
  private deeper(at: 0 | 1 = 1): void {
    if (++this.depth > MAX_NESTING) throw new TooDeep(this.LA(at));
  }

  /**
   * Runs a rule's recursive part one nesting level deeper; `opened`: the level was opened by the token just
   * consumed ("(", "[", "{", ",", "?", …), which is where a diagnostic points, rather than the next one.
   */
  private nested(impl: () => void, opened = false): void {
    this.ACTION(() => this.deeper(opened ? 0 : 1));
    try {
      impl();
    } finally {
      this.ACTION(() => this.depth--);
    }
  }

  /**
   * Runs the loop of a left-associative operator chain (a + b + c is (a + b) + c: each further operand is one
   * level deeper in the AST), whose iterations each call deeper(); the levels end with the chain.
   */
  private chain(loop: () => void): void {
    const before = this.depth;
    try {
      loop();
    } finally {
      this.ACTION(() => (this.depth = before));
    }
  }

  statement = this.RULE("statement", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.inputStmt) },
      { ALT: () => this.SUBRULE(this.outputStmt) },
      { ALT: () => this.SUBRULE(this.layerStmt) },
      { ALT: () => this.SUBRULE(this.repeatStmt) },
      { ALT: () => this.SUBRULE(this.binding) },
      { ALT: () => this.CONSUME(T.Semicolon) },
    ]);
  });

  inputStmt = this.RULE("inputStmt", () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.tensorType);
    });
  });

  tensorType = this.RULE("tensorType", () => {
    this.CONSUME(T.TypeName);
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.dimDecl) });
      this.CONSUME(T.RBracket);
    });
  });

  dimDecl = this.RULE("dimDecl", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLit) },
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.OPTION(() => {
            this.CONSUME(T.LtEq);
            this.CONSUME2(T.NumberLit);
          });
        },
      },
    ]);
  });

  outputStmt = this.RULE("outputStmt", () => {
    this.CONSUME(T.Output);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expression);
    });
  });

  layerStmt = this.RULE("layerStmt", () => {
    this.CONSUME(T.Layer);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression);
  });

  repeatStmt = this.RULE("repeatStmt", () => {
    this.CONSUME(T.Repeat);
    this.SUBRULE(this.additive);
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME(T.Identifier);
    });
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.body);
    this.CONSUME(T.RBrace);
  });

  binding = this.RULE("binding", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression);
  });

  expression = this.RULE("expression", () => {
    this.nested(() => {
      this.SUBRULE(this.ternary);
      this.MANY(() => {
        this.CONSUME(T.Arrow);
        this.SUBRULE(this.stage);
      });
    }, true);
  });

  stage = this.RULE("stage", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.SUBRULE(this.argList);
      this.CONSUME(T.RParen);
    });
    this.OPTION2(() => {
      this.CONSUME(T.As);
      // A layer may take any name a checkpoint's modules use, keywords included (Hugging Face's `output`).
      this.OR([
        { ALT: () => this.CONSUME2(T.Identifier, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Output, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Input, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Layer, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Model, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Block, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Train, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Dataset, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Import, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.From, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Repeat, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.On, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Phase, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Alternate, { LABEL: "alias" }) },
        { ALT: () => this.CONSUME(T.Field, { LABEL: "alias" }) },
      ]);
    });
  });

  ternary = this.RULE("ternary", () => {
    this.SUBRULE(this.orExpr);
    this.OPTION(() => {
      this.CONSUME(T.Question);
      this.SUBRULE(this.expression);
      this.CONSUME(T.Colon);
      this.SUBRULE2(this.expression);
    });
  });

  // Python's boolean operators, loosest first: or, and, not; all looser than comparisons.
  orExpr = this.RULE("orExpr", () => {
    this.SUBRULE(this.andExpr);
    this.chain(() =>
      this.MANY(() => {
        this.ACTION(() => this.deeper());
        this.CONSUME(T.Or);
        this.SUBRULE2(this.andExpr);
      }),
    );
  });

  andExpr = this.RULE("andExpr", () => {
    this.SUBRULE(this.notExpr);
    this.chain(() =>
      this.MANY(() => {
        this.ACTION(() => this.deeper());
        this.CONSUME(T.And);
        this.SUBRULE2(this.notExpr);
      }),
    );
  });

  notExpr = this.RULE("notExpr", () => {
    this.OR([
      {
        ALT: () =>
          this.nested(() => {
            this.CONSUME(T.Not);
            this.SUBRULE(this.notExpr);
          }),
      },
      { ALT: () => this.SUBRULE(this.comparison) },
    ]);
  });

  comparison = this.RULE("comparison", () => {
    this.SUBRULE(this.additive);
    this.OPTION(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.EqEq) },
        { ALT: () => this.CONSUME(T.NotEq) },
        { ALT: () => this.CONSUME(T.LtEq) },
        { ALT: () => this.CONSUME(T.GtEq) },
        { ALT: () => this.CONSUME(T.Lt) },
        { ALT: () => this.CONSUME(T.Gt) },
      ]);
      this.SUBRULE2(this.additive);
    });
  });

  additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative);
    this.chain(() =>
      this.MANY(() => {
        this.ACTION(() => this.deeper());
        this.OR([{ ALT: () => this.CONSUME(T.Plus) }, { ALT: () => this.CONSUME(T.Minus) }]);
        this.SUBRULE2(this.multiplicative);
      }),
    );
  });

  multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary);
    this.chain(() =>
      this.MANY(() => {
        this.ACTION(() => this.deeper());
        this.OR([
          { ALT: () => this.CONSUME(T.Star) },
          { ALT: () => this.CONSUME(T.Slash) },
          { ALT: () => this.CONSUME(T.Percent) },
          { ALT: () => this.CONSUME(T.At) },
        ]);
        this.SUBRULE2(this.unary);
      }),
    );
  });

  unary = this.RULE("unary", () => {
    this.OR([
      {
        ALT: () =>
          this.nested(() => {
            this.CONSUME(T.Minus);
            this.SUBRULE(this.unary);
          }),
      },
      { ALT: () => this.SUBRULE(this.primary) },
    ]);
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLit) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.TypeName) },
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.OPTION(() => {
            this.CONSUME(T.LParen);
            this.SUBRULE(this.argList);
            this.CONSUME(T.RParen);
          });
        },
      },
      {
        ALT: () => {
          this.CONSUME2(T.LParen);
          this.SUBRULE(this.expression);
          this.CONSUME2(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LBracket);
          this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE2(this.expression) });
          this.CONSUME(T.RBracket);
        },
      },
    ]);
  });

  argList = this.RULE("argList", () => {
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.argument) });
  });

  argument = this.RULE("argument", () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Colon,
      DEF: () => {
        this.CONSUME(T.Identifier);
        this.CONSUME(T.Colon);
      },
    });
    this.SUBRULE(this.expression);
  });

  datasetDecl = this.RULE("datasetDecl", () => {
    this.CONSUME(T.Dataset);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.fieldStmt) },
        { ALT: () => this.SUBRULE(this.setting) },
        { ALT: () => this.CONSUME(T.Semicolon) },
      ]),
    );
    this.CONSUME(T.RBrace);
  });

  fieldStmt = this.RULE("fieldStmt", () => {
    this.CONSUME(T.Field);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.tensorType);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression);
  });

  trainDecl = this.RULE("trainDecl", () => {
    this.CONSUME(T.Train);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.On);
    this.CONSUME2(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.phaseDecl) },
        { ALT: () => this.SUBRULE(this.alternateDecl) },
        { ALT: () => this.SUBRULE(this.setting) },
        { ALT: () => this.CONSUME(T.Semicolon) },
      ]),
    );
    this.CONSUME(T.RBrace);
  });

  phaseDecl = this.RULE("phaseDecl", () => {
    this.CONSUME(T.Phase);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() =>
      this.OR([{ ALT: () => this.SUBRULE(this.setting) }, { ALT: () => this.CONSUME(T.Semicolon) }]),
    );
    this.CONSUME(T.RBrace);
  });

  /** `alternate { step NAME { settings } … }`: steps run in turn on every batch (`step` is read as a word: it is also a schedule's name). */
  alternateDecl = this.RULE("alternateDecl", () => {
    this.CONSUME(T.Alternate);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.OR([{ ALT: () => this.SUBRULE(this.stepDecl) }, { ALT: () => this.CONSUME(T.Semicolon) }]));
    this.CONSUME(T.RBrace);
  });

  stepDecl = this.RULE("stepDecl", () => {
    this.CONSUME(T.Identifier, { LABEL: "stepWord" });
    this.CONSUME2(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.OR([{ ALT: () => this.SUBRULE(this.setting) }, { ALT: () => this.CONSUME(T.Semicolon) }]));
    this.CONSUME(T.RBrace);
  });

  setting = this.RULE("setting", () => {
    this.CONSUME(T.Identifier);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.argument) });
  });
}

/** Build the parser with Chevrotain's grammar validations on: throws if the grammar is ambiguous or broken. */
export function validateGrammar(): void {
  new NnetParser(true);
}

let instance: NnetParser | undefined;
function parser(): NnetParser {
  return (instance ??= new NnetParser());
}

/** Token types that start a top-level declaration: where parsing resumes after a broken one. */
const TOP_LEVEL = new Set([T.Import, T.Model, T.Block, T.Dataset, T.Train]);

export interface ParseResult {
  /** One `file` CST per contiguous stretch that parsed; stretches are split where recovery had to skip. */
  csts: CstNode[];
  /** Every token the parser saw, in order (comments are in `comments`). */
  tokens: IToken[];
  comments: IToken[];
  lexErrors: { offset: number; length: number; kind: "char" | "string" | "comment" | "hash" }[];
  parseErrors: IRecognitionException[];
  /** Tokens skipped between top-level declarations after an unrecoverable error. */
  skipped: { token: IToken; expected: string }[];
  /** The token that opens a level past MAX_NESTING: the parse stopped there, and `csts` is empty. */
  tooDeep?: IToken;
}

/** Lex and parse. Never throws: every problem is returned as data. */
export function parseText(text: string): ParseResult {
  return parseTokens(lexText(text));
}

export type Lexed = ReturnType<typeof T.lexer.tokenize>;

export function lexText(text: string): Lexed {
  return T.lexer.tokenize(text);
}

/**
 * Parse what lexText() returned. With `onDecl`, each top-level declaration's CST is handed to it as soon as it
 * is parsed and is not in the returned `csts` (which then hold only the parts recovery could not hand over):
 * the CST of a whole file is never held at once. Declarations handed over before a TooDeep stop are not
 * withdrawn: the caller discards them when `tooDeep` is set.
 */
export function parseTokens(lexed: Lexed, onDecl?: (cst: CstNode) => void): ParseResult {
  const lexErrors: ParseResult["lexErrors"] = lexed.errors.map((e) => ({ offset: e.offset, length: e.length, kind: "char" as const }));
  for (const t of lexed.groups.errors ?? []) {
    lexErrors.push({ offset: t.startOffset, length: t.image.length, kind: t.tokenType === T.HashComment ? "hash" : "comment" });
  }
  for (const t of lexed.tokens) {
    if (t.tokenType === T.UnterminatedString) lexErrors.push({ offset: t.startOffset, length: t.image.length, kind: "string" });
  }
  const p = parser();
  p.onDecl = onDecl;
  try {
    return parseAll(p, lexed, lexErrors);
  } finally {
    // The parser is reused: keep neither this file's tokens nor its errors alive in it.
    p.onDecl = undefined;
    p.input = [];
  }
}

function parseAll(p: NnetParser, lexed: Lexed, lexErrors: ParseResult["lexErrors"]): ParseResult {
  const tokens = lexed.tokens;
  const result: ParseResult = { csts: [], tokens, comments: lexed.groups.comments ?? [], lexErrors, parseErrors: [], skipped: [] };
  let start = 0;
  while (start < tokens.length) {
    p.input = tokens.slice(start);
    p.depth = 0;
    let cst: CstNode;
    try {
      cst = p.file();
    } catch (e) {
      if (!(e instanceof TooDeep)) throw e;
      return { ...result, csts: [], parseErrors: [], skipped: [], tooDeep: e.token };
    }
    result.csts.push(cst);
    result.parseErrors.push(...p.errors);
    const consumed = consumedCount();
    let next = start + Math.max(consumed, 0);
    if (next >= tokens.length) break;
    // The parser stopped before the end: report the token it could not use, then resume at the next declaration.
    const stuck = tokens[next]!;
    if (!p.errors.some((e) => e.token.startOffset === stuck.startOffset)) {
      result.skipped.push({ token: stuck, expected: "a declaration: model, block, dataset, train or import" });
    }
    next++;
    while (next < tokens.length && !TOP_LEVEL.has(tokens[next]!.tokenType)) next++;
    start = next;
  }
  return result;
}

/** How many tokens a `file` CST covers: the index just past the last token in it, relative to the input. */
function consumedCount(): number {
  // Chevrotain tracks the position itself; read it back from the parser state.
  return (parser() as unknown as { currIdx: number }).currIdx + 1;
}

export type { CstNode, IToken };
export { EOF };
