// The PyTorch emitter: a checked (and optimized) IRModule → one readable, standalone Python module with a
// torch.nn.Module per model. Each layer with weights is a submodule registered at the path
// runtime/torch_names.ts gives it (so its state_dict keys are the layout: torch names, and
// runtime/torch_layout.ts converts a run's weights to and from them); `forward` is straight-line code, one
// statement per IR node, named after the .nnet bindings and preceded by the source line it comes from.
// Inputs and outputs keep the IR's layout (NHWC images, NWC sequences): convolutions and pools permute to
// channels-first and back around themselves (views, no copies, for channels-last tensors). `forward` returns
// a dict of the model's outputs. THE table is TORCH: Record<OpKind, …>, each entry computing what
// runtime/interpret.ts computes for that op, or saying why PyTorch cannot (NN6030).
// Pure: the same IR and options give the same text.
import { diag, type Diagnostic } from "../diagnostics.js";
import { evalDim } from "../ir/dims.js";
import { transposeSame, type OpKind } from "../ir/ops.js";
import { explicitAmounts, samePair } from "../ir/padding.js";
import { torchModulePath } from "../../runtime/torch_names.js";
import { errorText, guard, onPlugins, pluginEntry, PluginError } from "../plugin/api.js";
import type { AttrValue, DType, IRModel, IRModule, IRNode } from "../ir/types.js";

export interface TorchEmitOptions {
  /** The source's path as shown in comments ("models/mlp.nnet"). */
  displayPath: string;
  /** The text of every source file by IR span path, for the "file:line  text" comments. */
  sourceText: (file: string) => string | undefined;
  version: string;
  /** The -O level the module was optimized at (for training: every weight kept). */
  level: number;
  /**
   * Activation checkpointing (`--checkpoint-activations`): each block instance's statements become a function
   * run through `torch.utils.checkpoint`, which keeps its inputs only and recomputes the rest in backward.
   */
  checkpoint?: boolean;
}

const PY_RESERVED = new Set([
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
  "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
  "while", "with", "yield", "self", "torch", "nn", "F", "math", "Dict", "List", "Optional", "print", "len", "int", "float", "range",
  "max", "min", "sum", "list", "dict", "type", "object", "super", "input", "id", "abs", "all", "any", "map", "round", "slice", "str",
]);

