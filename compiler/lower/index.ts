// AST → IR. Resolves names, expands blocks and repeat, binds arguments to signatures, and lowers
// datasets and training plans. Shapes are left for the checker (compiler/check/).
import type { Arg, Decl, Expr, FileAst, Name, Setting, Span, Stage, Stmt } from "../ast/types.js";
import { diag, suggest, type Diagnostic } from "../diagnostics.js";
import { isOp, OP_NAMES, OPS, type OpKind } from "../ir/ops.js";
import type { AttrValue, DType, IRCall, IRDataset, IRDimSymbol, IRExport, IRField, IRInit, IRLossTerm, IRModel, IRModule, IRNode, IRLora, IRMix, IRPhase, IRPlan, IRPrune, IRSpan, IRStep } from "../ir/types.js";
import { IR_VERSION } from "../ir/types.js";
import { LOSSES, METRICS, OPTIMIZERS, PREPROCESS, SCHEDULES, SETTINGS, SOURCES } from "../plan/tables.js";
import type { SourceFile } from "../source.js";
import { bindArgs, BUILTINS, describe, ERROR, isBuiltin, pyMod, type BoundArg, type Value } from "./values.js";

export interface LoadedFile {
  source: SourceFile;
  ast: FileAst;
  /** Blocks visible in this file: its own and the ones it imports, by name. */
  blocks: Map<string, BlockRef>;
  /** Names whose import failed (already reported): uses of them are not reported again. */
  failedImports: Set<string>;
}

export interface BlockRef {
  decl: Extract<Decl, { kind: "block" }>;
  file: string;
}

/** A block input with a declared type, checked once shapes are known. */
export interface Constraint {
  model: string;
  node: string;
  name: string;
  dtype: string;
  dims: (number | string | null)[] | null;
  /** The call that passes the tensor. */
  span: IRSpan;
  /** The block's input statement. */
  declared: Span;
  /** Constraints of one block call share dimension names: input q: f32[batch, n, d] and kv: f32[batch, m, d]. */
  call: number;
}

export interface LowerResult {
  module: IRModule;
  constraints: Constraint[];
}

const MAX_NODES = 200_000;
/** Bounds on expansion, so that no input can make the compiler run for long. */
const MAX_REPEAT = 10_000;
const MAX_STEPS = 200_000;

class ModelLowering {
  nodes: IRNode[] = [];
  dims = new Map<string, IRDimSymbol>();
  private names = new Set<string>();
  private counters = new Map<string, number>();
  layers = new Map<string, { op: OpKind; attrs: Record<string, AttrValue>; used: boolean }>();
  topBindings: { name: string; node: string; span: Span }[] = [];
  tooBig = false;
  /** repeat iterations so far. */
  steps = 0;

  constructor(readonly lw: Lowering, readonly modelName: string) {}

  /** Keras-style unique names: conv2d, conv2d_1, conv2d_2 … within one path prefix. */
  uniqueName(prefix: string, base: string): string {
    const key = prefix + base;
    let n = this.counters.get(key) ?? 0;
    let name = n === 0 ? key : `${key}_${n}`;
    while (this.names.has(name)) name = `${key}_${++n}`;
    this.counters.set(key, n + 1);
    this.names.add(name);
    return name;
  }
  claimName(name: string, span: Span): boolean {
    if (this.names.has(name)) {
      this.lw.diagnostics.push(diag("duplicateDecl", span, { kind: "layer", name }));
      return false;
    }
    this.names.add(name);
    return true;
  }

  addNode(op: string, name: string, inputs: string[], attrs: Record<string, AttrValue>, span: Span): Value {
    if (this.nodes.length >= MAX_NODES) {
      if (!this.tooBig) this.lw.diagnostics.push(diag("outOfRange", span, { callee: `model ${this.modelName}`, name: "node count", value: `over ${MAX_NODES}`, range: `at most ${MAX_NODES} (check repeat counts)` }));
      this.tooBig = true;
      return ERROR;
    }
    const id = `n${this.nodes.length}`;
    this.nodes.push({ id, op, name, inputs, attrs, shape: null, dtype: null, span: this.lw.irSpan(span) });
    return { k: "tensor", node: id };
  }
}

interface Frame {
  vars: Map<string, Value>;
  /** Layer-name prefix: "" at model level, "Stage_1/Bottleneck/" inside blocks. */
  path: string;
  /** Blocks being expanded, to detect recursion. */
  stack: string[];
  file: LoadedFile;
  m: ModelLowering;
  inBlock: boolean;
}

export class Lowering {
  diagnostics: Diagnostic[] = [];
  /** Per model: a model-level binding name → its values' nodes, where those carry another label (IRFreeze.nodes). */
  private relabelled = new Map<string, Map<string, string[]>>();
  /** Models and datasets whose lowering reported an error (in a block they use, too): check() skips plans on them. */
  broken = new Set<string>();
  /** The model of the plan being lowered. */
  private planModel = "";
  constraints: Constraint[] = [];
  private calls = 0;
  private current!: LoadedFile;

  constructor(readonly files: Map<string, LoadedFile>) {}

  irSpan(span: Span): IRSpan {
    const f = this.files.get(span.file) ?? this.current;
    return f.source.irSpan(span);
  }

  run(main: LoadedFile): IRModule {
    this.current = main;
    const models: IRModel[] = [];
    const datasets: IRDataset[] = [];
    const plans: IRPlan[] = [];
    const seen = new Map<string, string>();
    for (const d of main.ast.decls) {
      if (d.kind === "import" || !d.name.name) continue;
      const kind = d.kind === "train" ? "train plan for" : d.kind;
      const key = `${d.kind}:${d.name.name}`;
      if (seen.has(key) || (d.kind === "block" && main.blocks.get(d.name.name)?.decl !== d)) {
        this.diagnostics.push(diag("duplicateDecl", d.name.span, { kind, name: d.name.name }));
        continue;
      }
      seen.set(key, kind);
    }
    for (const f of this.files.values()) {
      for (const d of f.ast.decls) if (d.kind === "block") this.checkBlockParams(d);
    }
    const modelDecls = main.ast.decls.filter((d): d is Extract<Decl, { kind: "model" }> => d.kind === "model");
    const datasetDecls = main.ast.decls.filter((d): d is Extract<Decl, { kind: "dataset" }> => d.kind === "dataset");
    const done = new Set<string>();
    for (const d of modelDecls) {
      if (done.has(d.name.name)) continue;
      done.add(d.name.name);
      const before = this.diagnostics.length;
      models.push(this.model(d, main));
      if (this.diagnostics.slice(before).some((x) => x.severity === "error")) this.broken.add(d.name.name);
    }
    const dsDone = new Set<string>();
    for (const d of datasetDecls) {
      if (dsDone.has(d.name.name)) continue;
      dsDone.add(d.name.name);
      const before = this.diagnostics.length;
      datasets.push(this.dataset(d));
      if (this.diagnostics.slice(before).some((x) => x.severity === "error")) this.broken.add(d.name.name);
    }
    const planDone = new Set<string>();
    for (const d of main.ast.decls) {
      if (d.kind !== "train" || planDone.has(d.name.name)) continue;
      planDone.add(d.name.name);
      const plan = this.plan(d, models, datasets);
      if (plan) plans.push(plan);
    }
    return { irVersion: IR_VERSION, file: main.source.path, models, datasets, plans };
  }

  // ── models ─────────────────────────────────────────────────────────────────────────────────────

  model(d: Extract<Decl, { kind: "model" }>, file: LoadedFile): IRModel {
    const m = new ModelLowering(this, d.name.name);
    const frame: Frame = { vars: new Map(), path: "", stack: [], file, m, inBlock: false };
    const inputs: IRModel["inputs"] = [];
    const outputs: IRModel["outputs"] = [];
    this.body(d.body, frame, inputs, outputs);
    const declaresOutput = d.body.some((s) => s.kind === "output");
    if (outputs.length === 0 && !declaresOutput) this.diagnostics.push(diag("noOutputs", d.name.span, { model: d.name.name }));
    // Bindings whose value reaches no output are worth a warning: usually a forgotten rebinding.
    const live = new Set<string>();
    const byId = new Map(m.nodes.map((n) => [n.id, n]));
    const stack = outputs.map((o) => o.node);
    while (stack.length) {
      const id = stack.pop()!;
      if (live.has(id)) continue;
      live.add(id);
      for (const i of byId.get(id)?.inputs ?? []) stack.push(i);
    }
    if (outputs.length && !m.tooBig) {
      for (const b of m.topBindings) if (!live.has(b.node)) this.diagnostics.push(diag("unusedBinding", b.span, { name: b.name }));
      for (const s of d.body) if (s.kind === "layer" && m.layers.get(s.name.name)?.used === false) this.diagnostics.push(diag("unusedBinding", s.name.span, { name: s.name.name }));
    }
    const relabelled = new Map<string, string[]>();
    for (const b of m.topBindings) {
      if (m.nodes[Number(b.node.slice(1))]?.binding !== b.name) relabelled.set(b.name, [...(relabelled.get(b.name) ?? []), b.node]);
    }
    this.relabelled.set(d.name.name, relabelled);
    return {
      name: d.name.name,
      ...(d.doc ? { doc: d.doc } : {}),
      span: this.irSpan(d.name.span),
      dims: [...m.dims.values()],
      inputs,
      outputs,
      nodes: m.nodes,
      params: [],
    };
  }

