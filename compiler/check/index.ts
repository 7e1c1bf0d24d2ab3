// The checker: infers every node's shape and dtype through the op registry's rules, creates the
// weights each layer owns, and checks training plans against the model and its dataset.
// It fills in the module it is given (shapes, weights, resolved plan settings) and returns it with diagnostics:
// a deep copy of a large file's IR cost as much time and memory as the checks (compile() hands lower()'s module
// over and keeps no other reference to it). Every error in the file is reported, not only the first.
import { diag, suggest, type Diagnostic } from "../diagnostics.js";
import { fmtShape, isConst, type Dim } from "../ir/dims.js";
import { OPS, PROBABILITY_OPS, type InferCtx, type OpKind, type TensorInfo } from "../ir/ops.js";
import { FLOAT_DTYPES, type DType, type IRDataset, type IRFreeze, type IRMix, type IRModel, type IRModule, type IRParam, type IRPlan, type IRSpan } from "../ir/types.js";
import type { Constraint } from "../lower/index.js";
import { isPrunable, LOSSES, METRICS } from "../plan/tables.js";
import { phaseTrainable, reportedTerms } from "../../runtime/spec.js";

export interface CheckResult {
  module: IRModule;
  diagnostics: Diagnostic[];
}

const spanOf = (s: IRSpan) => ({ file: s.file, start: s.start, end: s.end });

/**
 * `broken`: the models and datasets whose declarations have errors already (from lowering). Such a declaration
 * was only partly built (a misspelt layer leaves its outputs unbound, a bad step its field), and so is a model
 * with an error here: a plan on one is not checked against it, so that one typo is one error, not one more for
 * each loss and metric naming an output the broken model lacks.
 */
export function check(module: IRModule, constraints: Constraint[] = [], broken: ReadonlySet<string> = new Set(), onStage?: (stage: string) => void): CheckResult {
  const diagnostics: Diagnostic[] = [];
  const failed = new Set(broken);
  const byModel = new Map<string, Constraint[]>();
  for (const c of constraints) {
    const list = byModel.get(c.model);
    if (list) list.push(c);
    else byModel.set(c.model, [c]);
  }
  for (const m of module.models) {
    const before = diagnostics.length;
    checkModel(m, byModel.get(m.name) ?? [], diagnostics);
    if (diagnostics.slice(before).some((d) => d.severity === "error")) failed.add(m.name);
  }
  onStage?.("check");
  for (const p of module.plans) {
    const model = module.models.find((m) => m.name === p.model);
    if (!model || failed.has(p.model) || [p.dataset, ...p.phases.map((ph) => ph.dataset)].some((d) => failed.has(d))) continue;
    checkPlan(p, model, module.datasets, diagnostics);
  }
  onStage?.("plan");
  return { module, diagnostics };
}