/** Fresh Python identifiers in one scope. */
class PyNames {
  private used = new Set<string>(PY_RESERVED);
  fresh(want: string): string {
    let base = want.replace(/[^A-Za-z0-9_]/g, "_");
    if (!base || /^[0-9]/.test(base)) base = `_${base}`;
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/** A Python float or int literal. */
function pyNum(n: number): string {
  if (Number.isInteger(n)) return String(n);
  if (n === Infinity) return 'float("inf")';
  if (n === -Infinity) return 'float("-inf")';
  return String(n);
}
const pyStr = (s: string) => JSON.stringify(s);
const tuple = (xs: readonly (number | string)[]) => (xs.length === 1 ? `(${xs[0]},)` : `(${xs.join(", ")})`);
/** A comment's text on one line (no newlines, nothing that ends it). */
const comment = (s: string) => s.replace(/[\r\n\u2028\u2029]/g, " ").slice(0, 160);

/** The helpers a module may need, emitted once, in this order, when some lowering asks for them. */
const HELPERS: Record<string, string> = {
  checkpointed: `import torch.utils.checkpoint

_RECOMPUTING = [False]


def _checkpointed(block, *inputs):
    """Activation checkpointing (nnetc --checkpoint-activations): while training, a block keeps only its inputs
    and runs again in the backward pass for what the gradients need (with the same dropout masks: the random
    state is replayed). A batchnorm does not update its running statistics on that second run."""
    if not torch.is_grad_enabled():
        return block(*inputs)
    runs = [0]

    def run(*xs):
        runs[0] += 1
        if runs[0] == 1:
            return block(*xs)
        _RECOMPUTING[0] = True
        try:
            return block(*xs)
        finally:
            _RECOMPUTING[0] = False

    return torch.utils.checkpoint.checkpoint(run, *inputs, use_reentrant=False)`,
  pad_same: `def _pad_same(x, kernel, stride, dilation, value=0.0):
    """TensorFlow's "same" padding of a channels-first tensor's spatial axes (the odd pixel at the end)."""
    pads = []
    for i in reversed(range(len(kernel))):
        n = x.shape[2 + i]
        out = -(-n // stride[i])
        total = max((out - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x`,
  avg_pool_same: `def _avg_pool_same(x, size, stride):
    """Average pooling with TensorFlow's "same" padding: each window's mean over its real values only."""
    pool = F.avg_pool1d if len(size) == 1 else F.avg_pool2d
    ones = torch.ones_like(x[:, :1])
    ones1 = (1,) * len(size)
    return pool(_pad_same(x, size, stride, ones1), size, stride) / pool(_pad_same(ones, size, stride, ones1), size, stride)`,
  single_bias: `def _single_bias(rnn):
    """nnetc's LSTM has one bias per direction (Keras's); PyTorch's two add up: bias_hh stays zero, untrained."""
    for name, p in rnn.named_parameters():
        if name.startswith("bias_hh"):
            nn.init.zeros_(p)
            p.requires_grad_(False)
    return rnn`,
  last_states: `def _last_states(y, units):
    """A bidirectional layer's final states as nnetc concatenates them: forward's last step, backward's first."""
    return torch.cat([y[:, -1, :units], y[:, 0, units:]], dim=-1)`,
  BatchNorm: `class BatchNorm(nn.Module):
    """Batch normalization over every axis but the last (channels-last), as nnetc computes it: training uses
    the batch's mean and biased variance and moves the running statistics by \`momentum\` (Keras's meaning:
    the weight of the old value); evaluation, or a frozen layer (.eval()), uses the running statistics."""

    def __init__(self, channels, eps, momentum, scale=True, center=True):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels)) if center else None
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        if self.training:
            dims = tuple(range(x.dim() - 1))
            mean = x.mean(dim=dims)
            var = ((x - mean) ** 2).mean(dim=dims)
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_(mean.detach(), alpha=1 - self.momentum)
                self.running_var.mul_(self.momentum).add_(var.detach(), alpha=1 - self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight
        return y + self.bias if self.bias is not None else y`,
  SeparableConv2d: `class SeparableConv2d(nn.Module):
    """A depthwise convolution (channel multiplier m, no bias), then a 1x1 pointwise one with the bias."""

    def __init__(self, channels, filters, kernel, stride, dilation, multiplier, bias):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels * multiplier, kernel, stride, 0, dilation, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels * multiplier, filters, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))`,
  PosEmbedding: `class PosEmbedding(nn.Module):
    """Adds a learned positional embedding: row t of the table to step t."""

    def __init__(self, max_len, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, dim).uniform_(-0.05, 0.05))

    def forward(self, x):
        return x + self.weight[: x.shape[1]]`,
  LearnedTensor: `class LearnedTensor(nn.Module):
    """A free learned tensor (the parameter op), the same for every sample of its input's batch."""

    def __init__(self, *shape):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(*shape))

    def forward(self, x):
        return self.weight.expand(x.shape[0], *self.weight.shape)`,
  TiedBias: `class TiedBias(nn.Module):
    """The bias of a dense layer whose kernel is an embedding table, transposed (weights tied)."""

    def __init__(self, units):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, x, table):
        return F.linear(x, table, self.bias)`,
  LoRALinear: `class LoRALinear(nn.Linear):
    """nn.Linear with a LoRA adapter (Hu et al., 2021): + scale * dropout(x) @ lora_a @ lora_b, lora_a [in, rank]
    and lora_b [rank, out] (nnetc's layout: x @ a @ b)."""

    def __init__(self, fan_in, fan_out, bias, rank, scale, dropout):
        super().__init__(fan_in, fan_out, bias=bias)
        self.scale, self.lora_dropout = scale, dropout
        self.lora_a = nn.Parameter(torch.zeros(fan_in, rank))
        self.lora_b = nn.Parameter(torch.zeros(rank, fan_out))

    def forward(self, x):
        low = F.dropout(x, self.lora_dropout, self.training) @ self.lora_a @ self.lora_b
        return super().forward(x) + low * self.scale`,
  RMSNorm: `class RMSNorm(nn.Module):
    """Root-mean-square normalization over the last axis (Llama's LlamaRMSNorm): x / sqrt(mean(x^2) + eps) * weight."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)`,
  Attention: `class Attention(nn.Module):
    """Multi-head attention with Hugging Face's module names: query, key, value and output projections; key/value
    heads shared by groups of query heads (kv_heads); rotary position embeddings on queries and keys (halves
    rotated, as Llama); scores scaled by 1/sqrt(key_dim); a causal mask and a padding mask (1 token, 0 padding)
    add -1e9; dropout on the probabilities."""

    def __init__(self, dim, kv_dim, heads, key_dim, bias, causal, dropout, kv_heads=None, rope_theta=0.0, lora=(), lora_rank=0, lora_scale=1.0, lora_dropout=0.0):
        super().__init__()
        self.heads, self.key_dim, self.causal, self.dropout = heads, key_dim, causal, dropout
        self.kv_heads, self.rope_theta = kv_heads or heads, rope_theta
        # a projection the plan adapts with LoRA is a LoRALinear
        linear = lambda name, i, o: LoRALinear(i, o, bias, lora_rank, lora_scale, lora_dropout) if name in lora else nn.Linear(i, o, bias=bias)
        self.query = linear("query", dim, heads * key_dim)
        self.key = linear("key", kv_dim, self.kv_heads * key_dim)
        self.value = linear("value", kv_dim, self.kv_heads * key_dim)
        self.output = linear("output", heads * key_dim, dim)

    def rotary(self, y):
        t, kd = y.shape[2], self.key_dim
        inv = 1.0 / (self.rope_theta ** (torch.arange(0, kd, 2, device=y.device).float() / kd))
        angles = torch.arange(t, device=y.device).float()[:, None] * inv[None, :]
        emb = torch.cat([angles, angles], -1)
        half = torch.cat([-y[..., kd // 2:], y[..., : kd // 2]], -1)
        return y * emb.cos().to(y.dtype) + half * emb.sin().to(y.dtype)

    def forward(self, q, kv, mask=None):
        b, tq, tk = q.shape[0], q.shape[1], kv.shape[1]
        split = lambda y, t, h: y.reshape(b, t, h, self.key_dim).transpose(1, 2)
        Q, K, V = split(self.query(q), tq, self.heads), split(self.key(kv), tk, self.kv_heads), split(self.value(kv), tk, self.kv_heads)
        if self.rope_theta:
            Q, K = self.rotary(Q), self.rotary(K)
        if self.kv_heads != self.heads:
            K = K.repeat_interleave(self.heads // self.kv_heads, 1)
            V = V.repeat_interleave(self.heads // self.kv_heads, 1)
        scores = Q @ K.transpose(-1, -2) * (1 / math.sqrt(self.key_dim))
        if self.causal:
            scores = scores + torch.ones(tq, tk, device=q.device, dtype=scores.dtype).triu(1) * -1e9
        if mask is not None:
            scores = scores + (1 - mask.to(scores.dtype))[:, None, None, :] * -1e9
        probs = F.dropout(scores.softmax(-1), self.dropout, self.training)
        ctx = (probs @ V).transpose(1, 2).reshape(b, tq, self.heads * self.key_dim)
        return self.output(ctx)`,
};

/** What one IR node becomes: an optional submodule (registered at the layer's path), statements, and its value. */
type Lowered = { module?: string; expr: string } | { none: string; hint?: string };

interface Ctx {
  n: IRNode;
  a: Record<string, AttrValue>;
  /** Python expressions of the inputs. */
  x: string[];
  /** IR shapes of the inputs and of the output. */
  inShape: (i: number) => readonly (number | string)[];
  out: readonly (number | string)[];
  /** `self.<path>` of this node's layer (or another's). */
  mod: string;
  modOf: (layer: string) => string;
  /** Python expression of a dimension (symbols bound from the inputs at the top of forward). */
  dim: (d: number | string) => string;
  helper: (name: keyof typeof HELPERS) => string;
}

const num = (v: AttrValue | undefined) => v as number;
const pairOf = (v: AttrValue | undefined): [number, number] => (Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number]);
const bool = (v: AttrValue | undefined) => v === true;

/** A layer activation (the `activation` argument of dense/conv layers) applied to `x`. */
function activate(x: string, act: AttrValue | undefined): string {
  switch (act) {
    case undefined:
    case "linear":
      return x;
    case "relu":
      return `F.relu(${x})`;
    case "relu6":
      return `F.relu6(${x})`;
    case "gelu":
      return `F.gelu(${x})`;
    case "gelu_tanh":
      return `F.gelu(${x}, approximate="tanh")`;
    case "silu":
      return `F.silu(${x})`;
    case "sigmoid":
      return `torch.sigmoid(${x})`;
    case "tanh":
      return `torch.tanh(${x})`;
    case "softmax":
      return `F.softmax(${x}, dim=-1)`;
    case "leaky_relu":
      return `F.leaky_relu(${x}, 0.2)`;
    case "elu":
      return `F.elu(${x})`;
  }
  throw new Error(`torch emitter: unknown activation ${String(act)}`);
}

/** The static [begin, end] pads of `padding` over the given spatial sizes, or null when a size is symbolic ("same"). */
function staticPads(padding: AttrValue | undefined, sizes: readonly (number | string)[], window: number[], stride: number[]): [number, number][] | null {
  if (padding === "valid") return window.map(() => [0, 0]);
  if (padding === "causal") return window.map((k) => [k - 1, 0]);
  const fixed = explicitAmounts(padding, window.length as 1 | 2);
  if (fixed) return fixed;
  if (!sizes.every((d) => typeof d === "number")) return null;
  return sizes.map((n, i) => samePair(n as number, window[i]!, stride[i]!));
}

/** F.pad's argument for [begin, end] per spatial axis (last axis first). */
const fPad = (pads: [number, number][]) => tuple([...pads].reverse().flatMap((p) => p));

/**
 * A convolution or pool on a channels-last input: permute to channels-first, pad where the module cannot
 * (asymmetric or run-time "same"), apply, permute back. `symmetric` receives the constructor's padding when
 * the pads are static and symmetric (then nothing is padded here).
 */
function channelsFirst(c: Ctx, dims: 1 | 2, window: number[], stride: number[], dilation: number[], padding: AttrValue | undefined, apply: (x: string, symmetric: number[] | null) => { module?: string; expr: string }, padValue = "0.0"): Lowered {
  const toCf = dims === 2 ? `${c.x[0]}.permute(0, 3, 1, 2)` : `${c.x[0]}.transpose(1, 2)`;
  const back = dims === 2 ? ".permute(0, 2, 3, 1)" : ".transpose(1, 2)";
  const eff = window.map((k, i) => (k - 1) * dilation[i]! + 1);
  const pads = staticPads(padding, c.inShape(0).slice(1, 1 + dims), eff, stride);
  let x = toCf;
  let sym: number[] | null = null;
  if (pads === null) x = `${c.helper("pad_same")}(${toCf}, ${tuple(window)}, ${tuple(stride)}, ${tuple(dilation)}${padValue !== "0.0" ? `, ${padValue}` : ""})`;
  else if (pads.every(([b, e]) => b === e)) sym = pads.map(([b]) => b);
  else x = `F.pad(${toCf}, ${fPad(pads)}${padValue !== "0.0" ? `, value=${padValue}` : ""})`;
  const r = apply(x, sym);
  return { ...(r.module ? { module: r.module } : {}), expr: `${r.expr}${back}` };
}

function conv(c: Ctx, dims: 1 | 2): Lowered {
  const k = dims === 2 ? pairOf(c.a.kernel) : [num(c.a.kernel)];
  const stride = dims === 2 ? pairOf(c.a.stride) : [num(c.a.stride)];
  const dilation = dims === 2 ? pairOf(c.a.dilation) : [num(c.a.dilation)];
  const inCh = c.inShape(0)[dims + 1] as number;
  const filters = num(c.a.filters);
  const cls = dims === 2 ? "nn.Conv2d" : "nn.Conv1d";
  const r = channelsFirst(c, dims, k, stride, dilation, c.a.padding, (x, sym) => ({
    module: `${cls}(${inCh}, ${filters}, ${tuple(k)}, stride=${tuple(stride)}${sym && sym.some((p) => p) ? `, padding=${tuple(sym)}` : ""}${dilation.some((d) => d !== 1) ? `, dilation=${tuple(dilation)}` : ""}${num(c.a.groups) > 1 ? `, groups=${num(c.a.groups)}` : ""}, bias=${c.a.bias ? "True" : "False"})`,
    expr: `${c.mod}(${x})`,
  }));
  return "none" in r ? r : { ...r, expr: activate(r.expr, c.a.activation) };
}

function depthwise(c: Ctx, separable: boolean): Lowered {
  const k = pairOf(c.a.kernel);
  const stride = pairOf(c.a.stride);
  const dilation = pairOf(c.a.dilation);
  const ch = c.inShape(0)[3] as number;
  const m = num(c.a.multiplier);
  const r = channelsFirst(c, 2, k, stride, dilation, c.a.padding, (x, sym) => {
    const padArg = sym && sym.some((p) => p) ? `, padding=${tuple(sym)}` : "";
    if (separable) {
      // The separable helper pads nothing itself: symmetric static pads are applied here.
      const xin = padArg ? `F.pad(${x}, ${fPad(sym!.map((p) => [p, p] as [number, number]))})` : x;
      return { module: `${c.helper("SeparableConv2d")}(${ch}, ${num(c.a.filters)}, ${tuple(k)}, ${tuple(stride)}, ${tuple(dilation)}, ${m}, bias=${c.a.bias ? "True" : "False"})`, expr: `${c.mod}(${xin})` };
    }
    return {
      module: `nn.Conv2d(${ch}, ${ch * m}, ${tuple(k)}, stride=${tuple(stride)}${padArg}${dilation.some((d) => d !== 1) ? `, dilation=${tuple(dilation)}` : ""}, groups=${ch}, bias=${c.a.bias ? "True" : "False"})`,
      expr: `${c.mod}(${x})`,
    };
  });
  return "none" in r ? r : { ...r, expr: activate(r.expr, c.a.activation) };
}

function pool(kind: "max" | "avg", dims: 1 | 2): (c: Ctx) => Lowered {
  return (c) => {
    const size = dims === 2 ? pairOf(c.a.size) : [num(c.a.size)];
    const stride = c.a.stride === null || c.a.stride === undefined ? size : dims === 2 ? pairOf(c.a.stride) : [num(c.a.stride)];
    const fn = `F.${kind}_pool${dims}d`;
    const toCf = dims === 2 ? `${c.x[0]}.permute(0, 3, 1, 2)` : `${c.x[0]}.transpose(1, 2)`;
    const back = dims === 2 ? ".permute(0, 2, 3, 1)" : ".transpose(1, 2)";
    if (kind === "avg" && c.a.padding === "same") return { expr: `${c.helper("avg_pool_same")}(${toCf}, ${tuple(size)}, ${tuple(stride)})${back}` };
    // PyTorch's own padding= (−∞ for max, counted zeros for avg: count_include_pad=True) and ceil_mode, when the
    // pads are symmetric and at most half the window (always so for the language's; fold-padding's may not be).
    const fixed = explicitAmounts(c.a.padding, dims);
    const ceil = c.a.ceil_mode === true;
    if (fixed && (ceil || c.a.padding !== "valid") && fixed.every(([b, e], i) => b === e && 2 * b <= size[i]!)) {
      const sym = fixed.map(([b]) => b);
      return { expr: `${fn}(${toCf}, ${tuple(size)}, ${tuple(stride)}${sym.some((p) => p) ? `, padding=${tuple(sym)}` : ""}${ceil ? ", ceil_mode=True" : ""})${back}` };
    }
    // Max pooling: "same" pads with -inf (padded values never win); fold-padding's explicit pads are zeros (its
    // input is ≥ 0 and every window keeps a real value, so zeros and −∞ agree).
    const padValue = c.a.padding === "same" ? 'float("-inf")' : "0.0";
    return channelsFirst(c, dims, size, stride, size.map(() => 1), c.a.padding, (x, sym) => ({ expr: sym && sym.some((p) => p) ? `${fn}(F.pad(${x}, ${fPad(sym.map((p) => [p, p] as [number, number]))}, value=${padValue}), ${tuple(size)}, ${tuple(stride)})` : `${fn}(${x}, ${tuple(size)}, ${tuple(stride)})` }), padValue);
  };
}

function recurrent(kind: "lstm" | "gru"): (c: Ctx) => Lowered {
  return (c) => {
    if (kind === "gru" && c.a.reset_after === false) return { none: "PyTorch's GRU applies the reset gate after the recurrent matmul (reset_after: true) only", hint: "declare gru(…, reset_after: true), the default" };
    const f = c.inShape(0)[2] as number;
    const u = num(c.a.units);
    const bi = bool(c.a.bidirectional);
    const ctor = `nn.${kind.toUpperCase()}(${f}, ${u}, batch_first=True${bi ? ", bidirectional=True" : ""})`;
    const y = `${c.mod}(${c.x[0]})[0]`;
    const expr = c.a.return_sequences ? y : bi ? `${c.helper("last_states")}(${y}, ${u})` : `${y}[:, -1]`;
    return { module: kind === "lstm" ? `${c.helper("single_bias")}(${ctor})` : ctor, expr };
  };
}

/** Python dtype of an IR dtype. f16/f64 compute as float32, as on every engine (precision is a run setting). */
const TORCH_DTYPE: Record<DType, string> = { f16: "torch.float32", f32: "torch.float32", f64: "torch.float32", i8: "torch.int8", i32: "torch.int32", i64: "torch.int64", bool: "torch.bool" };

const unary = (f: (x: string, c: Ctx) => string) => (c: Ctx): Lowered => ({ expr: f(c.x[0]!, c) });
/** reduce_mean/sum/max/min: the torch function over the node's axes. */
const reduce = (fn: string) => unary((x, c) => `${fn}(${x}, dim=(${(c.a.axis as number[]).join(", ")},), keepdim=${c.a.keepdims === true ? "True" : "False"})`);

/** A channels-first module applied to a channels-last value: channels to axis 1 and back. */
const channelsLast = (c: Ctx) => (c.inShape(0).length > 2 ? `${c.mod}(${c.x[0]}.movedim(-1, 1)).movedim(1, -1)` : `${c.mod}(${c.x[0]})`);

export const TORCH: Record<OpKind, (c: Ctx) => Lowered> = {
  input: () => {
    throw new Error("inputs are bound, not computed");
  },
  constant: (c) => ({ expr: pyNum(num(c.a.value)) }),
  dense: (c) => ({
    module: (c.a.lora as string[] | undefined)?.includes("")
      ? `${c.helper("LoRALinear")}(${c.inShape(0)[c.inShape(0).length - 1]}, ${num(c.a.units)}, bias=${c.a.bias ? "True" : "False"}, rank=${num(c.a.lora_rank)}, scale=${pyNum(num(c.a.lora_scale))}, dropout=${pyNum(num(c.a.lora_dropout))})`
      : `nn.Linear(${c.inShape(0)[c.inShape(0).length - 1]}, ${num(c.a.units)}, bias=${c.a.bias ? "True" : "False"})`,
    expr: activate(`${c.mod}(${c.x[0]})`, c.a.activation),
  }),
  tied_dense: (c) => {
    const table = `${c.modOf(String(c.a.layer))}.weight`;
    return c.a.bias ? { module: `${c.helper("TiedBias")}(${c.out[c.out.length - 1]})`, expr: `${c.mod}(${c.x[0]}, ${table})` } : { expr: `F.linear(${c.x[0]}, ${table})` };
  },
  conv1d: (c) => conv(c, 1),
  conv2d: (c) => conv(c, 2),
  depthwise_conv2d: (c) => depthwise(c, false),
  separable_conv2d: (c) => depthwise(c, true),
  conv2d_transpose: (c) => {
    // PyTorch's ConvTranspose2d gives the whole (h - 1)·stride + kernel canvas; "same" keeps what TensorFlow keeps.
    const k = pairOf(c.a.kernel);
    const stride = pairOf(c.a.stride);
    const inCh = c.inShape(0)[3] as number;
    const { before, after, extra } = transposeSame(k, stride, c.a.padding);
    const y = `${c.mod}(${c.x[0]}.permute(0, 3, 1, 2))`;
    const cropped = [...before, ...after].some((t) => t) ? `F.pad(${y}, (${-before[1]!}, ${-after[1]!}, ${-before[0]!}, ${-after[0]!}))` : y;
    return {
      module: `nn.ConvTranspose2d(${inCh}, ${num(c.a.filters)}, ${tuple(k)}, stride=${tuple(stride)}${extra.some((e) => e) ? `, output_padding=${tuple(extra)}` : ""}, bias=${c.a.bias ? "True" : "False"})`,
      expr: activate(`${cropped}.permute(0, 2, 3, 1)`, c.a.activation),
    };
  },
  conv1d_transpose: (c) => {
    // nn.ConvTranspose1d gives the whole (t - 1)·stride + kernel; "same" keeps what TensorFlow keeps.
    const k = [num(c.a.kernel)];
    const stride = [num(c.a.stride)];
    const inCh = c.inShape(0)[2] as number;
    const { before, after, extra } = transposeSame(k, stride, c.a.padding);
    const y = `${c.mod}(${c.x[0]}.transpose(1, 2))`;
    const cropped = before[0] || after[0] ? `F.pad(${y}, (${-before[0]!}, ${-after[0]!}))` : y;
    return {
      module: `nn.ConvTranspose1d(${inCh}, ${num(c.a.filters)}, ${k[0]}, stride=${stride[0]}${extra[0] ? `, output_padding=${extra[0]}` : ""}, bias=${c.a.bias ? "True" : "False"})`,
      expr: activate(`${cropped}.transpose(1, 2)`, c.a.activation),
    };
  },
  max_pool1d: pool("max", 1),
  avg_pool1d: pool("avg", 1),
  max_pool2d: pool("max", 2),
  avg_pool2d: pool("avg", 2),
  global_avg_pool1d: unary((x) => `${x}.mean(dim=1)`),
  global_max_pool1d: unary((x) => `${x}.amax(dim=1)`),
  global_avg_pool2d: unary((x) => `${x}.mean(dim=(1, 2))`),
  global_max_pool2d: unary((x) => `${x}.amax(dim=(1, 2))`),
  zero_pad2d: unary((x, c) => {
    const [ph, pw] = pairOf(c.a.padding);
    return `F.pad(${x}, (0, 0, ${pw}, ${pw}, ${ph}, ${ph}))`;
  }),
  upsample2d: unary((x, c) => {
    const [a, b] = pairOf(c.a.size);
    return `${x}.repeat_interleave(${a}, dim=1).repeat_interleave(${b}, dim=2)`;
  }),
  batchnorm: (c) => {
    const ch = c.inShape(0)[c.inShape(0).length - 1];
    return { module: `${c.helper("BatchNorm")}(${ch}, eps=${pyNum(num(c.a.epsilon))}, momentum=${pyNum(num(c.a.momentum))}${c.a.scale ? "" : ", scale=False"}${c.a.center ? "" : ", center=False"})`, expr: `${c.mod}(${c.x[0]})` };
  },
  rmsnorm: (c) => ({ module: `${c.helper("RMSNorm")}(${c.inShape(0)[c.inShape(0).length - 1]}, eps=${pyNum(num(c.a.epsilon))})`, expr: `${c.mod}(${c.x[0]})` }),
  // nn.GroupNorm normalizes a channels-first tensor: the channels move to axis 1 and back. instancenorm is
  // GroupNorm with one channel per group (nn.InstanceNorm with affine=True has the same weight and bias).
  groupnorm: (c) => ({ module: `nn.GroupNorm(${num(c.a.groups)}, ${c.inShape(0)[c.inShape(0).length - 1]}, eps=${pyNum(num(c.a.epsilon))})`, expr: channelsLast(c) }),
  instancenorm: (c) => {
    const ch = c.inShape(0)[c.inShape(0).length - 1];
    return { module: `nn.GroupNorm(${ch}, ${ch}, eps=${pyNum(num(c.a.epsilon))})`, expr: channelsLast(c) };
  },
  layernorm: (c) => ({ module: `nn.LayerNorm(${c.inShape(0)[c.inShape(0).length - 1]}, eps=${pyNum(num(c.a.epsilon))})`, expr: `${c.mod}(${c.x[0]})` }),
  dropout: unary((x, c) => `F.dropout(${x}, ${pyNum(num(c.a.rate))}, self.training)`),
  sample_normal: (c) => ({ expr: `(${c.x[0]} + torch.exp(0.5 * ${c.x[1]}) * torch.randn_like(${c.x[0]}))${c.a.always === true ? "" : ` if self.training else ${c.x[0]}`}` }),
  parameter: (c) => ({ module: `${c.helper("LearnedTensor")}(${(c.a.shape as number[]).join(", ")})`, expr: `${c.mod}(${c.x[0]})` }),
  random_normal_like: (c) => ({ expr: `torch.randn_like(${c.x[0]}) * ${pyNum(num(c.a.std))}${c.a.always === true ? "" : ` if self.training else torch.zeros_like(${c.x[0]})`}` }),
  embedding: (c) => ({ module: `nn.Embedding(${num(c.a.vocab)}, ${num(c.a.dim)})`, expr: `${c.mod}(${c.x[0]})` }),
  pos_embedding: (c) => ({ module: `${c.helper("PosEmbedding")}(${num(c.a.max_len)}, ${c.inShape(0)[2]})`, expr: `${c.mod}(${c.x[0]})` }),
  lstm: recurrent("lstm"),
  gru: recurrent("gru"),
  attention: (c) => {
    const n = c.x.length - (c.a.mask ? 1 : 0);
    const d = c.inShape(0)[2] as number;
    const kvd = (n > 1 ? c.inShape(1)[2] : d) as number;
    const h = num(c.a.heads);
    const kd = (c.a.key_dim as number | null) ?? d / h;
    const groups = (c.a.lora as string[] | undefined) ?? [];
    if (groups.length) c.helper("LoRALinear");
    const lora = groups.length ? `lora=(${groups.map((g) => JSON.stringify(g)).join(", ")},), lora_rank=${num(c.a.lora_rank)}, lora_scale=${pyNum(num(c.a.lora_scale))}, lora_dropout=${pyNum(num(c.a.lora_dropout))}` : "";
    const extra = [c.a.kv_heads ? `kv_heads=${num(c.a.kv_heads)}` : "", c.a.rotary ? `rope_theta=${pyNum(num(c.a.rope_theta))}` : "", lora].filter(Boolean).map((e) => `, ${e}`).join("");
    const args = [c.x[0], n > 1 ? c.x[1] : c.x[0], ...(c.a.mask ? [c.x[c.x.length - 1]] : [])];
    return { module: `${c.helper("Attention")}(${d}, ${kvd}, heads=${h}, key_dim=${kd}, bias=${c.a.bias ? "True" : "False"}, causal=${c.a.causal ? "True" : "False"}, dropout=${pyNum(num(c.a.dropout))}${extra})`, expr: `${c.mod}(${args.join(", ")})` };
  },
  flatten: unary((x) => `${x}.flatten(1)`),
  reshape: unary((x, c) => `${x}.reshape(${x}.shape[0], ${(c.a.shape as (number | string)[]).map(c.dim).join(", ")})`),
  transpose: unary((x, c) => `${x}.permute(${(c.a.perm as number[]).join(", ")})`),
  concat: (c) => ({ expr: `torch.cat([${c.x.join(", ")}], dim=${num(c.a.axis)})` }),
  take: unary((x, c) => `${x}.select(${num(c.a.axis)}, ${num(c.a.index)})`),
  slice: unary((x, c) => {
    const ax = num(c.a.axis) < 0 ? num(c.a.axis) + c.inShape(0).length : num(c.a.axis);
    const step = num(c.a.step ?? 1);
    return `${x}[${":, ".repeat(ax)}${num(c.a.start)}:${c.a.end === null ? "" : num(c.a.end)}${step !== 1 ? `:${step}` : ""}]`;
  }),
  squeeze: unary((x, c) => `${x}.squeeze(${num(c.a.axis) < 0 ? num(c.a.axis) + c.inShape(0).length : num(c.a.axis)})`),
  expand_dims: unary((x, c) => `${x}.unsqueeze(${num(c.a.axis) < 0 ? num(c.a.axis) + c.inShape(0).length + 1 : num(c.a.axis)})`),
  cast: unary((x, c) => `${x}.to(${TORCH_DTYPE[c.a.dtype as DType]})`),
  add: (c) => ({ expr: `${c.x[0]} + ${c.x[1]}` }),
  sub: (c) => ({ expr: `${c.x[0]} - ${c.x[1]}` }),
  mul: (c) => ({ expr: `${c.x[0]} * ${c.x[1]}` }),
  div: (c) => ({ expr: `${c.x[0]} / ${c.x[1]}` }),
  matmul: (c) => ({ expr: `${c.x[0]} @ ${c.x[1]}` }),
  relu: unary((x) => activate(x, "relu")),
  relu6: unary((x) => activate(x, "relu6")),
  gelu: unary((x, c) => activate(x, c.a.approximate ? "gelu_tanh" : "gelu")),
  silu: unary((x) => activate(x, "silu")),
  sigmoid: unary((x) => activate(x, "sigmoid")),
  tanh: unary((x) => activate(x, "tanh")),
  softmax: unary((x, c) => `F.softmax(${x}, dim=${num(c.a.axis)})`),
  leaky_relu: unary((x, c) => `F.leaky_relu(${x}, ${pyNum(num(c.a.alpha))})`),
  elu: unary((x, c) => `F.elu(${x}, ${pyNum(num(c.a.alpha))})`),
  identity: unary((x) => x),
  softplus: unary((x) => `F.softplus(${x})`),
  mish: unary((x) => `F.mish(${x})`),
  hardswish: unary((x) => `F.hardswish(${x})`),
  hardsigmoid: unary((x) => `F.hardsigmoid(${x})`),
  exp: unary((x) => `torch.exp(${x})`),
  log: unary((x) => `torch.log(${x})`),
  sqrt: unary((x) => `torch.sqrt(${x})`),
  abs: unary((x) => `torch.abs(${x})`),
  neg: unary((x) => `torch.neg(${x})`),
  square: unary((x) => `torch.square(${x})`),
  pow: unary((x, c) => `torch.pow(${x}, ${pyNum(num(c.a.exponent))})`),
  clip: unary((x, c) => `torch.clamp(${x}, ${pyNum(num(c.a.min))}, ${pyNum(num(c.a.max))})`),
  reduce_mean: reduce("torch.mean"),
  reduce_sum: reduce("torch.sum"),
  reduce_max: reduce("torch.amax"),
  reduce_min: reduce("torch.amin"),
};

/** A value of a .nnet argument as a Python literal (what plugin torch lowerings write attributes with). */
export function pyLiteral(v: unknown): string {
  if (typeof v === "number") return pyNum(v);
  if (typeof v === "boolean") return v ? "True" : "False";
  if (v === null || v === undefined) return "None";
  if (typeof v === "string") return pyStr(v);
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(", ")}]`;
  return "None";
}

// Plugin ops with a torch lowering join the table: a Python expression over the inputs (the plugin's own code,
// trusted as the config file is; the .nnet file's values reach it only through pyLiteral).
onPlugins((from) => {
  const table = TORCH as Record<string, (c: Ctx) => Lowered>;
  const names: string[] = [];
  for (const op of from.plugin.ops ?? []) {
    if (!op.torch) continue;
    names.push(op.name);
    table[op.name] = (c) => {
      const what = `op ${op.name}'s torch lowering`;
      const lits = Object.fromEntries(Object.entries(c.a).map(([k, v]) => [k, pyLiteral(v)]));
      const expr = guard(from, what, () => op.torch!(c.x, lits));
      if (typeof expr !== "string" || !expr.trim() || expr.includes("\n")) throw new PluginError(from.plugin.name, from.file, what, new Error(`it returned ${typeof expr === "string" ? JSON.stringify(expr.slice(0, 80)) : typeof expr}, not a one-line Python expression`));
      return { expr: `(${expr})` };
    };
  }
  return () => {
    for (const n of names) delete table[n];
  };
});