  private body(stmts: Stmt[], f: Frame, inputs: IRModel["inputs"] | null, outputs: IRModel["outputs"] | null): void {
    for (const s of stmts) {
      if (f.m.tooBig) return;
      switch (s.kind) {
        case "input": {
          if (!inputs) {
            this.diagnostics.push(diag("misplacedStatement", s.span, { what: "input", where: "a repeat body" }));
            break;
          }
          if (!this.modelInput(s, f, inputs)) f.vars.set(s.name.name, ERROR);
          break;
        }
        case "output": {
          if (!outputs) {
            this.diagnostics.push(diag("misplacedStatement", s.span, { what: "output", where: f.inBlock ? "a block (a block's result is out = …)" : "a repeat body" }));
            break;
          }
          const v = s.value ? this.tensorOf(this.expr(s.value, f), s.value.span, `output "${s.name.name}"`) : this.lookupTensor(s.name, f);
          if (v === null) break;
          if (outputs.some((o) => o.name === s.name.name)) {
            this.diagnostics.push(diag("duplicateDecl", s.name.span, { kind: "output", name: s.name.name }));
            break;
          }
          outputs.push({ name: s.name.name, node: v });
          if (s.value) this.label(f, s.name.name, v);
          f.vars.set(s.name.name, { k: "tensor", node: v });
          break;
        }
        case "layer": {
          const inst = this.layerInstance(s.name, s.value, f);
          f.vars.set(s.name.name, inst ?? ERROR);
          break;
        }
        case "bind": {
          if (!s.name.name) break;
          const v = this.expr(s.value, f);
          f.vars.set(s.name.name, v);
          if (v.k === "tensor") {
            this.label(f, s.name.name, v.node);
            if (!f.inBlock) f.m.topBindings.push({ name: s.name.name, node: v.node, span: s.name.span });
          }
          break;
        }
        case "repeat": {
          const n = this.expr(s.count, f);
          if (n.k === "error") break;
          if (n.k === "tensor") {
            this.diagnostics.push(diag("notAValue", s.count.span, { what: "a repeat count", got: "a tensor" }));
            break;
          }
          if (n.k !== "num" || !n.int || n.v < 0) {
            this.diagnostics.push(diag("argumentType", s.count.span, { callee: "repeat", name: "count", expected: "a non-negative integer", got: describe(n) }));
            break;
          }
          if (n.v > MAX_REPEAT) {
            this.diagnostics.push(diag("outOfRange", s.count.span, { callee: "repeat", name: "count", value: String(n.v), range: `at most ${MAX_REPEAT}` }));
            break;
          }
          const saved = s.index ? f.vars.get(s.index.name) : undefined;
          for (let i = 0; i < n.v && !f.m.tooBig; i++) {
            if (++f.m.steps > MAX_STEPS) {
              f.m.tooBig = true;
              this.diagnostics.push(diag("outOfRange", s.count.span, { callee: `model ${f.m.modelName}`, name: "expansion", value: `over ${MAX_STEPS} repeat iterations`, range: `at most ${MAX_STEPS} in all (check nested repeat counts)` }));
              break;
            }
            if (s.index) f.vars.set(s.index.name, { k: "num", v: i, int: true });
            this.body(s.body, f, null, null);
          }
          if (s.index) {
            if (saved) f.vars.set(s.index.name, saved);
            else f.vars.delete(s.index.name);
          }
          break;
        }
      }
    }
  }

  private label(f: Frame, name: string, node: string): void {
    const n = f.m.nodes[Number(node.slice(1))];
    if (n && n.binding === undefined && n.op !== "input") n.binding = f.path + name;
  }

  private modelInput(s: Extract<Stmt, { kind: "input" }>, f: Frame, inputs: IRModel["inputs"]): boolean {
    const name = s.name.name;
    if (!s.type) {
      this.diagnostics.push(diag("inputShape", s.name.span, { name, problem: "a model input needs a type, e.g. f32[batch, 784]" }));
      return false;
    }
    const dtype = s.type.dtype.name as DType;
    if (!["f16", "f32", "f64", "i8", "i32", "i64", "bool"].includes(dtype)) {
      const alias: Record<string, string> = { int: "i32", float: "f32", double: "f64", long: "i64", half: "f16" };
      const better = alias[dtype];
      this.diagnostics.push(diag("inputShape", s.type.dtype.span, { name, problem: `"${dtype}" is not a tensor element type (f32, i32, …)${better ? `; did you mean "${better}"?` : ""}` }));
      return false;
    }
    const dims = s.type.dims ?? [];
    if (dims.length === 0) {
      this.diagnostics.push(diag("inputShape", s.type.span, { name, problem: "an input needs at least a batch dimension, e.g. f32[batch, 784]" }));
      return false;
    }
    const shape: (number | string)[] = [];
    for (const d of dims) {
      if (d.kind === "const") {
        if (!Number.isInteger(d.value) || d.value < 1) {
          this.diagnostics.push(diag("inputShape", d.span, { name, problem: `dimension ${d.value} is not a positive integer` }));
          return false;
        }
        shape.push(d.value);
      } else {
        const prev = f.m.dims.get(d.name);
        if (d.max !== undefined && (!Number.isInteger(d.max) || d.max < 1)) {
          this.diagnostics.push(diag("inputShape", d.span, { name, problem: `the bound of "${d.name}" must be a positive integer` }));
          return false;
        }
        if (prev && d.max !== undefined && prev.max !== undefined && prev.max !== d.max) {
          this.diagnostics.push(diag("inputShape", d.span, { name, problem: `"${d.name}" is bounded by ${prev.max} elsewhere and by ${d.max} here` }));
          return false;
        }
        if (!prev || (d.max !== undefined && prev.max === undefined)) f.m.dims.set(d.name, { name: d.name, ...(d.max !== undefined ? { max: d.max } : {}) });
        shape.push(d.name);
      }
    }
    if (inputs.some((i) => i.name === name) || f.vars.has(name)) {
      this.diagnostics.push(diag("duplicateDecl", s.name.span, { kind: "input", name }));
      return false;
    }
    if (!f.m.claimName(name, s.name.span)) return false;
    const v = f.m.addNode("input", name, [], {}, s.name.span);
    if (v.k !== "tensor") return false;
    const node = f.m.nodes[f.m.nodes.length - 1]!;
    node.shape = shape;
    node.dtype = dtype;
    inputs.push({ name, node: v.node, dtype, shape });
    f.vars.set(name, v);
    return true;
  }

  private layerInstance(name: Name, e: Expr, f: Frame): Value | null {
    const callee = e.kind === "call" ? e.callee : e.kind === "name" ? { name: e.name, span: e.span } : null;
    if (!callee || !isOp(callee.name)) {
      this.diagnostics.push(diag("notALayer", name.span, { name: name.name }));
      return null;
    }
    const args = e.kind === "call" ? this.args(e.args, f) : [];
    const op = OPS[callee.name];
    if (args.some((a) => !a.name && a.value.k === "tensor")) {
      this.diagnostics.push(diag("notAValue", e.span, { what: `the arguments of layer "${name.name}"`, got: `a tensor: declare layer ${name.name} = ${callee.name}(…) without it, and apply it with x -> ${name.name}` }));
      return null;
    }
    const attrs = bindArgs(callee.name, op, args, e.span, this.diagnostics, new Set(f.m.dims.keys()));
    if (!attrs) return null;
    const full = f.path + name.name;
    if (!f.m.claimName(full, name.span)) return null;
    f.m.layers.set(full, { op: callee.name, attrs, used: false });
    return { k: "layer", name: full, op: callee.name };
  }

  private args(args: Arg[], f: Frame): BoundArg[] {
    return args.map((a) => ({ ...(a.name ? { name: a.name } : {}), value: this.expr(a.value, f), span: a.value.span }));
  }

  private lookupTensor(n: Name, f: Frame): string | null {
    const v = f.vars.get(n.name);
    if (!v) {
      this.diagnostics.push(diag("undefinedName", n.span, { name: n.name, ...sugg(n.name, tensorNames(f)) }));
      return null;
    }
    return this.tensorOf(v, n.span, `"${n.name}"`);
  }

