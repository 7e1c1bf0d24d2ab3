// The IR's JSON form: spec/ir.schema.json describes it, every sample program compiles clean to IR that
// validates and matches its golden file (spec/samples/<name>.ir.json; UPDATE=1 rewrites them), and every
// zoo model (models/*.nnet, whatever exists) compiles to IR that validates.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compile, type CompileResult, type Host } from "../../compiler/index.js";
import { evalDim } from "../../compiler/ir/dims.js";
import { summarize } from "../../compiler/summary.js";
import { golden, ROOT } from "../helpers.js";
import { irProblems, irValidator, SCHEMA_PATH } from "../ir-schema.js";

/** Files are named by repo-relative POSIX paths so that spans in the IR (and the goldens) do not depend on the checkout. */
const rootHost: Host = {
  readFile(f) {
    try {
      return { text: readFileSync(path.resolve(ROOT, f), "utf8") };
    } catch {
      return { error: "no such file" };
    }
  },
};

function compileRel(rel: string): CompileResult {
  return compile(rel, readFileSync(path.join(ROOT, rel), "utf8"), rootHost);
}

function nnetFiles(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs)
    .filter((f) => f.endsWith(".nnet"))
    .sort()
    .map((f) => `${dir}/${f}`);
}

const irText = (r: CompileResult) => JSON.stringify(r.module, null, 2) + "\n";
const diagList = (r: CompileResult) => r.diagnostics.map((d) => `${d.span.file}:${d.span.start} ${d.code} ${d.message}`);

// ── the schema itself ───────────────────────────────────────────────────────────────────────────

test("the schema compiles under ajv strict mode", () => {
  assert.type(irValidator(), "function");
});

test("every object type in the schema is closed (additionalProperties: false), except attribute maps", () => {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as Record<string, unknown>;
  const open: string[] = [];
  const walk = (s: unknown, at: string) => {
    if (Array.isArray(s)) return s.forEach((x, i) => walk(x, `${at}/${i}`));
    if (!s || typeof s !== "object") return;
    const o = s as Record<string, unknown>;
    if (o.type === "object" && o.additionalProperties !== false && at !== "#/$defs/attrs") open.push(at);
    for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
  };
  walk(schema, "#");
  assert.equal(open, []);
});

test("the schema rejects what the IR type does not allow", () => {
  const r = compileRel("spec/samples/mlp.nnet");
  const base = () => JSON.parse(irText(r)) as Record<string, any>;
  assert.equal(irProblems(base()), [], "the MLP sample itself is valid");
  const broken: [string, (m: Record<string, any>) => void][] = [
    ["an unknown top-level field", (m) => (m.extra = 1)],
    ["a wrong irVersion", (m) => (m.irVersion = 2)],
    ["an unknown node field", (m) => (m.models[0].nodes[1].weights = [])],
    ["a NaN dimension (null after JSON)", (m) => (m.models[0].nodes[1].shape = ["batch", null])],
    ["a fractional dimension", (m) => (m.models[0].nodes[1].shape = ["batch", 2.5])],
    ["an unknown dtype", (m) => (m.models[0].nodes[1].dtype = "f8")],
    ["a param without init", (m) => delete m.models[0].params[0].init],
    ["a symbolic weight shape", (m) => (m.models[0].params[0].shape = ["batch", 4])],
    ["a span without line", (m) => delete m.models[0].span.line],
    ["a plan without phases", (m) => (m.plans[0].phases = [])],
    ["an unknown early_stop mode", (m) => (m.plans[0].phases[0].earlyStop.mode = "auto")],
    ["a dangling input reference", (m) => (m.models[0].nodes[1].inputs = ["n99"])],
    ["a dangling output", (m) => (m.models[0].outputs[0].node = "n99")],
  ];
  for (const [what, mutate] of broken) {
    const m = base();
    mutate(m);
    assert.ok(irProblems(m).length > 0, `the schema should reject ${what}`);
  }
});

// ── the samples ───────────────────────────────────────────────────────────────────────────────────

const samples = nnetFiles("spec/samples");

test("the samples cover the language's main shapes of program", () => {
  const names = samples.map((s) => path.basename(s, ".nnet"));
  for (const n of ["mlp", "cnn", "residual", "transformer", "multi_io", "finetune"]) assert.ok(names.includes(n), `spec/samples/${n}.nnet is missing`);
});