function checkModel(m: IRModel, constraints: Constraint[], diagnostics: Diagnostic[]): void {
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const dims = new Map(m.dims.map((d) => [d.name, d]));
  const params: IRParam[] = [];
  const paramsByLayer = new Map<string, IRParam[]>();
  for (const n of m.nodes) {
    if (n.op === "input") continue;
    const ins: TensorInfo[] = [];
    for (const i of n.inputs) {
      const src = byId.get(i);
      if (!src?.shape || !src.dtype) break;
      ins.push({ shape: src.shape, dtype: src.dtype, ...(src.op === "constant" ? { weak: true } : {}) });
    }
    if (ins.length !== n.inputs.length) continue; // an upstream error already explains this
    const inputNames = n.inputs.map((i) => {
      const src = byId.get(i)!;
      return src.op === "constant" ? String(src.attrs.value) : src.binding ?? src.name;
    });
    const ctx: InferCtx = { ins, attrs: n.attrs, dims, paramsOf: (l) => paramsByLayer.get(l) ?? [], span: n.span, diagnostics: [], inputNames };
    const out = OPS[n.op as OpKind].infer(ctx);
    for (const d of ctx.diagnostics) diagnostics.push(withSpan(d, n.span));
    if (!out) continue;
    n.shape = out.shape;
    n.dtype = out.dtype;
    const weights = out.weights ?? [];
    const existing = paramsByLayer.get(n.name);
    if (existing) {
      // A shared layer applied again: its weights must fit this input too.
      const before = existing.map((w) => fmtShape(w.shape)).join(", ");
      const now = weights.map((w) => fmtShape(w.shape)).join(", ");
      if (before !== now) diagnostics.push(diag("sharedShapeChanged", spanOf(n.span), { layer: n.name, before, now }));
      continue;
    }
    if (weights.length === 0) continue;
    const mine = weights.map((w): IRParam => ({ name: `${n.name}/${w.role}`, layer: n.name, role: w.role, shape: w.shape, dtype: n.dtype === "f16" ? "f16" : "f32", init: w.init, trainable: w.trainable }));
    paramsByLayer.set(n.name, mine);
    params.push(...mine);
  }
  m.params = params;
  const bound = new Map<number, Map<string, Dim>>();
  for (const c of constraints) {
    const n = byId.get(c.node);
    if (!n?.shape || !n.dtype) continue;
    const dtypeOk = n.dtype === c.dtype;
    // A name in the annotation binds to the actual size at its first use in this call; later uses must agree.
    const env = bound.get(c.call) ?? new Map<string, Dim>();
    bound.set(c.call, env);
    const dimsOk =
      !c.dims ||
      (c.dims.length === n.shape.length &&
        c.dims.every((d, i) => {
          const actual = n.shape![i]!;
          if (d === null) return true;
          if (typeof d === "number") return d === actual;
          const prev = env.get(d);
          if (prev === undefined) env.set(d, actual);
          return prev === undefined || prev === actual;
        }));
    if (!dtypeOk || !dimsOk) {
      const declared = `${c.dtype}${c.dims ? `[${c.dims.map((d) => d ?? "_").join(", ")}]` : ""}`;
      diagnostics.push(diag("inputMismatch", spanOf(c.span), { name: c.name, declared, got: `${n.dtype}${fmtShape(n.shape)}` }, [{ span: c.declared, message: `the block declares input ${c.name} here` }]));
    }
  }
}

function withSpan(d: Diagnostic, s: IRSpan): Diagnostic {
  return { ...d, span: spanOf(s) };
}

// ── plans ─────────────────────────────────────────────────────────────────────────────────────────