  private tensorOf(v: Value, span: Span, what: string): string | null {
    if (v.k === "tensor") return v.node;
    if (v.k === "error") return null;
    this.diagnostics.push(diag("notATensor", span, { what, got: describe(v) }));
    return null;
  }

  // ── expressions ──────────────────────────────────────────────────────────────────────────────────

  expr(e: Expr, f: Frame): Value {
    switch (e.kind) {
      case "num":
        return { k: "num", v: e.value, int: e.isInt };
      case "str":
        return { k: "str", v: e.value };
      case "bool":
        return { k: "bool", v: e.value };
      case "name": {
        if (!e.name) return ERROR;
        return f.vars.get(e.name) ?? { k: "word", v: e.name };
      }
      case "list":
        return { k: "list", items: e.items.map((i) => this.expr(i, f)) };
      case "unary": {
        const v = this.expr(e.operand, f);
        if (e.op === "not") return this.boolOperand(v, e.operand.span, "not", f) ? { k: "bool", v: !(v as { v: boolean }).v } : ERROR;
        if (v.k === "num") return { ...v, v: -v.v };
        if (v.k === "tensor") return this.tensorArith("mul", v, { k: "num", v: -1, int: true }, e.span, f);
        return this.needNumber(v, e.operand.span, "negation", f);
      }
      case "binary":
        return this.binary(e, f);
      case "ternary": {
        const c = this.expr(e.cond, f);
        if (c.k === "error") return ERROR;
        if (c.k !== "bool") {
          this.diagnostics.push(diag("argumentType", e.cond.span, { callee: "a conditional", name: "condition", expected: "true or false, known at compile time", got: describe(c) }));
          return ERROR;
        }
        return this.expr(c.v ? e.then : e.else, f);
      }
      case "call":
        if (isBuiltin(e.callee.name) && f.vars.get(e.callee.name)?.k !== "layer" && !f.file.blocks.has(e.callee.name)) return this.builtin(e, f);
        return this.apply(e.callee, e.args, [], e.span, undefined, f, null);
      case "chain": {
        let cur = this.expr(e.head, f);
        for (const st of e.stages) {
          if (cur.k === "error") return ERROR;
          const piped = this.pipedInputs(cur, e.head.span, st, f);
          if (!piped) return ERROR;
          cur = this.apply(st.callee, st.args ?? [], piped, st.span, st.alias, f, st);
        }
        return cur;
      }
    }
  }

  private pipedInputs(v: Value, span: Span, st: Stage, f: Frame): string[] | null {
    if (v.k === "tensor") return [v.node];
    if (v.k === "list" && v.items.length && v.items.every((i) => i.k === "tensor")) return v.items.map((i) => (i as { node: string }).node);
    if (v.k === "word") {
      this.diagnostics.push(diag("undefinedName", span, { name: v.v, ...sugg(v.v, tensorNames(f)) }));
      return null;
    }
    if (v.k === "error" || (v.k === "list" && v.items.some((i) => i.k === "error"))) return null;
    this.diagnostics.push(diag("notATensor", span, { what: `-> ${st.callee.name}`, got: describe(v) }));
    return null;
  }

  private needNumber(v: Value, span: Span, what: string, f: Frame): Value {
    if (v.k === "error") return ERROR;
    if (v.k === "word") this.diagnostics.push(diag("undefinedName", span, { name: v.v, ...sugg(v.v, [...f.vars.keys()]) }));
    else this.diagnostics.push(diag("argumentType", span, { callee: what, name: "operand", expected: "a number or a tensor", got: describe(v) }));
    return ERROR;
  }

  /** Whether a value is a boolean; reports NN2007 at `span` when it is not (an error value was reported already). */
  private boolOperand(v: Value, span: Span, op: string, f: Frame): v is Extract<Value, { k: "bool" }> {
    if (v.k === "bool") return true;
    if (v.k === "word") this.diagnostics.push(diag("undefinedName", span, { name: v.v, ...sugg(v.v, [...f.vars.keys()]) }));
    else if (v.k !== "error") this.diagnostics.push(diag("argumentType", span, { callee: `"${op}"`, name: "operand", expected: "true or false, known at compile time (a comparison, a bool parameter)", got: describe(v) }));
    return false;
  }

  /** min, max, floor, ceil (BUILTINS): numbers known at compile time in, a number out. */
  private builtin(e: Extract<Expr, { kind: "call" }>, f: Frame): Value {
    const name = e.callee.name;
    const def = BUILTINS[name]!;
    const named = e.args.find((a) => a.name);
    if (named) {
      this.diagnostics.push(diag("unknownArgument", named.name!.span, { callee: name, name: named.name!.name, accepted: "no named arguments" }));
      return ERROR;
    }
    let vals = e.args.map((a) => ({ v: this.expr(a.value, f), span: a.value.span }));
    if (vals.some((x) => x.v.k === "error")) return ERROR;
    // max([a, b]) is max(a, b), as in Python.
    if (def.arity[1] > 1 && vals.length === 1 && vals[0]!.v.k === "list") vals = (vals[0]!.v as { items: Value[] }).items.map((v) => ({ v, span: vals[0]!.span }));
    if (vals.length < def.arity[0]) {
      this.diagnostics.push(diag("missingArgument", e.span, { callee: name, name: def.arity[1] > 1 ? "a" : "x", signature: def.signature }));
      return ERROR;
    }
    if (vals.length > def.arity[1]) {
      this.diagnostics.push(diag("tooManyArguments", e.args[def.arity[1]]!.span, { callee: name, max: def.arity[1], signature: def.signature }));
      return ERROR;
    }
    for (const x of vals) {
      if (x.v.k === "num") continue;
      if (x.v.k === "tensor") this.diagnostics.push(diag("notAValue", x.span, { what: `an argument of ${name}`, got: `a tensor: ${def.signature} computes a number at compile time (widths, counts, conditions)` }));
      else if (x.v.k === "word") this.diagnostics.push(diag("undefinedName", x.span, { name: x.v.v, ...sugg(x.v.v, [...f.vars.keys()]) }));
      else this.diagnostics.push(diag("argumentType", x.span, { callee: name, name: "x", expected: "a number known at compile time", got: describe(x.v) }));
      return ERROR;
    }
    return def.apply(vals.map((x) => x.v as Extract<Value, { k: "num" }>));
  }

  private binary(e: Extract<Expr, { kind: "binary" }>, f: Frame): Value {
    if (e.op === "and" || e.op === "or") {
      // Short-circuit, as in Python: the right operand is not evaluated (its layers not created) when the left decides.
      const l = this.expr(e.left, f);
      if (!this.boolOperand(l, e.left.span, e.op, f)) return ERROR;
      if (l.v === (e.op === "or")) return l;
      const r = this.expr(e.right, f);
      return this.boolOperand(r, e.right.span, e.op, f) ? r : ERROR;
    }
    const l = this.expr(e.left, f);
    const r = this.expr(e.right, f);
    if (l.k === "error" || r.k === "error") return ERROR;
    const cmp = ["==", "!=", "<", ">", "<=", ">="].includes(e.op);
    if (cmp) {
      if (l.k === "num" && r.k === "num") {
        const a = l.v;
        const b = r.v;
        const v = e.op === "==" ? a === b : e.op === "!=" ? a !== b : e.op === "<" ? a < b : e.op === ">" ? a > b : e.op === "<=" ? a <= b : a >= b;
        return { k: "bool", v };
      }
      const simple = (x: Value) => (x.k === "str" || x.k === "word" || x.k === "bool" ? `${x.k === "word" ? "str" : x.k}:${String(x.v)}` : undefined);
      const sl = simple(l);
      const sr = simple(r);
      if ((e.op === "==" || e.op === "!=") && sl !== undefined && sr !== undefined && sl.split(":")[0] === sr.split(":")[0]) return { k: "bool", v: (sl === sr) === (e.op === "==") };
      this.diagnostics.push(diag("argumentType", e.opSpan, { callee: `"${e.op}"`, name: "operands", expected: "two numbers (or two names for == and !=), known at compile time", got: `${describe(l)} and ${describe(r)}` }));
      return ERROR;
    }
    if (l.k === "num" && r.k === "num") {
      switch (e.op) {
        case "+": return { k: "num", v: l.v + r.v, int: l.int && r.int };
        case "-": return { k: "num", v: l.v - r.v, int: l.int && r.int };
        case "*": return { k: "num", v: l.v * r.v, int: l.int && r.int };
        case "/":
        case "%": {
          if (r.v === 0) {
            this.diagnostics.push(diag("divisionByZero", e.opSpan, { op: e.op, left: String(l.v) }));
            return ERROR;
          }
          if (e.op === "%") return { k: "num", v: pyMod(l.v, r.v), int: l.int && r.int };
          const q = l.v / r.v;
          return { k: "num", v: q, int: l.int && r.int && Number.isInteger(q) };
        }
        default:
          this.diagnostics.push(diag("notATensor", e.opSpan, { what: "@ (matmul)", got: "numbers" }));
          return ERROR;
      }
    }
    if (e.op === "%") {
      this.diagnostics.push(diag("argumentType", e.opSpan, { callee: '"%"', name: "operands", expected: "two numbers known at compile time (% has no tensor form)", got: `${describe(l)} and ${describe(r)}` }));
      return ERROR;
    }
    const op = ({ "+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul" } as const)[e.op as "+"];
    if ((l.k === "tensor" || l.k === "num") && (r.k === "tensor" || r.k === "num")) return this.tensorArith(op, l, r, e.opSpan, f);
    const badSide = l.k !== "tensor" && l.k !== "num" ? { v: l, span: e.left.span } : { v: r, span: e.right.span };
    return this.needNumber(badSide.v, badSide.span, `"${e.op}"`, f);
  }