for (const rel of samples) {
  const name = path.basename(rel, ".nnet");
  test(`sample ${name}: compiles clean, validates against the schema, matches ${name}.ir.json`, () => {
    const r = compileRel(rel);
    assert.equal(diagList(r), [], "expected no diagnostics");
    assert.equal(irProblems(r.module), [], "IR should validate");
    golden(`spec/samples/${name}.ir.json`, irText(r));
  });
}

test("sample IR: what each sample is there to show", () => {
  const get = (n: string) => compileRel(`spec/samples/${n}.nnet`).module;
  // Residual blocks expanded by repeat: one Residual instance per iteration, with its own weights.
  const res = get("residual").models[0]!;
  const instances = new Set(res.nodes.map((n) => n.name.split("/")[0]).filter((n) => n!.startsWith("Residual")));
  assert.equal([...instances].sort(), ["Residual", "Residual_1", "Residual_2", "Residual_3", "Residual_4"]);
  assert.ok(res.params.some((p) => p.name === "Residual_3/proj/kernel"), "the strided block projects its skip connection");
  // Tied embeddings: tied_dense owns no table of its own and reads wte's.
  const gpt = get("transformer").models[0]!;
  const tied = gpt.nodes.find((n) => n.op === "tied_dense")!;
  assert.is(tied.attrs.layer, "wte");
  assert.equal(tied.shape, ["batch", "seq", 1000]);
  assert.equal(gpt.params.filter((p) => p.role === "embeddings").map((p) => p.name), ["wte/embeddings", "pos_embedding/embeddings"]);
  assert.equal(gpt.dims, [{ name: "batch" }, { name: "seq", max: 128 }]);
  // Several inputs and outputs.
  const multi = get("multi_io");
  assert.equal(multi.models[0]!.inputs.map((i) => i.name), ["image", "meta"]);
  assert.equal(multi.models[0]!.outputs.map((o) => o.name), ["label_logits", "score"]);
  assert.equal(multi.plans[0]!.loss.map((t) => [t.fn, t.weight]), [["cross_entropy", 1], ["mse", 0.5]]);
  // Parameter counts worked out by hand (Keras conventions: batchnorm's moving statistics are non-trainable).
  const params = (n: string) => summarize(get(n).models[0]!).params;
  assert.equal(params("cnn"), { total: 320 + 18_496 + 23_050, trainable: 41_866, nonTrainable: 0 });
  assert.equal(params("residual"), { total: 48_586, trainable: 48_106, nonTrainable: 480 });
  assert.equal(params("transformer").total, 64_000 + 8_192 + 2 * (128 + 4 * (64 * 64 + 64) + 128 + (64 * 256 + 256) + (256 * 64 + 64)) + 128);
  // Phases with freeze: patterns as written and the layers they resolve to.
  const plan = get("finetune").plans[0]!;
  assert.equal(plan.phases.map((p) => [p.name, p.freeze.map((f) => f.pattern), p.frozenLayers, p.dataset]), [
    ["head_only", ["conv*"], ["conv_a", "conv_b"], "images"],
    ["full", [], [], "images"],
    ["hard", ["conv_a"], ["conv_a"], "images_hard"],
  ]);
});

test("symbolic dimensions in the IR are simplified: concat of [batch, seq, 8] twice along axis 1", () => {
  const r = compile("concat.nnet", "model C {\n  input a: f32[batch, seq, 8]\n  output y = concat(a, a, axis: 1)\n}\n", rootHost);
  assert.equal(diagList(r), []);
  const d = r.module.models[0]!.nodes[1]!.shape![1]!;
  assert.is(evalDim(d, { seq: 5 }), 10, `${JSON.stringify(d)} is twice seq`);
  assert.ok(!/(^|[^0-9])0\+/.test(String(d)), `${JSON.stringify(d)} carries a "0+" term (expected "2*seq" or "seq+seq")`);
});

// ── the zoo ──────────────────────────────────────────────────────────────────────────────────────

const zoo = nnetFiles("models");

test(`zoo: every models/*.nnet compiles to IR that validates (${zoo.length} found)`, () => {
  const failures: string[] = [];
  for (const rel of zoo) {
    const r = compileRel(rel);
    const internal = r.diagnostics.filter((d) => d.code === "NN9001").map((d) => `NN9001 ${d.message}`);
    const problems = [...internal, ...irProblems(r.module)];
    if (problems.length) failures.push(`${rel}:\n    ${problems.join("\n    ")}`);
  }
  assert.equal(failures, []);
});

test.run();