function checkPlan(p: IRPlan, m: IRModel, datasets: IRDataset[], diagnostics: Diagnostic[]): void {
  const ds = datasets.find((d) => d.name === p.dataset);
  if (!ds) return;
  const nodes = new Map(m.nodes.map((n) => [n.id, n]));
  const outputs = new Map(m.outputs.map((o) => [o.name, nodes.get(o.node)!]));
  const fields = new Map(ds.fields.map((f) => [f.name, f]));
  const refHint = (name: string, span: IRSpan) =>
    diagnostics.push(diag("unknownTensorRef", spanOf(span), { name, outputs: [...outputs.keys()].join(", "), fields: [...fields.keys()].join(", "), ...opt(suggest(name, [...outputs.keys(), ...fields.keys()])) }));

  // Every phase's dataset must provide the model's inputs, with the same types.
  for (const dsName of new Set([p.dataset, ...p.phases.map((ph) => ph.dataset)])) {
    const d = datasets.find((x) => x.name === dsName);
    if (!d) continue;
    const fs = new Map(d.fields.map((f) => [f.name, f]));
    for (const inp of m.inputs) {
      const f = fs.get(inp.name);
      if (!f) {
        diagnostics.push(diag("inputWithoutField", spanOf(p.span), { input: inp.name, dataset: d.name, fields: [...fs.keys()].join(", "), ...opt(suggest(inp.name, fs.keys())) }));
        continue;
      }
      const sample = inp.shape.slice(1);
      const fits = f.dtype === inp.dtype && f.shape.length === sample.length && f.shape.every((dim, i) => dim === sample[i] || !isConst(sample[i]!) || !isConst(dim));
      if (!fits) diagnostics.push(diag("fieldTypeMismatch", spanOf(f.span), { input: inp.name, inputType: `${inp.dtype}${fmtShape(inp.shape)}`, field: f.name, fieldType: `${f.dtype}${fmtShape(["batch", ...f.shape])}` }));
    }
  }

  for (const t of p.loss) {
    const out = outputs.get(t.prediction);
    if (t.targetIsOutput && t.target === t.prediction) {
      // mean(value): one output of floats, its own penalty term.
      if (!out) refHint(t.prediction, t.predictionSpan);
      else if (out.dtype && !FLOAT_DTYPES.includes(out.dtype)) diagnostics.push(diag("notComparable", spanOf(t.predictionSpan), { what: `${t.fn}: "${t.prediction}" holds ${out.dtype}, not floats`, hint: "a loss term the model computes is a float output (cast it, or compute it from floats)" }));
      continue;
    }
    if (t.targetIsOutput) {
      // kl_normal(mean, log_var): two model outputs of one shape.
      const other = outputs.get(t.target);
      if (!out) refHint(t.prediction, t.predictionSpan);
      if (!other) refHint(t.target, t.targetSpan);
      if (out?.shape && other?.shape && (out.shape.length !== other.shape.length || !sameDims(out.shape.slice(1), other.shape.slice(1)))) {
        diagnostics.push(diag("targetMismatch", spanOf(t.targetSpan), { loss: t.fn, output: `${t.prediction} ${fmtShape(out.shape)}`, target: `${t.target} ${fmtShape(other.shape)}`, hint: "the mean and the log-variance are two model outputs of one shape" }));
      }
      continue;
    }
    if (t.targetValue !== undefined) {
      // A number: a constant of the prediction's shape.
      const def = LOSSES[t.fn]!;
      if (!out) refHint(t.prediction, t.predictionSpan);
      if (def.target === "binary" && !(t.targetValue >= 0 && t.targetValue <= 1)) diagnostics.push(diag("constantTarget", spanOf(t.targetSpan), { loss: t.fn, value: String(t.targetValue), why: "binary targets are probabilities in [0, 1]" }));
      if (out?.dtype && !FLOAT_DTYPES.includes(out.dtype)) diagnostics.push(diag("constantTarget", spanOf(t.targetSpan), { loss: t.fn, value: String(t.targetValue), why: `"${t.prediction}" holds ${out.dtype}, not floats` }));
      continue;
    }
    const field = fields.get(t.target);
    if (!out) refHint(t.prediction, t.predictionSpan);
    if (!field) refHint(t.target, t.targetSpan);
    if (!out?.shape || !out.dtype || !field) continue;
    const def = LOSSES[t.fn]!;
    const pred = out.shape.slice(1);
    const tgt = field.shape;
    const predS = fmtShape(out.shape);
    const tgtS = `${field.dtype}${fmtShape(["batch", ...tgt])}`;
    if (def.target === "sequence") {
      // ctc(prediction, target): scores [batch, time, classes] against integer labels [batch, max_len].
      const ints = ["i8", "i32", "i64"].includes(field.dtype);
      if (pred.length !== 2 || tgt.length !== 1 || !ints || !FLOAT_DTYPES.includes(out.dtype)) {
        diagnostics.push(diag("targetMismatch", spanOf(t.targetSpan), { loss: t.fn, output: `${t.prediction} ${predS}`, target: `${t.target} ${tgtS}`, hint: "ctc takes scores [batch, time, classes] and integer labels i32[batch, max_len], padded with the blank id" }));
        continue;
      }
      const [time, classes] = pred as [unknown, unknown];
      const blank = typeof t.args.blank === "number" ? t.args.blank : 0;
      if (typeof classes === "number" && blank >= classes) diagnostics.push(diag("ctcBlank", spanOf(t.span), { blank, output: t.prediction, classes }));
      if (typeof time === "number" && typeof tgt[0] === "number" && tgt[0] > time) diagnostics.push(diag("ctcTooLong", spanOf(t.targetSpan), { target: t.target, labels: tgt[0], output: t.prediction, time }));
    } else if (def.target === "classes") {
      const classes = pred[pred.length - 1];
      const ids = ["i8", "i32", "i64"].includes(field.dtype) && (sameDims(tgt, pred.slice(0, -1)) || (tgt.length === 1 && tgt[0] === 1 && pred.length === 1));
      const oneHot = !["i8", "i32", "i64"].includes(field.dtype) && sameDims(tgt, pred);
      if (pred.length < 1 || !(ids || oneHot)) {
        diagnostics.push(diag("targetMismatch", spanOf(t.targetSpan), { loss: t.fn, output: `${t.prediction} ${predS}`, target: `${t.target} ${tgtS}`, hint: `cross_entropy takes scores [batch, classes] and class ids i32[batch] or one-hot rows f32[batch, ${String(classes)}]` }));
      }
    } else if (!sameDims(tgt, pred) && !(tgt.length === 0 && pred.length === 1 && pred[0] === 1)) {
      const classIds = ["i8", "i32", "i64"].includes(field.dtype) && tgt.length === 0 && pred.length === 1;
      diagnostics.push(diag("targetMismatch", spanOf(t.targetSpan), { loss: t.fn, output: `${t.prediction} ${predS}`, target: `${t.target} ${tgtS}`, hint: classIds ? `${t.target} holds class ids: use cross_entropy(${t.prediction}, ${t.target}) for classification` : "the target must have the prediction's shape" }));
    }
    if (t.args.from_logits !== false && (def.target === "classes" || def.target === "binary")) {
      const act = PROBABILITY_OPS.has(out.op) ? out.op : typeof out.attrs.activation === "string" && PROBABILITY_OPS.has(out.attrs.activation) ? out.attrs.activation : null;
      if (act) diagnostics.push(diag("logitsExpected", spanOf(t.predictionSpan), { loss: t.fn, output: t.prediction, act }));
    }
  }

  // Metrics default to the first loss term's prediction and target.
  const first = p.loss[0];
  for (const mt of p.metrics) {
    for (const k of ["prediction", "target"] as const) {
      if (mt.args[k] === null && first) mt.args[k] = first[k];
      const ref = mt.args[k];
      if (typeof ref === "string" && !(k === "prediction" ? outputs.has(ref) : fields.has(ref))) refHint(ref, mt.span);
    }
    if (p.loss.some((t) => LOSSES[t.fn]!.target === "sequence" && t.target === mt.args.target)) {
      // ctc's labels are a sequence per sample, not aligned with the frames: no per-position metric fits them.
      diagnostics.push(diag("notComparable", spanOf(mt.span), { what: `${mt.fn}: "${String(mt.args.target)}" holds ctc label sequences, which are not aligned with the frames of "${String(mt.args.prediction)}"`, hint: "a ctc model's quality is its loss (loss, val_loss); remove the metric, or measure another output" }));
      continue;
    }
    const out = typeof mt.args.prediction === "string" ? outputs.get(mt.args.prediction) : undefined;
    if (METRICS[mt.fn]!.classification && out?.shape) {
      const classes = out.shape[out.shape.length - 1];
      if (mt.fn === "top_k" && typeof classes === "number" && (mt.args.k as number) >= classes) {
        diagnostics.push(diag("notComparable", spanOf(mt.span), { what: `top_k: k = ${String(mt.args.k)} is not below the ${classes} classes of "${String(mt.args.prediction)}"`, hint: "choose a smaller k" }));
      }
    }
  }

  // Quantities that early stopping and checkpoints may monitor.
  const measured = ["loss", ...reportedTerms(p).names, ...p.metrics.map((x) => x.fn)];
  const monitors = p.validation > 0 ? [...measured, ...measured.map((x) => `val_${x}`)] : measured;
  const checkMonitor = (name: string | null, span: IRSpan) => {
    if (name === null || monitors.includes(name)) return;
    const hint = name.startsWith("val_") && p.validation === 0 && measured.includes(name.slice(4)) ? { suggestion: undefined } : opt(suggest(name, monitors));
    const d = diag("unknownMonitor", spanOf(span), { name, options: monitors.join(", "), ...hint });
    if (name.startsWith("val_") && p.validation === 0) d.hint = "validation quantities need a validation split: add validation 0.1";
    diagnostics.push(d);
  };
  checkMonitor(p.checkpoint.monitor, p.checkpoint.span);

  // Freeze patterns resolve to layers that own weights.
  const layers = [...new Set(m.params.filter((w) => w.trainable).map((w) => w.layer))];
  // A phase's or step's freeze patterns → the layers they freeze (each pattern must match one).
  const frozenBy = (freeze: readonly IRFreeze[]): string[] => {
    const frozen = new Set<string>();
    for (const { pattern: pat, span, nodes } of freeze) {
      const matched = layersMatching(m, pat, layers, nodes);
      if (matched.length === 0) diagnostics.push(diag("freezeMatchesNothing", spanOf(span), { pattern: pat, layers: layers.slice(0, 8).join(", ") + (layers.length > 8 ? ", …" : "") }));
      for (const l of matched) frozen.add(l);
    }
    return layers.filter((l) => frozen.has(l));
  };
  for (const st of p.alternate ?? []) {
    st.frozenLayers = frozenBy(st.freeze);
    if (layers.length && st.frozenLayers.length === layers.length) diagnostics.push(diag("alternate", spanOf(st.span), { problem: `step ${st.name} freezes every layer: nothing would train in it`, hint: "a step freezes the other network's layers (freeze \"Generator/**\") and trains its own" }));
  }
  for (const ph of p.phases) {
    if (ph.earlyStop) checkMonitor(ph.earlyStop.monitor, ph.earlyStop.span);
    ph.frozenLayers = frozenBy(ph.freeze);
    // a lora phase trains its adapters whatever it freezes (freeze everything to train the adapters alone)
    if (layers.length && ph.frozenLayers.length === layers.length && !ph.lora) diagnostics.push(diag("allFrozen", spanOf(ph.span), { phase: ph.name }));
  }

  checkLora(p, m, diagnostics, spanOf);

  // An init map target is a weight (layer/role), a layer, or a layer-path prefix (a block instance).
  const withWeights = [...new Set(m.params.map((w) => w.layer))];
  for (const e of p.init?.map ?? []) {
    const known = m.params.some((w) => w.name === e.to || w.name.startsWith(`${e.to}/`));
    if (!known) diagnostics.push(diag("initUnknownTarget", spanOf(e.span), { entry: `${e.from} -> ${e.to}`, target: e.to, layers: withWeights.slice(0, 8).join(", ") + (withWeights.length > 8 ? ", …" : ""), ...(suggest(e.to, [...withWeights, ...m.params.map((w) => w.name)]) ? { suggestion: suggest(e.to, [...withWeights, ...m.params.map((w) => w.name)])! } : {}) }));
  }
  // Pruning: the prunable kernels, less the layers its exclude patterns match (reported once per span,
  // as a phase inherits the plan's setting).
  const prunable = m.params.filter(isPrunable);
  const prunableLayers = [...new Set(prunable.map((w) => w.layer))];
  const list = (ls: string[]) => ls.slice(0, 8).join(", ") + (ls.length > 8 ? ", …" : "");
  const reported = new Set<string>();
  const once = (span: IRSpan, d: () => Diagnostic) => {
    const key = `${span.file}:${span.start}`;
    if (!reported.has(key)) diagnostics.push(d());
    reported.add(key);
  };
  for (const ph of p.phases) {
    if (!ph.prune) continue;
    const excluded = new Set<string>();
    for (const { pattern, span } of ph.prune.exclude) {
      const matched = layersMatching(m, pattern, prunableLayers);
      if (matched.length === 0) once(span, () => diag("pruneMatchesNothing", spanOf(span), { pattern, layers: list(prunableLayers) }));
      for (const l of matched) excluded.add(l);
    }
    ph.prune = { ...ph.prune, weights: prunable.filter((w) => !excluded.has(w.layer)).map((w) => w.name) };
    if (ph.prune.weights.length === 0) once(ph.prune.span, () => diag("pruneSelectsNothing", spanOf(ph.prune!.span), { why: prunable.length ? "every prunable layer is excluded" : `model "${m.name}" has no conv or dense kernel` }));
  }
  checkLoraBase(p, m, diagnostics, spanOf);
  checkMix(p, m, diagnostics, once);
  if (p.export) {
    p.export.weights = prunable.map((w) => w.name);
    if (p.export.prune !== null && prunable.length === 0) diagnostics.push(diag("pruneSelectsNothing", spanOf(p.export.span), { why: `model "${m.name}" has no conv or dense kernel` }));
  }
}