/** A dimension expression in Python: symbols are locals bound from the inputs, floor/ceil from math. */
function dimExpr(d: number | string, bound: ReadonlyMap<string, string>): string {
  if (typeof d === "number") return String(d);
  if (evalDim(d, {}) !== undefined) return String(evalDim(d, {}));
  const py = d.replace(/[A-Za-z_][A-Za-z0-9_]*/g, (s) => (s === "floor" || s === "ceil" ? `math.${s}` : bound.get(s) ?? "-1"));
  return /^[\w.]+$/.test(py) ? py : `int(${py})`;
}

/** The Python class of one model; diagnostics for layers PyTorch cannot express. */
/**
 * The block nesting depth activation checkpointing cuts at: the shallowest at which the model has two block
 * instances or more (ResNet-50's four stages; BERT's encoder layers inside its one Bert block), so that each
 * checkpointed segment is one repeated unit.
 */
function checkpointDepth(m: IRModel): number {
  const paths = m.nodes.map((n) => n.name.split("/").slice(0, -1)).filter((p) => p.length);
  const deepest = Math.max(0, ...paths.map((p) => p.length));
  for (let d = 1; d <= deepest; d++) if (new Set(paths.filter((p) => p.length >= d).map((p) => p.slice(0, d).join("/"))).size >= 2) return d;
  return Math.max(1, deepest);
}