  private tensorArith(op: string, l: Value, r: Value, span: Span, f: Frame): Value {
    const asNode = (v: Value): string | null => {
      if (v.k === "tensor") return v.node;
      if (v.k === "num") {
        const c = f.m.addNode("constant", f.m.uniqueName(f.path, "constant"), [], { value: v.v }, span);
        return c.k === "tensor" ? c.node : null;
      }
      return null;
    };
    if (op === "matmul" && (l.k !== "tensor" || r.k !== "tensor")) {
      this.diagnostics.push(diag("notATensor", span, { what: "@ (matmul)", got: "a number" }));
      return ERROR;
    }
    const a = asNode(l);
    const b = asNode(r);
    if (a === null || b === null) return ERROR;
    return f.m.addNode(op, f.m.uniqueName(f.path, op), [a, b], {}, span);
  }

  /** Apply a layer, layer instance or block to piped inputs and arguments. */
  private apply(callee: Name, rawArgs: Arg[], piped: string[], span: Span, alias: Name | undefined, f: Frame, stage: Stage | null): Value {
    const m = f.m;
    const inst = f.vars.get(callee.name);
    if (inst?.k === "error" || f.file.failedImports.has(callee.name)) return ERROR; // already reported
    if (inst && inst.k === "layer") {
      // x -> enc, or enc(x): a layer instance takes tensors only; its arguments were fixed when declared.
      const given = this.args(rawArgs, f);
      if (given.some((a) => a.value.k === "error")) return ERROR;
      if (given.some((a) => a.name || a.value.k !== "tensor")) {
        this.diagnostics.push(diag("tooManyArguments", span, { callee: callee.name, max: 0, signature: `${callee.name} is a layer instance: its arguments were fixed where it was declared; pass only tensors` }));
        return ERROR;
      }
      const def = m.layers.get(inst.name)!;
      const inputs = [...piped, ...given.map((a) => (a.value as { node: string }).node)];
      const op = OPS[def.op];
      if (inputs.length < op.inputs[0] || inputs.length > op.inputs[1]) {
        this.diagnostics.push(diag("wrongInputCount", span, { callee: callee.name, expected: range(op.inputs), got: inputs.length }));
        return ERROR;
      }
      def.used = true;
      return m.addNode(def.op, inst.name, inputs, def.attrs, span);
    }
    if (inst && inst.k === "tensor" && stage && !isOp(callee.name) && !f.file.blocks.has(callee.name)) {
      this.diagnostics.push(diag("notALayer", callee.span, { name: callee.name }));
      return ERROR;
    }
    const args = this.args(rawArgs, f);
    // Leading positional tensors are inputs: f(x, 3) is x -> f(3).
    const inputs = [...piped];
    let firstParam = 0;
    while (firstParam < args.length && !args[firstParam]!.name && args[firstParam]!.value.k === "tensor") {
      inputs.push((args[firstParam]!.value as { node: string }).node);
      firstParam++;
    }
    if (args.some((a) => a.value.k === "error")) return ERROR;
    const rest = args.slice(firstParam);
    const block = f.file.blocks.get(callee.name);
    if (block) return this.expandBlock(block, callee, rest, inputs, span, alias, f);
    if (!isOp(callee.name)) {
      const candidates = [...OP_NAMES, ...f.file.blocks.keys(), ...[...f.vars.entries()].filter(([, v]) => v.k === "layer").map(([k]) => k)];
      this.diagnostics.push(diag("unknownLayer", callee.span, { name: callee.name, ...sugg(callee.name, candidates) }));
      return ERROR;
    }
    const op = OPS[callee.name];
    if (inputs.length < op.inputs[0] || inputs.length > op.inputs[1]) {
      this.diagnostics.push(diag("wrongInputCount", span, { callee: callee.name, expected: range(op.inputs), got: inputs.length }));
      return ERROR;
    }
    const attrs = bindArgs(callee.name, op, rest, span, this.diagnostics, new Set(m.dims.keys()), op.inputs[1] === 0 ? "" : "x");
    if (!attrs) return ERROR;
    // Named tensor arguments (attention's mask) follow the positional inputs, in parameter order.
    for (const s of op.params) {
      if (s.type !== "tensor" || attrs[s.name] !== true) continue;
      const a = rest.find((r) => r.name?.name === s.name)!;
      inputs.push((a.value as { node: string }).node);
    }
    let name: string;
    if (alias) {
      name = f.path + alias.name;
      if (!m.claimName(name, alias.span)) return ERROR;
    } else name = m.uniqueName(f.path, callee.name);
    return m.addNode(callee.name, name, inputs, attrs, span);
  }

  private expandBlock(ref: BlockRef, callee: Name, args: BoundArg[], inputs: string[], span: Span, alias: Name | undefined, f: Frame): Value {
    const d = ref.decl;
    if (f.stack.includes(d.name.name)) {
      this.diagnostics.push(diag("recursiveBlock", callee.span, { name: d.name.name, path: [...f.stack, d.name.name].join(" → ") }));
      return ERROR;
    }
    const file = this.files.get(ref.file)!;
    const declaredInputs = d.body.filter((s): s is Extract<Stmt, { kind: "input" }> => s.kind === "input");
    const inputNames = declaredInputs.length ? declaredInputs.map((s) => s.name.name) : ["in"];
    if (inputs.length !== inputNames.length) {
      this.diagnostics.push(diag("wrongInputCount", span, { callee: d.name.name, expected: String(inputNames.length), got: inputs.length }));
      return ERROR;
    }
    // Block parameters: evaluate defaults in the block's own scope, in order.
    const vars = new Map<string, Value>();
    if (!this.checkBlockParams(d)) return ERROR;
    const sig = { doc: "", params: d.params.map((p) => ({ name: p.name.name, type: paramType(p.type.name), ...(p.default ? { default: null } : {}) })) };
    const attrs = bindArgs(d.name.name, sig, args, span, this.diagnostics, new Set(f.m.dims.keys()), inputNames.join(", "));
    if (!attrs) return ERROR;
    const given = new Set(args.map((a, i) => a.name?.name ?? d.params[i]?.name.name));
    const innerFrame: Frame = { vars, path: "", stack: [...f.stack, d.name.name], file, m: f.m, inBlock: true };
    for (const pdecl of d.params) {
      const n = pdecl.name.name;
      if (given.has(n)) {
        const a = args.find((x, i) => (x.name?.name ?? d.params[i]?.name.name) === n)!;
        vars.set(n, a.value);
      } else if (pdecl.default) {
        const v = this.expr(pdecl.default, innerFrame);
        if (v.k === "tensor") {
          this.diagnostics.push(diag("notAValue", pdecl.default.span, { what: `the default of "${n}"`, got: "a tensor" }));
          return ERROR;
        }
        if (!this.defaultFits(d, pdecl, v)) return ERROR;
        vars.set(n, v);
      }
    }
    let instName: string;
    if (alias) {
      instName = f.path + alias.name;
      if (!f.m.claimName(instName, alias.span)) return ERROR;
    } else instName = f.m.uniqueName(f.path, d.name.name);
    innerFrame.path = instName + "/";
    inputNames.forEach((n, i) => vars.set(n, { k: "tensor", node: inputs[i]! }));
    for (const s of declaredInputs) {
      if (!s.type) continue;
      const idx = inputNames.indexOf(s.name.name);
      this.constraints.push({
        model: f.m.modelName,
        node: inputs[idx]!,
        name: s.name.name,
        dtype: s.type.dtype.name,
        dims: s.type.dims ? s.type.dims.map((x) => (x.kind === "const" ? x.value : x.name === "_" ? null : x.name)) : null,
        span: this.irSpan(callee.span),
        declared: s.span,
        call: this.calls,
      });
    }
    this.calls++;
    const saved = this.current;
    this.current = file;
    this.body(d.body.filter((s) => s.kind !== "input"), innerFrame, null, null);
    this.current = saved;
    const out = vars.get("out");
    if (!out) {
      this.diagnostics.push(diag("blockWithoutOut", d.name.span, { block: d.name.name }));
      return ERROR;
    }
    return out;
  }