/**
 * mixup / cutmix: the inputs they mix (float model inputs; cutmix: float [height, width, channels] ones of the
 * first one's size) and how each loss term mixes (LOSSES' `mix`); refused (NN4040–NN4042) where there is nothing to
 * mix or mixing the labels means nothing. Reported once per setting (phases inherit the plan's).
 */
function checkMix(p: IRPlan, m: IRModel, diagnostics: Diagnostic[], once: (span: IRSpan, d: () => Diagnostic) => void): void {
  const floats = m.inputs.filter((i) => i.dtype === "f16" || i.dtype === "f32" || i.dtype === "f64");
  const imageShape = (i: (typeof floats)[number]) => (i.shape.length === 4 && typeof i.shape[1] === "number" && typeof i.shape[2] === "number" ? [i.shape[1], i.shape[2]] : null);
  const first = floats.map(imageShape).find((x) => x) ?? null;
  const images = first ? floats.filter((i) => imageShape(i)?.join() === first.join()).map((i) => i.name) : [];
  for (const ph of p.phases) {
    const mix = ph.mix;
    if (!mix) continue;
    const setting = mix.cutmix !== null && mix.mixup === null ? "cutmix" : mix.mixup !== null && mix.cutmix === null ? "mixup" : "mixup and cutmix";
    let ok = true;
    if (mix.mixup !== null && !floats.length) {
      ok = false;
      once(mix.span, () => diag("mixNoInput", spanOf(mix.span), { setting: "mixup", model: m.name, what: "float input", hint: `its inputs are ${m.inputs.map((i) => `${i.name}: ${i.dtype}${fmtShape(i.shape)}`).join(", ")}; mixup blends float inputs (images, features), not token ids` }));
    } else if (mix.cutmix !== null && !images.length) {
      ok = false;
      once(mix.span, () => diag("mixNoInput", spanOf(mix.span), { setting: "cutmix", model: m.name, what: "image input f32[batch, height, width, channels]", hint: `its inputs are ${m.inputs.map((i) => `${i.name}: ${i.dtype}${fmtShape(i.shape)}`).join(", ")}; cutmix pastes boxes of images${floats.length ? ": use mixup for other float inputs" : ""}` }));
    }
    const terms: IRMix["terms"] = [];
    for (const t of p.loss) {
      const rule = t.targetIsOutput ? "output" : LOSSES[t.fn]!.mix;
      if (typeof rule === "object") {
        ok = false;
        once(t.span, () => diag("mixLoss", spanOf(t.span), { loss: t.fn, setting, why: rule.refused }));
      } else if (rule === "target" && mix.cutmix !== null) {
        ok = false;
        once(t.span, () => diag("mixLoss", spanOf(t.span), { loss: t.fn, setting: "cutmix", why: "cutmix pastes a box of another image, and a value target has no share of that box to mix (use mixup for regression)" }));
      } else terms.push(rule);
    }
    if (ok && !terms.some((r) => r !== "output")) once(mix.span, () => diag("mixNoLabel", spanOf(mix.span), { setting }));
    ph.mix = { ...mix, inputs: floats.map((i) => i.name), images: mix.cutmix !== null ? images : [], size: mix.cutmix !== null && first ? (first as [number, number]) : null, terms: ok ? terms : [] };
  }
}