/** The block instance a layer belongs to, cut at `depth` ("Bert/EncoderLayer_3" of "Bert/EncoderLayer_3/attn" at 2); null for the model's own layers. */
function instanceAt(layer: string, depth: number): string | null {
  const path = layer.split("/").slice(0, -1);
  return path.length ? path.slice(0, depth).join("/") : null;
}

interface BodyLine {
  group: string | null;
  defines?: string;
  uses?: string[];
  stateful?: boolean;
}

/**
 * The forward's lines with each run of a block instance's lines made a nested function called through
 * `_checkpointed` (its tensor inputs as arguments, the values later lines or the outputs read as results).
 * Moved statements keep their layer in `statements`.
 */
function checkpointBlocks(body: string[], info: BodyLine[], outputs: string[], statements: Map<string, TorchLine>, used: Set<string>, names: PyNames): string[] {
  const out: string[] = [];
  for (let i = 0, j = 0; i < body.length; i = j) {
    const group = info[i]!.group;
    for (j = i; j < body.length && info[j]!.group === group; j++);
    const lines = body.slice(i, j);
    const seg = info.slice(i, j);
    const defs = new Set(seg.flatMap((s) => (s.defines ? [s.defines] : [])));
    const ins = [...new Set(seg.flatMap((s) => s.uses ?? []).filter((u) => !defs.has(u)))];
    const later = new Set([...info.slice(j).flatMap((s) => s.uses ?? []), ...outputs]);
    const outs = [...defs].filter((d) => later.has(d));
    if (group === null || !ins.length || !outs.length) {
      out.push(...lines);
      continue;
    }
    used.add("checkpointed");
    const fn = names.fresh(`block_${group.replace(/\W/g, "_")}`);
    out.push(`        def ${fn}(${ins.join(", ")}):`);
    for (const l of lines) {
      out.push(`    ${l}`);
      const s = statements.get(l);
      if (s) statements.set(`    ${l}`, s);
    }
    out.push(`            return ${outs.join(", ")}`);
    out.push(`        ${outs.join(", ")} = _checkpointed(${fn}, ${ins.join(", ")})`);
  }
  return out;
}