  /** Block parameters are int, float, bool or string; literal defaults must have that type. */
  checkBlockParams(d: BlockRef["decl"]): boolean {
    let ok = true;
    for (const pd of d.params) {
      if (pd.type.name && !["int", "float", "bool", "string"].includes(pd.type.name)) {
        this.diagnostics.push(diag("argumentType", pd.type.span, { callee: `block ${d.name.name}`, name: pd.name.name, expected: "typed int, float, bool or string", got: `the type ${pd.type.name}`, hint: "tensors reach a block as inputs: input x: f32[…] in its body" }));
        ok = false;
      } else if (pd.default && ["num", "str", "bool"].includes(pd.default.kind)) {
        const e = pd.default;
        const v: Value = e.kind === "num" ? { k: "num", v: e.value, int: e.isInt } : e.kind === "str" ? { k: "str", v: e.value } : { k: "bool", v: (e as { value: boolean }).value };
        ok = this.defaultFits(d, pd, v) && ok;
      }
    }
    return ok;
  }

  private defaultFits(d: BlockRef["decl"], pd: BlockRef["decl"]["params"][number], v: Value): boolean {
    const t = pd.type.name;
    const fits = v.k === "error" || (t === "int" ? v.k === "num" && v.int : t === "float" ? v.k === "num" : t === "bool" ? v.k === "bool" : t === "string" ? v.k === "str" : true);
    if (!fits) this.diagnostics.push(diag("argumentType", pd.default!.span, { callee: `block ${d.name.name}`, name: pd.name.name, expected: t === "int" ? "an integer" : t === "float" ? "a number" : t === "bool" ? "true or false" : "a string", got: describe(v) }));
    return fits;
  }

  // ── datasets ─────────────────────────────────────────────────────────────────────────────────────

  dataset(d: Extract<Decl, { kind: "dataset" }>): IRDataset {
    const settings = this.settings(d.settings, "dataset");
    const ds: IRDataset = { name: d.name.name, ...(d.doc ? { doc: d.doc } : {}), span: this.irSpan(d.name.span), source: null, test: null, fields: [], split: {}, filter: null };
    const src = settings.get("source");
    if (src) ds.source = this.call(src, SOURCES, "source");
    else this.diagnostics.push(diag("missingSetting", d.name.span, { where: `dataset "${d.name.name}"`, name: "source", example: SETTINGS.source!.example }));
    const test = settings.get("test");
    if (test) ds.test = this.call(test, SOURCES, "source");
    const split = settings.get("split");
    if (split) ds.split = bindArgs("split", SETTINGS.split!.sig!, this.planArgs(split.args), split.span, this.diagnostics) ?? {};
    const filter = settings.get("filter");
    const filterArgs = filter ? bindArgs("filter", SETTINGS.filter!.sig!, this.planArgs(filter.args), filter.span, this.diagnostics) : null;
    const columns = ds.source ? SOURCES[ds.source.fn]?.columns ?? null : null;
    const fieldNames = new Set<string>();
    for (const fd of d.fields) {
      if (fieldNames.has(fd.name.name)) {
        this.diagnostics.push(diag("duplicateDecl", fd.name.span, { kind: "field", name: fd.name.name }));
        continue;
      }
      fieldNames.add(fd.name.name);
      const field = this.field(fd, columns, ds.source?.fn ?? "the", ds.source);
      if (field) ds.fields.push(field);
    }
    if (filter && filterArgs) {
      const name = String(filterArgs.field);
      const f = ds.fields.find((x) => x.name === name);
      if (!f) this.diagnostics.push(diag("unknownTensorRef", filter.args[0]?.value.span ?? filter.span, { name, outputs: "", fields: ds.fields.map((x) => x.name).join(", "), ...sugg(name, ds.fields.map((x) => x.name)) }));
      else if (!f.dtype.startsWith("i") || f.shape.length > 0) this.diagnostics.push(diag("fieldShape", filter.span, { field: name, problem: "filter needs a scalar integer field, such as a class label" }));
      else ds.filter = { field: name, values: filterArgs.values as number[] };
    }
    return ds;
  }

  private field(fd: Extract<Decl, { kind: "dataset" }>["fields"][number], columns: readonly string[] | null, sourceName: string, source: IRCall | null): IRField | null {
    const dtype = fd.type.dtype.name as DType;
    if (!["f16", "f32", "f64", "i8", "i32", "i64", "bool"].includes(dtype)) {
      this.diagnostics.push(diag("fieldShape", fd.type.dtype.span, { field: fd.name.name, problem: `"${dtype}" is not a tensor element type` }));
      return null;
    }
    const shape: (number | string)[] = [];
    for (const dd of fd.type.dims ?? []) {
      if (dd.kind === "const" && (!Number.isInteger(dd.value) || dd.value < 1)) {
        this.diagnostics.push(diag("fieldShape", dd.span, { field: fd.name.name, problem: `dimension ${dd.value} is not a positive integer` }));
        return null;
      }
      shape.push(dd.kind === "const" ? dd.value : dd.name);
    }
    // A field is a column piped through preprocessing steps: column -> step(…) -> step(…); or a step that
    // generates values (random_normal) in the column's place.
    let head = fd.value.kind === "chain" ? fd.value.head : fd.value;
    let stages: Stage[] = fd.value.kind === "chain" ? fd.value.stages : [];
    const generator = (head.kind === "call" ? head.callee.name : head.kind === "name" ? head.name : "") || "";
    if (Object.hasOwn(PREPROCESS, generator) && PREPROCESS[generator]!.generates) {
      if (!shape.every((d) => typeof d === "number")) {
        this.diagnostics.push(diag("fieldShape", fd.type.span, { field: fd.name.name, problem: `${generator} draws values of the declared shape, which must be numbers` }));
        return null;
      }
      const first: Stage = head.kind === "call" ? { callee: head.callee, args: head.args, span: head.span } : { callee: { name: generator, span: head.span }, args: null, span: head.span };
      stages = [first, ...stages];
      head = { kind: "name", name: "", span: head.span };
    } else if (head.kind !== "name" || !head.name) {
      this.diagnostics.push(diag("fieldShape", head.span, { field: fd.name.name, problem: "a field starts with a source column name, e.g. images -> scale(1 / 255)" }));
      return null;
    }
    if (head.name && columns && !columns.includes(head.name)) {
      this.diagnostics.push(diag("unknownColumn", head.span, { name: head.name, source: sourceName, columns: columns.join(", "), ...sugg(head.name, columns) }));
      return null;
    }
    const steps: IRCall[] = [];
    // dtype "*": a column's raw values, which any declared element type can take.
    type Produced = { dtype: string; shape: number[] };
    const columnShape = source ? (SOURCES[source.fn]?.shapeOf?.(head.name, source.args) ?? null) : null;
    let produced = (columnShape ? { dtype: "*", shape: columnShape } : null) as Produced | null;
    for (const st of stages) {
      const c = this.call({ key: st.callee, args: st.args ?? [], span: st.span }, PREPROCESS, "preprocessing step", true);
      if (!c) return null;
      steps.push(c);
      const prev: Produced | null = produced;
      const def = PREPROCESS[c.fn]!;
      if (def.generates && (steps.length > 1 || head.name)) {
        this.diagnostics.push(diag("fieldShape", st.span, { field: fd.name.name, problem: `${c.fn} reads no input: write it in place of the column (field noise: f32[100] = ${c.fn}(std: 1))` }));
        return null;
      }
      if (def.generates) produced = { dtype: "f32", shape: shape as number[] };
      else if (def.produces) produced = def.produces(c.args, prev);
      else if (c.fn === "reshape") {
        // -1 takes what the other dimensions leave of the values before it, when their number is known.
        const to = c.args.shape as number[];
        const known = to.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
        const have = prev ? prev.shape.reduce((a, b) => a * b, 1) : null;
        produced = !to.includes(-1) ? { dtype: prev?.dtype ?? dtype, shape: to } : have !== null && have % known === 0 ? { dtype: prev!.dtype, shape: to.map((d) => (d === -1 ? have / known : d)) } : null;
      }
      else if (c.fn === "cast" && prev) produced = { dtype: String(c.args.dtype), shape: prev.shape };
    }
    if (produced && ((produced.dtype !== "*" && produced.dtype !== dtype) || produced.shape.join(",") !== shape.join(","))) {
      this.diagnostics.push(diag("fieldShape", fd.type.span, { field: fd.name.name, problem: `${steps.length ? "its steps produce" : `column ${head.name} holds`} ${produced.dtype === "*" ? "" : produced.dtype}[${produced.shape.join(", ")}] but it is declared ${dtype}[${shape.join(", ")}]` }));
      return null;
    }
    return { name: fd.name.name, dtype, shape, column: head.name, steps, span: this.irSpan(fd.name.span) };
  }