/**
 * LoRA: each phase's target patterns resolve to dense layers and attention projections (`LAYER/query` …); every
 * lora phase of a plan must adapt the same ones with the same rank, alpha and dropout (the adapters are weights
 * of the model, made once). The adapters become weights of their layers — `lora_a` [in, rank] and `lora_b`
 * [rank, out] (`query/lora_a`… in attention) — and the nodes carry `lora` (the adapted groups, "" for a dense
 * layer's own kernel), `lora_rank`, `lora_scale` (alpha / rank) and `lora_dropout`, which every engine reads.
 */
function checkLora(p: IRPlan, m: IRModel, diagnostics: Diagnostic[], spanOf: (s: IRSpan) => { file: string; start: number; end: number }): void {
  const phases = p.phases.filter((ph) => ph.lora);
  if (!phases.length) return;
  const candidates = projectionKernels(m);
  const paths = candidates.map((c) => c.path);
  const list = (ls: string[]) => ls.slice(0, 8).join(", ") + (ls.length > 8 ? ", …" : "");
  for (const ph of phases) {
    const lora = ph.lora!;
    const targets = new Set<string>();
    for (const { pattern, span } of lora.patterns) {
      const matched = paths.filter(globMatcher(pattern));
      if (!matched.length) diagnostics.push(diag("loraMatchesNothing", spanOf(span), { pattern, candidates: list(paths) || "none (the model has no dense or attention layer)" }));
      for (const c of matched) targets.add(c);
    }
    ph.lora = { ...lora, targets: paths.filter((c) => targets.has(c)) };
  }
  const first = phases[0]!.lora!;
  const key = (l: typeof first) => JSON.stringify([l.rank, l.alpha, l.dropout, l.targets, l.base ?? "float32"]);
  for (const ph of phases.slice(1)) {
    if (key(ph.lora!) !== key(first)) diagnostics.push(diag("loraDiffers", spanOf(ph.lora!.span), { phase: ph.name, first: phases[0]!.name }));
  }
  if (!first.targets.length || m.params.some((w) => /(^|\/)lora_[ab]$/.test(w.role))) return;
  for (const c of candidates.filter((x) => first.targets.includes(x.path))) {
    const prefix = c.group ? `${c.group}/` : "";
    const [fanIn, fanOut] = c.kernel.shape as [number, number];
    m.params.push(
      { name: `${c.layer}/${prefix}lora_a`, layer: c.layer, role: `${prefix}lora_a`, shape: [fanIn, first.rank], dtype: "f32", init: "lora_a", trainable: true },
      { name: `${c.layer}/${prefix}lora_b`, layer: c.layer, role: `${prefix}lora_b`, shape: [first.rank, fanOut], dtype: "f32", init: "zeros", trainable: true },
    );
    for (const n of m.nodes.filter((x) => x.name === c.layer)) {
      n.attrs = { ...n.attrs, lora: [...((n.attrs.lora as string[] | undefined) ?? []), c.group], lora_rank: first.rank, lora_scale: first.alpha / first.rank, lora_dropout: first.dropout };
    }
  }
}