/** BatchNorm's running-statistics update, skipped while a checkpointed block runs a second time. */
function onceUnderCheckpoint(code: string): string {
  const update = /^( +)with torch\.no_grad\(\):\n((?:\1    self\.running_\w+\.[^\n]*\n?)+)/m;
  if (!update.test(code)) throw new Error("BatchNorm's running-statistics update not found");
  return code.replace(update, (_all, ind: string, body: string) => `${ind}with torch.no_grad():\n${ind}    if not _RECOMPUTING[0]:  # not again when a checkpointed block runs a second time\n${body.replace(/^/gm, "    ").replace(/ +$/, "")}`);
}

/** A statement of a forward: the layer it computes (an engine's exception there names that layer). */
export interface TorchLine {
  layer: string;
  op: string;
  span: IRNode["span"];
}

function emitModel(m: IRModel, o: TorchEmitOptions, used: Set<string>, className: string): { lines: string[]; diagnostics: Diagnostic[]; statements: Map<string, TorchLine> } {
  const diagnostics: Diagnostic[] = [];
  const init: string[] = [];
  const body: string[] = [];
  /** Per line of `body`: the block instance it belongs to (null: the model's own), what it defines and reads. */
  const info: BodyLine[] = [];
  const push = (text: string, line: BodyLine) => {
    body.push(text);
    info.push(line);
  };
  const statements = new Map<string, TorchLine>();
  const names = new PyNames();
  const local = new Map<string, string>();
  const shapeOf = new Map(m.nodes.map((n) => [n.id, n.shape ?? []]));
  // Containers for block instances, created once, outermost first; layers registered once (shared layers).
  const containers = new Set<string>();
  const registered = new Map<string, string>();
  const paths = new Map<string, string>();
  const self = (layer: string) => `self.${torchModulePath(layer)}`;
  for (const n of m.nodes) {
    if (!m.params.some((p) => p.layer === n.name)) continue;
    const path = torchModulePath(n.name);
    const clash = paths.get(path);
    if (clash !== undefined && clash !== n.name) diagnostics.push(diag("torchNameClash", n.span, { layer: n.name, other: clash, path }));
    paths.set(path, n.name);
  }

  const args = m.inputs.map((i) => {
    const v = names.fresh(i.name);
    local.set(i.node, v);
    return v;
  });
  // Symbolic dimensions bound from the inputs, as the interpreter binds them (reshape targets need them).
  const bound = new Map<string, string>();
  const needsDims = m.nodes.some((n) => n.op === "reshape" && (n.attrs.shape as (number | string)[]).some((d) => typeof d === "string"));
  if (needsDims) {
    for (const i of m.inputs) {
      i.shape.forEach((d, k) => {
        if (typeof d !== "string" || !/^[A-Za-z_]\w*$/.test(d) || bound.has(d)) return;
        const v = names.fresh(d);
        bound.set(d, v);
        push(`        ${v} = ${local.get(i.node)}.shape[${k}]`, { group: null });
      });
    }
  }

  const depth = checkpointDepth(m);
  let last = "";
  for (const n of m.nodes) {
    if (n.op === "input") continue;
    const text = o.sourceText(n.span.file);
    const line = text?.split("\n")[n.span.line - 1]?.trim() ?? "";
    const file = n.span.file === m.span.file ? o.displayPath : n.span.file;
    const where = n.name.includes("/") ? ` (${n.name.slice(0, n.name.lastIndexOf("/"))})` : "";
    const note = `        # ${comment(`${file.slice(file.lastIndexOf("/") + 1)}:${n.span.line}${where}  ${line}`)}`;
    const group = instanceAt(n.name, depth);
    if (note !== last) push(note, { group });
    last = note;
    const ctx: Ctx = {
      n,
      a: n.attrs,
      x: n.inputs.map((id) => local.get(id)!),
      inShape: (i) => shapeOf.get(n.inputs[i]!) ?? [],
      out: n.shape ?? [],
      mod: self(n.name),
      modOf: self,
      dim: (d) => dimExpr(d, bound),
      helper: (h) => {
        used.add(h);
        return /^[A-Z]/.test(h) ? h : `_${h}`;
      },
    };
    const plugin = pluginEntry("ops", n.op);
    if (plugin && !Object.hasOwn(TORCH, n.op)) {
      diagnostics.push(diag("pluginNoLowering", n.span, { plugin: plugin.from.plugin.name, file: plugin.from.file, kind: "op", name: n.op, target: "PyTorch", field: "torch", layer: n.name }));
      continue;
    }
    let r: Lowered;
    try {
      r = TORCH[n.op as OpKind](ctx);
    } catch (e) {
      if (!(e instanceof PluginError)) throw e;
      diagnostics.push(diag("pluginThrew", n.span, { plugin: e.plugin, file: e.file, what: e.what, message: errorText(e.error) }));
      continue;
    }
    if ("none" in r) {
      diagnostics.push(diag("torchUnsupported", n.span, { layer: n.name, op: n.op, reason: r.none, ...(r.hint ? { hint: r.hint } : {}) }));
      continue;
    }
    if (r.module && !registered.has(n.name)) {
      const segs = n.name.split("/");
      for (let k = 1; k < segs.length; k++) {
        const c = segs.slice(0, k).join("/");
        if (!containers.has(c)) {
          containers.add(c);
          init.push(`        ${self(c)} = nn.Module()`);
        }
      }
      init.push(`        ${self(n.name)} = ${r.module}`);
      registered.set(n.name, r.module);
    }
    // Identity-like nodes reuse their input's name; everything else gets a local named after its binding.
    if (n.op === "identity") {
      local.set(n.id, ctx.x[0]!);
      continue;
    }
    const v = names.fresh((n.binding ?? n.name.slice(n.name.lastIndexOf("/") + 1)).replace(/\//g, "_"));
    local.set(n.id, v);
    push(`        ${v} = ${r.expr}`, { group, defines: v, uses: ctx.x, stateful: n.op === "batchnorm" });
    statements.set(body[body.length - 1]!, { layer: n.name, op: n.op, span: n.span });
  }
  const forward = o.checkpoint ? checkpointBlocks(body, info, m.outputs.map((x) => local.get(x.node)!), statements, used, names) : body;

  const sig = args.map((a) => `${a}: torch.Tensor`).join(", ");
  const outs = m.outputs.map((x) => `${pyStr(x.name)}: ${local.get(x.node)}`).join(", ");
  const lines: string[] = [];
  lines.push(`class ${className}(nn.Module):`);
  const doc = m.doc ? m.doc.replace(/\\/g, "\\\\").replace(/"""/g, '\\"\\"\\"') : `The ${m.name} model of ${o.displayPath}.`;
  lines.push(`    """${doc}`);
  lines.push("");
  lines.push(`    Inputs: ${m.inputs.map((i) => `${i.name} ${i.dtype}[${i.shape.join(", ")}]`).join(", ")}.`);
  lines.push(`    Outputs (a dict): ${m.outputs.map((x) => `${x.name} [${(shapeOf.get(x.node) ?? []).join(", ")}]`).join(", ")}.`);
  lines.push(`    """`);
  lines.push("");
  lines.push(`    def __init__(self):`);
  lines.push(`        super().__init__()`);
  if (!init.length) lines.push(`        pass`);
  lines.push(...init);
  lines.push("");
  lines.push(`    def forward(self${sig ? `, ${sig}` : ""}) -> Dict[str, torch.Tensor]:`);
  lines.push(...forward);
  lines.push(`        return {${outs}}`);
  return { lines, diagnostics, statements };
}

/** The Python module for every model of `m`, or the diagnostics of layers PyTorch cannot express. */
export function emitTorch(m: IRModule, o: TorchEmitOptions): { text: string | null; diagnostics: Diagnostic[]; classes: Record<string, string>; statements: Map<number, TorchLine> } {
  const used = new Set<string>();
  const names = new PyNames();
  for (const h of Object.keys(HELPERS)) names.fresh(/^[A-Z]/.test(h) ? h : `_${h}`);
  const classes: Record<string, string> = {};
  for (const model of m.models) classes[model.name] = names.fresh(model.name);
  const models = m.models.map((model) => emitModel(model, o, used, classes[model.name]!));
  const diagnostics = models.flatMap((x) => x.diagnostics);
  if (diagnostics.some((d) => d.severity === "error")) return { text: null, diagnostics, classes, statements: new Map() };
  const out: string[] = [];
  out.push(`# Generated by nnetc ${o.version} from ${comment(o.displayPath)} (-O${o.level}). A plain PyTorch module: read it, edit it,`);
  out.push(`# train it. nnetc's PyTorch engine runs the same code; regenerate it with \`nnetc compile --target pytorch\`.`);
  out.push(`"""PyTorch modules compiled from ${comment(o.displayPath).replace(/"/g, "'")} by nnetc.`);
  out.push("");
  out.push(`Layouts are nnetc's: images NHWC, sequences [batch, steps, features]; each forward returns a dict of`);
  out.push(`outputs. A layer \`a/b/c\` of the .nnet file is the submodule \`a.b.c\` (a Python keyword or torch.nn.Module`);
  out.push(`attribute gets a trailing _), so state_dict keys are nnetc's weight names in PyTorch's form:`);
  out.push(`\`nnetc compile --target pytorch --weights RUN\` writes a run's weights as a state_dict for \`load_state_dict\`,`);
  out.push(`and \`init "x.safetensors", layout: torch\` reads this module's state_dict back with no map.`);
  out.push(`"""`);
  out.push(`import math`);
  out.push(`from typing import Dict`);
  out.push("");
  out.push(`import torch`);
  out.push(`import torch.nn.functional as F`);
  out.push(`from torch import nn`);
  out.push("");
  // Helpers reach each other (avg_pool_same pads with pad_same).
  if (used.has("avg_pool_same")) used.add("pad_same");
  for (const [name, code] of Object.entries(HELPERS)) {
    if (!used.has(name)) continue;
    out.push("");
    out.push(name === "BatchNorm" && used.has("checkpointed") ? onceUnderCheckpoint(code) : code);
    out.push("");
  }
  for (const x of models) {
    out.push("");
    out.push(...x.lines);
    out.push("");
  }
  const text = `${out.join("\n").replace(/\n{4,}/g, "\n\n\n").trimEnd()}\n`;
  // Each forward statement's line in the text (1-based): the models' lines appear in order, only runs of
  // blank lines collapsed, so one walk finds them.
  const statements = new Map<number, TorchLine>();
  const all = text.split("\n");
  let at = 0;
  for (const x of models) {
    for (const l of x.lines) {
      const s = x.statements.get(l);
      if (!s) continue;
      while (at < all.length && all[at] !== l) at++;
      if (at < all.length) statements.set(at + 1, s);
    }
  }
  return { text, diagnostics, classes, statements };
}