  // ── training plans ──────────────────────────────────────────────────────────────────────────────

  private settings(list: Setting[], where: "train" | "phase" | "step" | "dataset"): Map<string, Setting> {
    const out = new Map<string, Setting>();
    const allowed = Object.entries(SETTINGS).filter(([, s]) => s.in.includes(where)).map(([k]) => k);
    for (const s of list) {
      if (!s.key.name) continue;
      if (!allowed.includes(s.key.name)) {
        const elsewhere = SETTINGS[s.key.name];
        if (elsewhere) this.diagnostics.push(diag("misplacedStatement", s.key.span, { what: `"${s.key.name}"`, where: `a ${where}${elsewhere.in.length ? ` (it belongs in a ${elsewhere.in.join(" or ")})` : ""}` }));
        else this.diagnostics.push(diag("unknownSetting", s.key.span, { where, name: s.key.name, accepted: allowed.join(", "), ...sugg(s.key.name, allowed) }));
        continue;
      }
      if (out.has(s.key.name)) {
        this.diagnostics.push(diag("duplicateSetting", s.key.span, { name: s.key.name }));
        continue;
      }
      out.set(s.key.name, s);
    }
    return out;
  }

  /** Plan arguments are compile-time values; bare words stay words (outputs, fields, metric names). */
  private planArgs(args: Arg[]): BoundArg[] {
    const f = this.planFrame();
    return args.map((a) => ({ ...(a.name ? { name: a.name } : {}), value: this.expr(a.value, f), span: a.value.span }));
  }
  private planFrame(): Frame {
    return { vars: new Map(), path: "", stack: [], file: this.current, m: new ModelLowering(this, ""), inBlock: false };
  }

  /** Lower a call such as adam(lr: 1e-3), or a bare name such as cosine, against a table of signatures. */
  private call(s: { key: Name; args: Arg[]; span: Span } | Setting | Expr, table: Record<string, { params: readonly import("../ir/signature.js").ParamSpec[]; doc: string }>, kind: string, isStep = false): IRCall | null {
    let e: Expr | undefined;
    let callee: Name;
    let args: Arg[];
    let span: Span;
    if ("key" in s && !isStep) {
      // A setting whose single argument is the call.
      if (s.args.length !== 1 || s.args[0]!.name) {
        this.diagnostics.push(diag("argumentType", s.span, { callee: s.key.name, name: "value", expected: `one ${kind}`, got: `${s.args.length} arguments` }));
        return null;
      }
      e = s.args[0]!.value;
    } else if (!("key" in s)) e = s;
    if (e) {
      if (e.kind === "call") ({ callee, args, span } = { callee: e.callee, args: e.args, span: e.span });
      else if (e.kind === "name") ({ callee, args, span } = { callee: { name: e.name, span: e.span }, args: [], span: e.span });
      else {
        this.diagnostics.push(diag("argumentType", e.span, { callee: kind, name: "value", expected: `a ${kind} such as ${Object.keys(table)[0]}(…)`, got: "an expression" }));
        return null;
      }
    } else {
      const st = s as { key: Name; args: Arg[]; span: Span };
      ({ callee, args, span } = { callee: st.key, args: st.args, span: st.span });
    }
    const def = table[callee.name];
    if (!def) {
      this.diagnostics.push(diag("unknownPlanFunction", callee.span, { kind, name: callee.name, options: Object.keys(table).join(", "), ...sugg(callee.name, Object.keys(table)) }));
      return null;
    }
    const attrs = bindArgs(callee.name, def, this.planArgs(args), span, this.diagnostics);
    return attrs ? { fn: callee.name, args: attrs, span: this.irSpan(callee.span) } : null;
  }

  plan(d: Extract<Decl, { kind: "train" }>, models: IRModel[], datasets: IRDataset[]): IRPlan | null {
    this.planModel = d.name.name;
    const model = models.find((m) => m.name === d.name.name);
    if (!model) this.diagnostics.push(diag("unknownModel", d.name.span, { name: d.name.name, ...sugg(d.name.name, models.map((m) => m.name)) }));
    const dataset = datasets.find((x) => x.name === d.dataset.name);
    if (!dataset) this.diagnostics.push(diag("unknownDataset", d.dataset.span, { name: d.dataset.name, available: datasets.map((x) => x.name).join(", "), ...sugg(d.dataset.name, datasets.map((x) => x.name)) }));
    const s = this.settings(d.settings, "train");
    const where = `train ${d.name.name}`;
    const loss = s.get("loss");
    const terms: IRLossTerm[] = [];
    const alternate = d.alternates.length ? this.alternate(d, s, terms) : undefined;
    if (alternate) {
      if (loss) this.diagnostics.push(diag("alternate", loss.key.span, { problem: "with alternate steps, each step has its own loss", hint: "move the loss into the steps: step NAME { loss … }" }));
    } else if (!loss) this.diagnostics.push(diag("missingSetting", d.name.span, { where, name: "loss", example: SETTINGS.loss!.example }));
    else if (loss.args.length !== 1 || loss.args[0]!.name) this.diagnostics.push(diag("badLoss", loss.span, { problem: "expected one loss expression" }));
    else this.lossTerms(loss.args[0]!.value, 1, terms);
    const metrics: IRCall[] = [];
    const ms = s.get("metrics");
    if (ms) {
      for (const a of ms.args) {
        if (a.name) {
          this.diagnostics.push(diag("argumentType", a.span, { callee: "metrics", name: a.name.name, expected: "a metric such as accuracy or f1(average: macro)", got: "a named argument" }));
          continue;
        }
        const c = this.call(a.value, METRICS, "metric");
        if (c) metrics.push(c);
      }
    }
    const base = this.phaseSettings(s, d.dataset.name, null);
    const phases: IRPhase[] = [];
    const phaseNames = new Set<string>();
    for (const ph of d.phases) {
      if (phaseNames.has(ph.name.name)) {
        this.diagnostics.push(diag("duplicateDecl", ph.name.span, { kind: "phase", name: ph.name.name }));
        continue;
      }
      phaseNames.add(ph.name.name);
      const ps = this.settings(ph.settings, "phase");
      const data = ps.get("data");
      if (data) {
        const v = data.args[0]?.value;
        if (data.args.length !== 1 || v?.kind !== "name") this.diagnostics.push(diag("argumentType", data.span, { callee: "data", name: "value", expected: "a dataset name", got: "something else" }));
        else if (!datasets.some((x) => x.name === v.name)) this.diagnostics.push(diag("unknownDataset", v.span, { name: v.name, available: datasets.map((x) => x.name).join(", "), ...sugg(v.name, datasets.map((x) => x.name)) }));
      }
      phases.push({ name: ph.name.name, ...(ph.doc ? { doc: ph.doc } : {}), span: this.irSpan(ph.name.span), ...this.phaseSettings(ps, d.dataset.name, base) });
    }
    if (phases.length === 0) phases.push({ name: "main", span: this.irSpan(d.name.span), ...base });
    const ck = s.get("checkpoint");
    const ckArgs = ck ? bindArgs("checkpoint", SETTINGS.checkpoint!.sig!, this.planArgs(ck.args), ck.span, this.diagnostics) : null;
    const validation = s.get("validation");
    const seed = s.get("seed");
    const init = this.init(s.get("init"));
    const exp = s.has("export") ? this.exportStep(s.get("export")!) : undefined;
    if (!model || !dataset) return null;
    return {
      name: d.name.name,
      model: d.name.name,
      dataset: d.dataset.name,
      ...(d.doc ? { doc: d.doc } : {}),
      span: this.irSpan(d.name.span),
      loss: terms,
      metrics,
      validation: validation ? (this.scalar(validation, "float") ?? 0) : 0,
      seed: seed ? this.scalar(seed, "int") : null,
      checkpoint: { every: (ckArgs?.every as number) ?? 1, keep: (ckArgs?.keep as number) ?? 3, monitor: (ckArgs?.monitor as string | null) ?? null, span: this.irSpan(ck?.span ?? d.name.span) },
      phases,
      ...(alternate ? { alternate } : {}),
      ...(init ? { init } : {}),
      ...(exp ? { export: exp } : {}),
    };
  }