/**
 * The projection kernels LoRA can adapt and int8 can hold, in model order: each dense layer's kernel (path: the
 * layer) and each attention layer's query/key/value/output kernels (path: LAYER/GROUP); a layer applied several
 * times (shared weights) counts once.
 */
function projectionKernels(m: IRModel): { path: string; layer: string; group: string; kernel: IRModel["params"][number] }[] {
  const out: { path: string; layer: string; group: string; kernel: IRModel["params"][number] }[] = [];
  const seen = new Set<string>();
  for (const n of m.nodes) {
    if (seen.has(n.name) || (n.op !== "dense" && n.op !== "attention")) continue;
    seen.add(n.name);
    for (const g of n.op === "dense" ? [""] : ["query", "key", "value", "output"]) {
      const k = m.params.find((w) => w.name === `${n.name}/${g ? `${g}/` : ""}kernel`);
      if (k) out.push({ path: g ? `${n.name}/${g}` : n.name, layer: n.name, group: g, kernel: k });
    }
  }
  return out;
}

/**
 * lora base: int8 (QLoRA-style): from the first lora phase on, the adapted kernels — and the other dense and
 * attention kernels that no phase from then on trains or prunes — are held as int8 with per-output-channel
 * scales (each lora phase's `quantize`, in model order). An adapted kernel cannot be int8 if a later phase trains
 * it (NN4032) or a phase from then on prunes it (NN4033): int8 weights stay as they were quantized.
 */