  /**
   * `alternate { step NAME { optimizer …; freeze …; loss … } … }`: each step's terms are appended to the plan's
   * loss (`terms`), the step keeping their indices; its optimizer defaults to the plan's.
   */
  private alternate(d: Extract<Decl, { kind: "train" }>, plan: Map<string, Setting>, terms: IRLossTerm[]): IRStep[] | undefined {
    for (const extra of d.alternates.slice(1)) this.diagnostics.push(diag("alternate", extra.span, { problem: "a plan has one alternate block", hint: "put every step into the first alternate block" }));
    if (d.phases.length) this.diagnostics.push(diag("alternate", d.alternates[0]!.span, { problem: "alternate steps and phases cannot be combined yet", hint: "train the alternating steps in a plan without phases" }));
    for (const k of ["mixup", "cutmix"]) if (plan.has(k)) this.diagnostics.push(diag("alternate", plan.get(k)!.key.span, { problem: `${k} and alternate steps cannot be combined yet`, hint: `remove ${k}: a GAN's steps read their own targets` }));
    const base = this.phaseSettings(plan, d.dataset.name, null);
    const steps: IRStep[] = [];
    const names = new Set<string>();
    for (const st of d.alternates[0]!.steps) {
      if (st.word.name !== "step") {
        this.diagnostics.push(diag("alternate", st.word.span, { problem: `expected "step", got "${st.word.name}"`, hint: "an alternate block holds steps: step NAME { optimizer …; freeze …; loss … }" }));
        continue;
      }
      if (names.has(st.name.name)) {
        this.diagnostics.push(diag("duplicateDecl", st.name.span, { kind: "step", name: st.name.name }));
        continue;
      }
      names.add(st.name.name);
      const ss = this.settings(st.settings, "step");
      const own = this.phaseSettings(ss, d.dataset.name, base);
      const loss = ss.get("loss");
      const first = terms.length;
      if (!loss) this.diagnostics.push(diag("missingSetting", st.name.span, { where: `step ${st.name.name}`, name: "loss", example: "loss binary_cross_entropy(fake_score, 1)" }));
      else if (loss.args.length !== 1 || loss.args[0]!.name) this.diagnostics.push(diag("badLoss", loss.span, { problem: "expected one loss expression" }));
      else this.lossTerms(loss.args[0]!.value, 1, terms);
      steps.push({
        name: st.name.name,
        ...(st.doc ? { doc: st.doc } : {}),
        span: this.irSpan(st.name.span),
        optimizer: own.optimizer,
        weightDecay: own.weightDecay,
        clip: own.clip,
        freeze: own.freeze,
        frozenLayers: [],
        terms: Array.from({ length: terms.length - first }, (_, i) => first + i),
      });
    }
    if (!steps.length) {
      this.diagnostics.push(diag("alternate", d.alternates[0]!.span, { problem: "no steps", hint: "write the steps that run in turn on every batch: step discriminator { … } step generator { … }" }));
      return undefined;
    }
    return steps;
  }

  /** The init setting: its arguments, and each map entry split at "->" (NN4020 when it is not "A -> B"). */
  private init(s: Setting | undefined): IRInit | null {
    if (!s) return null;
    const a = bindArgs("init", SETTINGS.init!.sig!, this.planArgs(s.args), s.span, this.diagnostics);
    if (!a) return null;
    const written = s.args.find((x) => x.name?.name === "map")?.value;
    const spans = written?.kind === "list" ? written.items.map((i) => i.span) : [];
    const map: IRInit["map"] = [];
    (a.map as string[]).forEach((entry, i) => {
      const parts = entry.split("->").map((x) => x.trim());
      if (parts.length !== 2 || !parts[0] || !parts[1]) this.diagnostics.push(diag("initMapEntry", spans[i] ?? s.span, { entry }));
      else map.push({ from: parts[0], to: parts[1], span: this.irSpan(spans[i] ?? s.span) });
    });
    return { from: a.from as string, layout: a.layout as IRInit["layout"], map, allowMissing: a.allow_missing as boolean, allowExtra: a.allow_extra as boolean, span: this.irSpan(s.span) };
  }

  private scalar(s: Setting, kind: "int" | "float"): number | null {
    const def = SETTINGS[s.key.name]!;
    const sig = { doc: "", params: [{ name: s.key.name, type: kind, min: def.min, max: def.max, exclusive: def.exclusive, maxExclusive: def.maxExclusive }] };
    const a = bindArgs(s.key.name, sig, this.planArgs(s.args), s.span, this.diagnostics);
    return a ? (a[s.key.name] as number) : null;
  }

  private phaseSettings(s: Map<string, Setting>, dataset: string, base: Omit<IRPhase, "name" | "span"> | null): Omit<IRPhase, "name" | "span"> {
    const get = <T>(k: string, f: (x: Setting) => T, dflt: T): T => {
      const x = s.get(k);
      return x ? f(x) : dflt;
    };
    let optimizer = get("optimizer", (x) => this.call(x, OPTIMIZERS, "optimizer"), base?.optimizer ?? null);
    if (!optimizer) optimizer = { fn: "adam", args: { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weight_decay: 0 }, span: base?.optimizer.span ?? this.irSpan({ file: this.current.source.path, start: 0, end: 0 }) };
    const lr = s.get("lr");
    if (lr) {
      const v = this.scalar(lr, "float");
      if (v !== null) optimizer = { ...optimizer, args: { ...optimizer.args, lr: v } };
    }
    const schedule = get("schedule", (x) => this.schedule(x), base?.schedule ?? []);
    const es = s.get("early_stop");
    const esArgs = es ? bindArgs("early_stop", SETTINGS.early_stop!.sig!, this.planArgs(es.args), es.span, this.diagnostics) : null;
    const clip = s.get("clip");
    const clipArgs = clip ? bindArgs("clip", SETTINGS.clip!.sig!, this.planArgs(clip.args), clip.span, this.diagnostics) : null;
    const freeze = s.get("freeze");
    const patterns: IRPhase["freeze"] = [];
    for (const a of freeze?.args ?? []) {
      if (a.value.kind === "str" && !a.name) patterns.push({ pattern: a.value.value, span: this.irSpan(a.value.span) });
      else if (a.value.kind === "name" && !a.name) {
        const nodes = this.relabelled.get(this.planModel)?.get(a.value.name);
        patterns.push({ pattern: a.value.name, span: this.irSpan(a.value.span), ...(nodes ? { nodes } : {}) });
      }
      else this.diagnostics.push(diag("argumentType", a.span, { callee: "freeze", name: "pattern", expected: 'a layer name or a quoted glob such as "conv*"', got: "something else" }));
    }
    const data = s.get("data")?.args[0]?.value;
    const prune = s.has("prune") ? this.prune(s.get("prune")!) : base?.prune;
    const lora = s.has("lora") ? this.lora(s.get("lora")!) : base?.lora;
    const mix = this.mix(s, base?.mix);
    return {
      epochs: get("epochs", (x) => this.scalar(x, "int") ?? 1, base?.epochs ?? 1),
      batch: get("batch", (x) => this.scalar(x, "int") ?? 32, base?.batch ?? 32),
      accumulate: get("accumulate", (x) => this.scalar(x, "int") ?? 1, base?.accumulate ?? 1),
      optimizer,
      schedule,
      weightDecay: get("weight_decay", (x) => this.scalar(x, "float") ?? 0, base?.weightDecay ?? 0),
      clip: clipArgs ? { ...(clipArgs.norm !== null ? { norm: clipArgs.norm as number } : {}), ...(clipArgs.value !== null ? { value: clipArgs.value as number } : {}) } : base?.clip ?? null,
      earlyStop: esArgs
        ? { monitor: esArgs.monitor as string, patience: esArgs.patience as number, minDelta: esArgs.min_delta as number, mode: esArgs.mode === "auto" ? monitorMode(esArgs.monitor as string) : (esArgs.mode as "min" | "max"), restoreBest: esArgs.restore_best as boolean, span: this.irSpan(es!.span) }
        : base?.earlyStop ?? null,
      freeze: patterns,
      frozenLayers: [],
      dataset: data?.kind === "name" ? data.name : base?.dataset ?? dataset,
      ...(prune ? { prune } : {}),
      ...(lora ? { lora } : {}),
      ...(mix ? { mix } : {}),
    };
  }

  /** mixup alpha: 0.2 and cutmix alpha: 1.0: each overrides the plan's (a phase inherits both). */
  private mix(s: Map<string, Setting>, base: IRMix | undefined): IRMix | undefined {
    const alpha = (k: "mixup" | "cutmix"): number | null | undefined => {
      const st = s.get(k);
      if (!st) return undefined;
      const a = bindArgs(k, SETTINGS[k]!.sig!, this.planArgs(st.args), st.span, this.diagnostics);
      return a ? (a.alpha as number) : null;
    };
    const mixup = alpha("mixup");
    const cutmix = alpha("cutmix");
    if (mixup === undefined && cutmix === undefined) return base;
    const span = s.get("mixup")?.span ?? s.get("cutmix")!.span;
    const m: IRMix = { mixup: mixup === undefined ? base?.mixup ?? null : mixup, cutmix: cutmix === undefined ? base?.cutmix ?? null : cutmix, inputs: [], images: [], size: null, terms: [], span: this.irSpan(span) };
    return m.mixup === null && m.cutmix === null ? undefined : m;
  }