function checkLoraBase(p: IRPlan, m: IRModel, diagnostics: Diagnostic[], spanOf: (s: IRSpan) => { file: string; start: number; end: number }): void {
  const first = p.phases.findIndex((ph) => ph.lora?.base === "int8");
  if (first < 0) return;
  const lora = p.phases[first]!.lora!;
  const kernels = projectionKernels(m)
    .map((c) => c.kernel)
    .filter((k) => k.shape.length === 2 && k.dtype === "f32" && !k.derive)
    .map((k) => k.name);
  const adapted = new Set(lora.targets.map((t) => `${t}/kernel`));
  const keep = new Set<string>();
  for (const ph of p.phases.slice(first)) {
    const trains = new Set(phaseTrainable(m.params, ph).map((w) => w.name));
    const prunes = new Set(ph.prune?.weights ?? []);
    const trained: string[] = [];
    const pruned: string[] = [];
    for (const k of kernels) {
      if (!trains.has(k) && !prunes.has(k)) continue;
      keep.add(k);
      if (!adapted.has(k)) continue;
      (trains.has(k) ? trained : pruned).push(k.slice(0, -"/kernel".length));
      adapted.delete(k); // reported once
    }
    const layers = (ls: string[]) => `${ls.length === 1 ? "the kernel of" : "the kernels of"} ${ls.join(", ")}`;
    if (trained.length) diagnostics.push(diag("loraBaseTrained", spanOf(ph.span), { phase: ph.name, layers: layers(trained), lora: p.phases[first]!.name }));
    if (pruned.length) diagnostics.push(diag("loraBasePruned", spanOf(ph.prune!.span), { phase: ph.name, layers: layers(pruned), lora: p.phases[first]!.name }));
  }
  const quantize = kernels.filter((k) => !keep.has(k));
  for (const ph of p.phases) if (ph.lora?.base === "int8") ph.lora = { ...ph.lora, quantize };
}