  /** lora rank: 8, alpha: 16, dropout: 0.05, target: "**\/attention/query", target: … (target may repeat). */
  private lora(st: Setting): IRLora | undefined {
    const all = this.planArgs(st.args);
    const patterns: IRLora["patterns"] = [];
    for (const a of all.filter((x) => x.name?.name === "target")) {
      const v = a.value;
      if ((v.k === "str" || v.k === "word") && v.v.length) patterns.push({ pattern: v.v, span: this.irSpan(a.span) });
      else if (v.k !== "error") this.diagnostics.push(diag("argumentType", a.span, { callee: "lora", name: "target", expected: 'a layer path or a quoted glob such as "**/attention/query"', got: describe(a.value) }));
    }
    const args = all.filter((x) => x.name?.name !== "target");
    const bound = bindArgs("lora", SETTINGS.lora!.sig!, args, st.span, this.diagnostics);
    if (!bound) return undefined;
    if (!patterns.length) {
      this.diagnostics.push(diag("missingArgument", st.span, { callee: "lora", name: "target", signature: 'lora rank: 8, alpha: 16, target: "**/attention/query"' }));
      return undefined;
    }
    const rank = bound.rank as number;
    const base: Partial<IRLora> = bound.base === "int8" ? { base: "int8", quantize: [] } : {};
    return { rank, alpha: (bound.alpha as number | null) ?? rank, dropout: bound.dropout as number, patterns, targets: [], ...base, span: this.irSpan(st.span) };
  }

  /** A sparsity argument in [0, 1), or null (reported) when it is outside. */
  private sparsity(value: AttrValue | undefined, args: BoundArg[], name: string, span: Span): number | null {
    if (typeof value !== "number") return null;
    if (value >= 0 && value < 1) return value;
    const at = args.find((a) => a.name?.name === name)?.span ?? args.find((a) => !a.name)?.span ?? span;
    this.diagnostics.push(diag("pruneSparsity", at, { value: String(value) }));
    return null;
  }

  /** prune sparsity: 0.5, scope: layer, exclude: "head", exclude: "conv2d_1" (exclude may repeat). */
  private prune(st: Setting): IRPrune | undefined {
    const all = this.planArgs(st.args);
    const exclude: IRPrune["exclude"] = [];
    for (const a of all.filter((x) => x.name?.name === "exclude")) {
      const v = a.value;
      if ((v.k === "str" || v.k === "word") && v.v.length) exclude.push({ pattern: v.v, span: this.irSpan(a.span) });
      else if (v.k !== "error") this.diagnostics.push(diag("argumentType", a.span, { callee: "prune", name: "exclude", expected: 'a layer name or a quoted glob such as "dense*"', got: describe(a.value) }));
    }
    const args = all.filter((x) => x.name?.name !== "exclude");
    const bound = bindArgs("prune", SETTINGS.prune!.sig!, args, st.span, this.diagnostics);
    if (!bound) return undefined;
    const sparsity = this.sparsity(bound.sparsity, args, "sparsity", st.span);
    if (sparsity === null) return undefined;
    return { sparsity, scope: bound.scope as IRPrune["scope"], exclude, weights: [], span: this.irSpan(st.span) };
  }

  /** export quantize: int8, prune: 0.5, calibration: 512. */
  private exportStep(st: Setting): IRExport | undefined {
    const args = this.planArgs(st.args);
    const bound = bindArgs("export", SETTINGS.export!.sig!, args, st.span, this.diagnostics);
    if (!bound) return undefined;
    const prune = bound.prune === null ? null : this.sparsity(bound.prune, args, "prune", st.span);
    if (bound.prune !== null && prune === null) return undefined;
    if (bound.quantize === null && prune === null) {
      this.diagnostics.push(diag("exportNothing", st.span, {}));
      return undefined;
    }
    return { quantize: bound.quantize as IRExport["quantize"], prune, calibration: bound.calibration as number, weights: [], span: this.irSpan(st.span) };
  }

  private schedule(s: Setting): IRCall[] {
    if (s.args.length !== 1 || s.args[0]!.name) {
      this.diagnostics.push(diag("argumentType", s.span, { callee: "schedule", name: "value", expected: "one schedule, or several chained with ->", got: `${s.args.length} arguments` }));
      return [];
    }
    const e = s.args[0]!.value;
    const parts: Expr[] = e.kind === "chain" ? [e.head, ...e.stages.map((st): Expr => (st.args ? { kind: "call", callee: st.callee, args: st.args, span: st.span } : { kind: "name", name: st.callee.name, span: st.callee.span }))] : [e];
    const out: IRCall[] = [];
    for (const part of parts) {
      const c = this.call(part, SCHEDULES, "schedule");
      if (c) out.push(c);
    }
    return out;
  }

  /** Flatten a loss expression into weighted terms: 0.5 * mse(a, x) + cross_entropy(l, y). */
  private lossTerms(e: Expr, weight: number, out: IRLossTerm[]): void {
    if (e.kind === "binary" && (e.op === "+" || e.op === "-")) {
      this.lossTerms(e.left, weight, out);
      if (e.op === "-") {
        this.diagnostics.push(diag("badLoss", e.opSpan, { problem: "losses are added, not subtracted (a negative loss is maximized)" }));
        return;
      }
      this.lossTerms(e.right, weight, out);
      return;
    }
    if (e.kind === "binary" && e.op === "*") {
      const [num, rest] = e.left.kind === "num" ? [e.left, e.right] : e.right.kind === "num" ? [e.right, e.left] : [null, null];
      if (num && rest) {
        if (num.value <= 0) {
          this.diagnostics.push(diag("badLoss", num.span, { problem: `a loss weight must be positive, got ${num.value}` }));
          return;
        }
        return this.lossTerms(rest, weight * num.value, out);
      }
    }
    if (e.kind === "call" || e.kind === "name") {
      const c = this.call(e, LOSSES, "loss");
      if (!c) return;
      const args = e.kind === "call" ? e.args : [];
      const at = (name: string, index: number) => (args.find((a) => a.name?.name === name) ?? args.filter((a) => !a.name)[index])?.value.span ?? e.span;
      // The loss's first two parameters name its prediction and its target (prediction/target, or mean/log_var);
      // a loss without a target (mean) reads one output, which stands as its own target.
      const def = LOSSES[c.fn]!;
      const pn = def.params[0]!.name;
      const tn = def.target === "none" ? pn : def.params[1]!.name;
      const value = c.args[tn];
      out.push({
        weight,
        fn: c.fn,
        prediction: String(c.args[pn]),
        target: String(value),
        ...(def.target === "output" || def.target === "none" ? { targetIsOutput: true as const } : {}),
        ...(typeof value === "number" ? { targetValue: value } : {}),
        args: Object.fromEntries(Object.entries(c.args).filter(([k]) => k !== pn && k !== tn)),
        span: c.span,
        predictionSpan: this.irSpan(at(pn, 0)),
        targetSpan: this.irSpan(at(tn, 1)),
      });
      return;
    }
    this.diagnostics.push(diag("badLoss", e.span, { problem: "this is not a loss, a number times a loss, or a sum of those" }));
  }
}

/** Whether larger is better for a monitored quantity: loss and error metrics go down, scores go up. */
export function monitorMode(monitor: string): "min" | "max" {
  const metric = METRICS[monitor.replace(/^val_/, "")];
  return metric?.higherIsBetter ? "max" : "min";
}

function range([lo, hi]: readonly [number, number]): string {
  return lo === hi ? String(lo) : hi === Infinity ? `${lo} or more` : `${lo} to ${hi}`;
}

function paramType(t: string): "int" | "float" | "bool" | "string" {
  return t === "int" ? "int" : t === "float" ? "float" : t === "bool" ? "bool" : "string";
}

function tensorNames(f: Frame): string[] {
  return [...f.vars.entries()].filter(([, v]) => v.k === "tensor").map(([k]) => k);
}

function sugg(name: string, candidates: Iterable<string>): { suggestion?: string } {
  const s = suggest(name, candidates);
  return s ? { suggestion: s } : {};
}

export function lower(main: LoadedFile, files: Map<string, LoadedFile>): LowerResult & { diagnostics: Diagnostic[]; broken: Set<string> } {
  const lw = new Lowering(files);
  const module = lw.run(main);
  return { module, constraints: lw.constraints, diagnostics: lw.diagnostics, broken: lw.broken };
}