/** Layers matched by a freeze or exclude pattern: a glob on layer paths, or a top-level binding's layers. */
function layersMatching(m: IRModel, pattern: string, layers: readonly string[], nodes: readonly string[] = []): string[] {
  const matched = layers.filter(globMatcher(pattern));
  if (matched.length) return matched;
  // A model-level binding name selects every layer that computes it: freeze features (and when a block instance
  // made its value, the nodes it was bound to: IRFreeze.nodes).
  const upstream = upstreamLayers(m, pattern, nodes);
  return layers.filter((l) => upstream.has(l));
}

/** Layers of every node that the (top-level) binding `name` (or the nodes `also`) depends on, itself included. */
function upstreamLayers(m: IRModel, name: string, also: readonly string[] = []): Set<string> {
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const starts = [...m.nodes.filter((n) => n.binding === name), ...also.flatMap((id) => byId.get(id) ?? [])];
  const seen = new Set<string>();
  const layers = new Set<string>();
  const stack = starts.map((n) => n.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const n = byId.get(id);
    if (!n) continue;
    layers.add(n.name);
    stack.push(...n.inputs);
  }
  return layers;
}

function sameDims(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i] || !isConst(d) || !isConst(b[i]!));
}

function opt(s: string | undefined): { suggestion?: string } {
  return s ? { suggestion: s } : {};
}

/**
 * Does a freeze pattern select a layer? `*` matches within one path segment, `**` across segments;
 * a pattern that matches a block instance selects every layer inside it.
 */
export function globMatches(pattern: string, layer: string): boolean {
  return globMatcher(pattern)(layer);
}

/** globMatches for one pattern and many layers: the pattern is compiled once. */
function globMatcher(pattern: string): (layer: string) => boolean {
  let re: RegExp;
  try {
    re = globRegex(pattern);
  } catch {
    return () => false; // a malformed class such as [z-a] matches nothing, and is reported as such
  }
  return (layer) => re.test(layer);
}

function globRegex(pattern: string): RegExp {
  return new RegExp(
    "^" +
      pattern
        .split("**")
        .map((part) => part.split("*").map(escapeGlobText).join("[^/]*"))
        .join(".*") +
      "(/.*)?$",
  );
}

/** Escape regex syntax in literal glob text, keeping [a-z] character classes; ? matches one character. */
function escapeGlobText(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const close = ch === "[" ? s.indexOf("]", i + 2) : -1;
    if (close > 0) {
      const body = s.slice(i + 1, close).replace(/[\\^\]]/g, "\\$&");
      out += `[${s[i + 1] === "!" ? "^" + body.slice(1) : body}]`;
      i = close;
    } else if (ch === "?") out += "[^/]";
    else out += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return out;
}

export type { DType };
