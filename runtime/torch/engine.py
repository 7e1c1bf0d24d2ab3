"""nnetc's PyTorch engine, the Python side: a long-lived process that runs what nnetc's TypeScript side asks
(runtime/torch/process.ts), one JSON request per line on stdin, one JSON reply per line on the original
stdout (anything the model code prints goes to stderr). Tensors travel as safetensors files.

It holds no training plan: the plan's meaning lives in TypeScript, which decides what runs; this side loads
the modules nnetc emitted (compiler/emit/torch.ts) and executes steps.

Requests (each names its model by KEY; state_dict keys are PyTorch's, runtime/torch_layout.ts converts):
  hello                                   → versions, whether CUDA is there
  load {path, class, weights?, device}    build the emitted module (strict state_dict)
  forward {inputs, outputs, training}     run it on a batch file, write the output dict
  set_weights {file} / get_weights {file} the whole state_dict in / out
  data {split, file}                      a split's fields (safetensors, memory-mapped)
  phase {trainable, decays, frozen, optimizer, weight_decay, clip, losses, inputs, precision, steps?}
                                          what trains and how, until the next phase; with steps (a GAN's
                                          alternate steps: trainable, frozen, optimizer, weight_decay, clip,
                                          terms, lr_scale each) every batch is trained by each step in turn
  masks {file}                            pruning masks, applied now and after every step
  quantize {file, keys}                   lora base: int8: each key's weight (int8 values as floats, torch
                                          layout) and KEY.scale (per output channel) replace the parameter by
                                          int8 buffers, dequantized (q * scale) whenever the module reads it
  weight_bytes                            → bytes of float parameters/buffers and of int8 weights + scales
  opt_get {file, step?} / opt_set {file, step?}
                                          optimizer slots "<key>/<slot>" and "step" (of alternate step N)
  train_steps {split, batches, lrs, seeds, collect?, mix?} → the losses of those steps (mix: per batch null or
    {lambda, partners, box, fields}: mixup / cutmix, runtime/mix.ts)
  train_parts {file, pairs}               the metric pairs' predictions/targets and loss terms since the last call
  evaluate {split, batch, losses, pairs, file} → mean loss; predictions/targets per metric pair
  unload
Replies: {"id": N, "ok": true, …} or {"id": N, "ok": false, "error": "Type: message", "frames":
["file:line in function", …]} for an exception: its traceback outside torch's own files, innermost last (the
TypeScript side names the .nnet layer whose statement of the emitted forward was running).

The optimizers and losses are nnetc's (runtime/optim.ts, runtime/objective.ts), formula for formula: Adam
with epsilon added to sqrt(v) and the bias correction folded into the rate, momentum buffers that hold
lr·g, L2 decay on the gradients of the weights named in `decays`, AdamW's decay decoupled.
"""
import importlib.util
import json
import os
import signal
import struct
import sys
import traceback

import math

import numpy as np
import torch
import torch.nn.functional as F

# The protocol owns the real stdout; print() in model code lands on stderr.
PROTOCOL = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
sys.stdout = sys.stderr

NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
ST = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int32: "I32", torch.int64: "I64", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def read_safetensors(path, mmap=False):
    """A safetensors file as a dict of CPU tensors (8-byte little-endian header length, JSON header, data);
    memory-mapped (read-only, not copied) with mmap=True."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        buf = np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.frombuffer(f.read(), dtype=np.uint8)
    base = 8 + n if mmap else 0
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        start, end = e["data_offsets"]
        dt = np.dtype(NP[e["dtype"]]).newbyteorder("<")
        a = np.frombuffer(buf[base + start : base + end], dtype=dt).reshape(e["shape"]) if end > start else np.zeros(e["shape"], dtype=dt)
        if mmap:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a read-only memory map: never written through
                out[name] = torch.from_numpy(a)
        else:
            out[name] = torch.from_numpy(a.copy())
    return out


def write_safetensors(path, tensors):
    """Tensors (moved to the CPU) as a safetensors file, written atomically."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        data = t.numpy().astype(np.dtype(NP[ST[t.dtype]]).newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


EPS = 1e-7


def ctc_term(pred, target, blank, ignore):
    """CTC (runtime/objective.ts ctcLoss): F.ctc_loss over every frame, reduction "mean" (each sample's loss over
    its label count, then the batch's mean), zero_infinity; label ids equal to the blank or to `ignore` are padding
    wherever they stand, so the labels go in as one concatenated sequence with each sample's count."""
    b, t, c = pred.shape
    labels = target.reshape(b, -1).long()
    keep = labels != blank
    if ignore is not None:
        keep = keep & (labels != int(ignore))
    flat = labels[keep]
    bad = (flat < 0) | (flat >= c)
    if bool(bad.any()):
        raise ValueError(f"ctc: label {int(flat[bad][0])} is not a class of the prediction's {c} (0 to {c - 1}); ids equal to the blank ({blank}) are padding")
    logp = F.log_softmax(pred.float(), dim=-1).transpose(0, 1)  # [time, batch, classes]
    lengths = torch.full((b,), t, dtype=torch.long, device=pred.device)
    return F.ctc_loss(logp, flat, lengths, keep.sum(1), blank=blank, reduction="mean", zero_infinity=True)


PLUGIN_LOSSES = {}


def plugin_loss(src, args, pred, target):
    """A plugin loss (nnetc.config.mjs, spec/language.md section 15): its Python expression over pred, target, args."""
    code = PLUGIN_LOSSES.get(src)
    if code is None:
        code = PLUGIN_LOSSES[src] = compile(src, "<plugin loss>", "eval")
    own = {k: v for k, v in args.items() if k != "__plugin_torch"}
    value = eval(code, {"torch": torch, "F": F, "math": math}, {"pred": pred, "target": target.float() if target.is_floating_point() else target, "args": own})
    if not torch.is_tensor(value) or value.numel() != 1:
        raise ValueError(f"the plugin loss's expression gave {type(value).__name__}, not a scalar tensor")
    return value.reshape(())


def loss_term(fn, args, pred, target):
    """One loss term, averaged over the batch (and positions): runtime/objective.ts's lossTensor."""
    if "__plugin_torch" in args:
        return plugin_loss(args["__plugin_torch"], args, pred, target)
    if fn == "cross_entropy":
        classes = pred.shape[-1]
        logits = pred.reshape(-1, classes)
        ignore = args.get("ignore")
        if ignore is not None and not target.is_floating_point():
            # positions whose target is `ignore` (padding) count for nothing: the mean over the others
            t = target.reshape(-1).long()
            y = F.one_hot(t, classes).float()
            s = args.get("smoothing", 0) or 0
            if s > 0:
                y = y * (1 - s) + s / classes
            logp = torch.log(logits.float().clamp(EPS, 1)) if args.get("from_logits") is False else F.log_softmax(logits.float(), dim=-1)
            keep = (t != int(ignore)).float()
            return -((y * logp).sum(1) * keep).sum() / keep.sum().clamp(min=1)
        if not target.is_floating_point() and not args.get("smoothing") and args.get("from_logits") is not False:
            # The same mean of -log softmax at the target class, in one fused op.
            return F.cross_entropy(logits.float(), target.reshape(-1).long())
        if target.is_floating_point():
            y = target.reshape(-1, classes).float()
        else:
            y = F.one_hot(target.reshape(-1).long(), classes).float()
        s = args.get("smoothing", 0) or 0
        if s > 0:
            y = y * (1 - s) + s / classes
        logp = torch.log(logits.clamp(EPS, 1)) if args.get("from_logits") is False else F.log_softmax(logits, dim=-1)
        return -(y * logp).sum(1).mean()
    if fn in ("dice", "focal"):
        classes = pred.shape[-1]
        logits = pred.reshape(-1, classes).float()
        y = target.reshape(-1, classes).float() if target.is_floating_point() else F.one_hot(target.reshape(-1).long(), classes).float()
        if fn == "dice":
            smooth = args.get("smooth", 1)
            p = F.softmax(logits, dim=-1)
            return 1 - ((2 * (p * y).sum(0) + smooth) / (p.sum(0) + y.sum(0) + smooth)).mean()
        logpt = (y * F.log_softmax(logits, dim=-1)).sum(1)
        return (-args.get("alpha", 0.25) * (1 - logpt.exp()) ** args.get("gamma", 2) * logpt).mean()
    if fn == "kl_normal":
        # pred: the mean, target: the log-variance (model outputs); summed per sample, averaged over the batch.
        m, lv = pred.reshape(pred.shape[0], -1).float(), target.reshape(target.shape[0], -1).float()
        return (-0.5 * (1 + lv - m * m - lv.exp()).sum(dim=1)).mean()
    if fn == "mean":
        return pred.float().mean()  # a value the model computes (its own penalty term)
    if fn == "sum":
        return pred.float().reshape(pred.shape[0], -1).sum(1).mean()  # summed per sample, averaged over the batch
    if fn == "ctc":
        return ctc_term(pred, target, int(args.get("blank", 0)), args.get("ignore"))
    if fn == "cosine":
        # 1 - cos per row of the last axis, each row scaled to unit length as Keras does.
        d = pred.shape[-1]
        unit = lambda v: v / torch.sqrt(torch.clamp((v * v).sum(1, keepdim=True), min=1e-12))
        return 1 - (unit(pred.reshape(-1, d).float()) * unit(target.reshape(-1, d).float())).sum(1).mean()
    x = pred.reshape(-1)
    y = target.reshape(-1).float()
    if fn == "binary_cross_entropy":
        s = args.get("smoothing", 0) or 0
        if s > 0:
            y = y * (1 - s) + s / 2
        if args.get("from_logits") is False:
            p = x.clamp(EPS, 1 - EPS)
            return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
        return (F.relu(x) - x * y + torch.log1p(torch.exp(-x.abs()))).mean()
    if fn == "mse":
        return ((x - y) ** 2).mean()
    if fn == "mae":
        return (x - y).abs().mean()
    if fn == "huber":
        d = args.get("delta", 1)
        err = (x - y).abs()
        quad = err.clamp(max=d)
        return (0.5 * quad**2 + d * (err - quad)).mean()
    raise ValueError(f"unknown loss {fn}")


def mix_inputs(batch, partner, m):
    """A mixed batch's inputs (runtime/mix.ts mixInputs): mixup blends the fields, λ·x_a + (1-λ)·x_b; cutmix pastes
    the partner's box (rows y0…y1-1, columns x0…x1-1 of NHWC images)."""
    out = dict(batch)
    lam = m["lambda"]
    for f in m["fields"]:
        a, b = batch[f], partner[f]
        if m["box"] is None:
            out[f] = a * lam + b * (1 - lam)
        else:
            y0, y1, x0, x1 = m["box"]
            x = a.clone()
            x[:, y0:y1, x0:x1, :] = b[:, y0:y1, x0:x1, :]
            out[f] = x
    return out


def mixed_target(own, partner, lam, mixed):
    """A target as training metrics see it under a mix (runtime/mix.ts metricTarget)."""
    if mixed:
        return own.float() * lam + partner.float() * (1 - lam)
    return own if lam >= 0.5 else partner


def total_loss(losses, outputs, batch, terms=None, mix=None):
    """The plan's loss: its terms' weighted sum; each term's own value is appended to `terms` when given. With
    `mix` (λ, the partners' rows, each term's rule: runtime/steps.ts mixedLoss), `batch` holds the own rows."""
    total = None
    for k, t in enumerate(losses):
        rule = mix["rules"][k] if mix else None
        pred = outputs[t["prediction"]]
        if rule == "labels":
            lam = mix["lambda"]
            value = loss_term(t["fn"], t["args"], pred, batch[t["target"]]) * lam + loss_term(t["fn"], t["args"], pred, mix["partner"][t["target"]]) * (1 - lam)
        elif rule == "target":
            value = loss_term(t["fn"], t["args"], pred, mixed_target(batch[t["target"]], mix["partner"][t["target"]], mix["lambda"], True))
        elif t.get("targetValue") is not None:
            value = loss_term(t["fn"], t["args"], pred, torch.full_like(pred, float(t["targetValue"])))  # a number: a constant of the prediction's shape
        else:
            value = loss_term(t["fn"], t["args"], pred, (outputs if t.get("targetIsOutput") else batch)[t["target"]])
        if terms is not None:
            terms.append(value.detach().float())
        term = value * t["weight"]
        total = term if total is None else total + term
    return total


class Optimizer:
    """runtime/optim.ts's optimizers, formula for formula; slots "<key>/<name>" plus "step"."""

    def __init__(self, fn, args, weight_decay, params, decays):
        self.fn, self.a, self.params, self.decays = fn, args, params, decays
        self.t = 0
        self.slots = {}
        self.l2 = (args.get("weight_decay", 0) or 0) * (0 if fn == "adamw" else 1) + weight_decay

    def slot(self, key, name, like):
        s = self.slots.setdefault(key, {})
        if name not in s:
            s[name] = torch.zeros_like(like)
        return s[name]

    @torch.no_grad()
    def step(self, lr):
        self.t += 1
        a, t = self.a, self.t
        if self.fn in ("adam", "adamw") and hasattr(torch, "_foreach_mul_"):
            return self._adam_foreach(lr)
        for key, p in self.params:
            g = p.grad
            if g is None:
                continue
            if self.l2 > 0 and key in self.decays:
                g = g + p * self.l2
            if self.fn == "sgd":
                momentum = a.get("momentum", 0) or 0
                if momentum == 0:
                    p.sub_(g * lr)
                    continue
                vel = self.slot(key, "momentum", p)
                vel.mul_(momentum).sub_(g * lr)
                if a.get("nesterov"):
                    p.add_(vel * momentum - g * lr)
                else:
                    p.add_(vel)
            elif self.fn in ("adam", "adamw"):
                b1, b2 = a.get("beta1", 0.9), a.get("beta2", 0.999)
                m, v = self.slot(key, "m", p), self.slot(key, "v", p)
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                delta = m * alpha / (v.sqrt() + a.get("epsilon", 1e-7))
                wd = a.get("weight_decay", 0) or 0
                if self.fn == "adamw" and wd > 0 and key in self.decays:
                    delta = delta + p * (lr * wd)
                p.sub_(delta)
            elif self.fn == "rmsprop":
                rho, momentum = a.get("rho", 0.9), a.get("momentum", 0) or 0
                ms = self.slot(key, "rms", p)
                ms.mul_(rho).addcmul_(g, g, value=1 - rho)
                step = g * lr / (ms.sqrt() + a.get("epsilon", 1e-7))
                if momentum > 0:
                    mom = self.slot(key, "momentum", p)
                    mom.mul_(momentum).add_(step)
                    p.sub_(mom)
                else:
                    p.sub_(step)
            else:
                raise ValueError(f"unknown optimizer {self.fn}")

    def _adam_foreach(self, lr):
        """Adam (and AdamW) as above, with one multi-tensor op per formula step (torch._foreach_*)."""
        a, t = self.a, self.t
        live = [(k, p) for k, p in self.params if p.grad is not None]
        if not live:
            return
        b1, b2, eps = a.get("beta1", 0.9), a.get("beta2", 0.999), a.get("epsilon", 1e-7)
        ps = [p for _, p in live]
        gs = [p.grad for _, p in live]
        if self.l2 > 0:
            gs = [g + p * self.l2 if k in self.decays else g for (k, p), g in zip(live, gs)]
        ms = [self.slot(k, "m", p) for k, p in live]
        vs = [self.slot(k, "v", p) for k, p in live]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, gs, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_add_(denom, eps)
        wd = a.get("weight_decay", 0) or 0
        if self.fn == "adamw" and wd > 0:
            decayed = [p for k, p in live if k in self.decays]
            if decayed:
                torch._foreach_mul_(decayed, 1 - lr * wd)
        torch._foreach_addcdiv_(ps, ms, denom, value=-alpha)

    def state(self):
        out = {"step": torch.tensor([float(self.t)])}
        for key, s in self.slots.items():
            for name, v in s.items():
                out[f"{key}/{name}"] = v
        return out

    def load(self, state, by_key):
        self.t = int(state["step"].reshape(-1)[0].item()) if "step" in state else 0
        for k, v in state.items():
            if k == "step":
                continue
            key, name = k.rsplit("/", 1)
            if key in by_key:
                self.slot(key, name, by_key[key]).copy_(v.to(by_key[key].device))


def clip_gradients(params, clip):
    if not clip:
        return
    grads = [p.grad for _, p in params if p.grad is not None]
    if clip.get("value") is not None:
        for g in grads:
            g.clamp_(-clip["value"], clip["value"])
    if clip.get("norm") is not None and grads:
        norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads))
        scale = torch.clamp(clip["norm"] / torch.clamp(norm, min=1e-12), max=1.0)
        for g in grads:
            g.mul_(scale)


# Rows of more classes than this are reduced as they are collected (runtime/objective.ts COMPACT_CLASSES).
COMPACT_CLASSES = 64


def metric_part(pred, target):
    """One batch's predictions and targets for the metrics: as they are, or, over COMPACT_CLASSES classes (a
    language model's vocabulary), per row the argmax, how many classes score above the target, and -log p(target)
    from logits and from probabilities, so that a split's metrics take memory per row, not per class."""
    pred = pred.detach().float()
    classes = pred.shape[-1] if pred.dim() > 1 else 1
    if classes <= COMPACT_CLASSES:
        return (pred, target)
    s = pred.reshape(-1, classes)
    t = target.reshape(-1)
    if t.numel() != s.shape[0]:
        if t.numel() != s.numel():
            return (pred, target)  # neither class ids nor one-hot rows: kept whole, as before
        rows = target.reshape(-1, classes).float()
        if not (bool(((rows >= 0) & (rows <= 1)).all()) and bool(((rows.sum(1) - 1).abs() <= 1e-3).all())):
            return (pred, target)  # a regression target as wide as the scores (objective.ts distributionRows)
        t = target.reshape(-1, classes).argmax(-1)  # one-hot rows -> class ids
    y = t.long().clamp(0, classes - 1)
    sy = s.gather(1, y[:, None])[:, 0]
    return {
        "pred": s.argmax(1).int(),
        "higher": (s > sy[:, None]).sum(1).int(),
        "nll_logits": (torch.logsumexp(s, 1) - sy).double(),
        "nll_prob": (-torch.log(sy.clamp_min(1e-7))).double(),
        "targets": t.float(),
        "classes": classes,
    }


def rows(parts):
    """Collected parts (from `metric_part`) as tensors for the TypeScript side's metrics: scores [rows, classes]
    (classes: the last axis) and flat targets, or compact rows; and what they are."""
    if isinstance(parts[0], dict):
        cat = lambda key: torch.cat([p[key].reshape(-1).cpu() for p in parts])
        out = {key: cat(key) for key in ("pred", "higher", "nll_logits", "nll_prob", "targets")}
        return out, {"rows": int(out["targets"].shape[0]), "classes": int(parts[0]["classes"]), "int_targets": True, "compact": True}
    preds, targets = [p for p, _ in parts], [t for _, t in parts]
    classes = preds[0].shape[-1] if preds[0].dim() > 1 else 1
    scores = torch.cat([p.reshape(-1, classes) for p in preds]).float()
    flat = torch.cat([t.reshape(-1) for t in targets])
    return {"scores": scores, "targets": flat.float()}, {"rows": int(scores.shape[0]), "classes": int(classes), "int_targets": not flat.is_floating_point()}


def part_tensors(parts, count):
    """Collected parts by metric pair index as one file's tensors (names suffixed by the index) and each pair's
    info, None for a pair that collected nothing, so that the infos line up with the pairs."""
    out, infos = {}, []
    for i in range(count):
        if parts.get(i):
            tensors, info = rows(parts[i])
            out.update({f"{k}{i}": v for k, v in tensors.items()})
            infos.append(info)
        else:
            infos.append(None)
    return out, infos


class Run:
    """One model in the engine: the module, its data splits, and the phase being trained."""

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.splits = {}
        self.phase = None
        self.opt = None
        self.parts = {}  # metric pair index -> collected batches
        self.term_sums, self.term_samples = None, 0
        self.masks = {}
        self.quantized = []  # state_dict keys held as int8 (lora base: int8)
        self.frozen = []
        self.dist = False
        self.ddp = None

    def named(self):
        return dict(self.model.named_parameters())

    def gather(self, split, idx):
        src = self.splits[split]
        index = torch.as_tensor(idx, dtype=torch.long)
        return {k: v.index_select(0, index).to(self.device, non_blocking=True) for k, v in src.items()}

    def autocast(self):
        prec = (self.phase or {}).get("precision", "fp32")
        if prec == "fp32":
            return _nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if prec == "bf16" else torch.float16)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class Engine:
    def __init__(self):
        self.runs = {}

    def hello(self, req):
        mps = getattr(torch.backends, "mps", None)
        return {
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "cuda": torch.cuda.is_available(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "mps": bool(mps and mps.is_available()),
            "threads": torch.get_num_threads(),
        }

    def load(self, req):
        spec = importlib.util.spec_from_file_location(f"nnetc_module_{len(self.runs)}", req["path"])
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        device = torch.device(req.get("device") or "cpu")
        dist_req = req.get("distributed")
        if dist_req and not torch.distributed.is_initialized():
            # One worker of a data-parallel job: the process group of torch.distributed (gloo on CPU, NCCL on
            # CUDA), rendezvous at the master's address (rank 0 listens there).
            import datetime

            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(
                backend,
                init_method=f"tcp://{dist_req['master']}",
                rank=dist_req["rank"],
                world_size=dist_req["world"],
                timeout=datetime.timedelta(seconds=dist_req.get("timeout", 300)),
            )
        model = getattr(mod, req["class"])()
        if req.get("weights"):
            model.load_state_dict(read_safetensors(req["weights"]), strict=True)
        model.to(device)
        run = Run(model, device)
        run.dist = bool(dist_req)
        self.runs[req["model"]] = run
        return {"parameters": sum(p.numel() for p in model.parameters())}

    def run(self, req):
        return self.runs[req["model"]]

    def forward(self, req):
        r = self.run(req)
        r.model.train(bool(req.get("training", False)))
        inputs = {k: v.to(r.device) for k, v in read_safetensors(req["inputs"]).items()}
        with torch.no_grad():
            outputs = r.model(**inputs)
        write_safetensors(req["outputs"], outputs)
        return {}

    def set_weights(self, req):
        r = self.run(req)
        sd = read_safetensors(req["file"])
        if not r.quantized:
            r.model.load_state_dict({k: v.to(r.device) for k, v in sd.items()}, strict=True)
            return {}
        # int8 base weights stay as they were quantized; everything else is loaded as strictly as before
        held = {k + s for k in r.quantized for s in ("_int8", "_scale")}
        missing, unexpected = r.model.load_state_dict({k: v.to(r.device) for k, v in sd.items() if k not in r.quantized}, strict=False)
        if set(missing) - held or unexpected:
            raise RuntimeError(f"set_weights: missing {sorted(set(missing) - held)}, unexpected {sorted(unexpected)}")
        return {}

    def get_weights(self, req):
        r = self.run(req)
        sd = r.model.state_dict()
        for k in r.quantized:  # an int8 base weight as the float values the model computes with
            path, leaf = k.rsplit(".", 1)
            sd.pop(k + "_int8")
            sd.pop(k + "_scale")
            sd[k] = getattr(r.model.get_submodule(path), leaf).detach()
        write_safetensors(req["file"], sd)
        return {}

    def quantize(self, req):
        r = self.run(req)
        t = read_safetensors(req["file"])
        for key in req["keys"]:
            if key in r.quantized:
                continue
            path, leaf = key.rsplit(".", 1)
            mod = r.model.get_submodule(path)
            q = t[key].round().to(torch.int8).to(r.device)
            scale = t[key + ".scale"].to(r.device).reshape(-1, *([1] * (q.dim() - 1)))
            del mod._parameters[leaf]  # the float32 values go; the module reads leaf through a property
            mod.register_buffer(leaf + "_int8", q)
            mod.register_buffer(leaf + "_scale", scale)
            if not getattr(mod, "_nnetc_int8", False):
                mod.__class__ = type(mod.__class__.__name__, (mod.__class__,), {"_nnetc_int8": True})
            setattr(type(mod), leaf, property(lambda self, leaf=leaf: getattr(self, leaf + "_int8").float() * getattr(self, leaf + "_scale")))
            r.quantized.append(key)
        return {}

    def weight_bytes(self, req):
        r = self.run(req)
        size = lambda t: t.numel() * t.element_size()
        int8 = {n for k in r.quantized for n in (k + "_int8", k + "_scale")}
        bufs = dict(r.model.named_buffers())
        return {
            "float": sum(size(p) for p in r.model.parameters()) + sum(size(b) for n, b in bufs.items() if n not in int8),
            "int8": sum(size(b) for n, b in bufs.items() if n in int8),
        }

    def data(self, req):
        self.run(req).splits[req["split"]] = read_safetensors(req["file"], mmap=True)
        return {}

    def phase(self, req):
        r = self.run(req)
        named = r.named()
        trainable = set(req["trainable"])
        for k, p in named.items():
            p.requires_grad_(k in trainable)
        params = [(k, named[k]) for k in req["trainable"]]
        r.phase = req
        decays = set(req.get("decays", []))

        def step_of(st):
            ps = [(k, named[k]) for k in st["trainable"]]
            return {
                "params": ps,
                "keys": set(st["trainable"]),
                "opt": Optimizer(st["optimizer"]["fn"], st["optimizer"]["args"], st.get("weight_decay", 0), ps, decays),
                "frozen": [r.model.get_submodule(path) for path in st.get("frozen", []) if path],
                "terms": st["terms"],
                "clip": st.get("clip"),
                "lr_scale": st.get("lr_scale", 1.0),
            }

        whole = {"trainable": req["trainable"], "optimizer": req["optimizer"], "weight_decay": req.get("weight_decay", 0), "frozen": req.get("frozen", []), "terms": list(range(len(req["losses"]))), "clip": req.get("clip")}
        r.steps = [step_of(st) for st in (req.get("steps") or [whole])]
        r.frozen = r.steps[0]["frozen"]
        r.opt = r.steps[0]["opt"]
        r.params = params
        # Data parallel: DistributedDataParallel averages the gradients of the phase's trainable weights over
        # the workers in backward (rebuilt per phase: which weights train can change).
        r.ddp = None
        if r.dist and params:
            from torch.nn.parallel import DistributedDataParallel

            r.ddp = DistributedDataParallel(r.model, device_ids=[r.device.index] if r.device.type == "cuda" else None)
        return {}

    def masks(self, req):
        r = self.run(req)
        r.masks = {k: m.to(r.device) for k, m in read_safetensors(req["file"]).items()}
        self._apply_masks(r)
        return {}

    @staticmethod
    @torch.no_grad()
    def _apply_masks(r):
        named = r.named()
        for k, m in r.masks.items():
            if k in named:  # an int8 base weight keeps its zeros
                named[k].mul_(m)

    def opt_get(self, req):
        write_safetensors(req["file"], self.run(req).steps[req.get("step", 0)]["opt"].state())
        return {}

    def opt_set(self, req):
        st = self.run(req).steps[req.get("step", 0)]
        st["opt"].load(read_safetensors(req["file"]), dict(st["params"]))
        return {}

    def _train_mode(self, r, frozen=None):
        r.model.train()
        for m in r.frozen if frozen is None else frozen:
            m.eval()  # frozen layers run in inference mode (batchnorm's moving statistics)

    def train_steps(self, req):
        r = self.run(req)
        losses = []
        collect = req.get("collect")
        accumulate = r.phase.get("accumulate", 1)
        all_losses = r.phase["losses"]
        several = len(r.steps) > 1
        named = r.named() if several else None
        mixes = req.get("mix") or [None] * len(req["batches"])
        for idx, lr, seed, mix in zip(req["batches"], req["lrs"], req["seeds"], mixes):
            # Gradient accumulation: micro-batches of the step's samples, each loss weighted by its share, so
            # that the summed gradients are those of one batch of them all (DDP synchronises the last one).
            k = max(1, min(accumulate, len(idx)))
            cuts = [len(idx) * i // k for i in range(k + 1)]
            micro = [r.gather(req["split"], idx[cuts[m] : cuts[m + 1]]) for m in range(k)]
            # mixup / cutmix: the partners' rows (cut alike); the model reads the mixed inputs, the loss both rows' targets.
            partners = [r.gather(req["split"], mix["partners"][cuts[m] : cuts[m + 1]]) for m in range(k)] if mix else [None] * k
            mixed_in = [mix_inputs(micro[m], partners[m], mix) if mix else micro[m] for m in range(k)]
            total = None
            for j, st in enumerate(r.steps):
                last = j == len(r.steps) - 1
                if several:
                    # Alternate steps: only this step's weights get gradients; its frozen layers run in inference mode.
                    for key, p in named.items():
                        p.requires_grad_(key in st["keys"])
                self._train_mode(r, st["frozen"])
                if r.phase.get("stochastic"):
                    torch.manual_seed(seed if j == 0 else (seed ^ (j * 0x2545F491)) & 0xFFFFFFFF)
                for _, p in st["params"]:
                    if p.grad is not None:
                        p.grad.zero_()  # in place: fresh gradient buffers would cost page faults every step
                step_losses = [all_losses[i] for i in st["terms"]]
                step_rules = [r.phase["mix_terms"][i] for i in st["terms"]] if mix else None
                value = None
                for m in range(k):
                    batch, partner = micro[m], partners[m]
                    n = cuts[m + 1] - cuts[m]
                    share = n / len(idx)
                    sync = r.ddp is None or m == k - 1
                    terms = [] if len(all_losses) > 1 else None
                    with (r.ddp.no_sync() if not sync else _nullcontext()), r.autocast():
                        outputs = (r.ddp or r.model)(**{key: mixed_in[m][key] for key in r.phase["inputs"]})
                        loss = total_loss(step_losses, outputs, batch, terms, {"lambda": mix["lambda"], "partner": partner, "rules": step_rules} if mix else None)
                        (loss.float() * share if k > 1 else loss.float()).backward()
                    value = loss.detach().float() * share if value is None else value + loss.detach().float() * share
                    if terms:
                        # Every term's own value at its place in the plan's order.
                        step_terms = torch.zeros(len(all_losses), device=loss.device)
                        step_terms[st["terms"]] = torch.stack(terms).to(step_terms.device) * n
                        r.term_sums = step_terms if r.term_sums is None else r.term_sums + step_terms
                        if last:
                            r.term_samples += n
                    for i, (pred, target) in enumerate(collect["pairs"] if collect and last else []):
                        if pred in outputs and target in batch and outputs[pred].numel() <= collect["maxFloats"] / k:
                            y = batch[target]
                            if mix:
                                mixed = any(t["target"] == target and rule == "target" for t, rule in zip(all_losses, r.phase["mix_terms"]))
                                y = mixed_target(y, partner[target], mix["lambda"], mixed)
                            r.parts.setdefault(i, []).append(metric_part(outputs[pred], y))
                clip_gradients(st["params"], st["clip"])
                st["opt"].step(lr * st["lr_scale"])
                if r.masks:
                    self._apply_masks(r)
                total = value if total is None else total + value
            if r.dist:
                # The job's loss: the mean over the workers' equal shares of the global batch.
                total = total.clone()
                torch.distributed.all_reduce(total)
                total /= torch.distributed.get_world_size()
            losses.append(total)
        values = torch.stack(losses).cpu().tolist() if losses else []
        return {"losses": [v if math.isfinite(v) else repr(v) for v in values]}

    def train_parts(self, req):
        """The metric pairs' collected predictions (tensors suffixed by the pair's index, None for a pair with
        none) and the loss terms' means over the samples since the last call (None with one term)."""
        r = self.run(req)
        parts = r.parts
        host = lambda p: {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in p.items()} if isinstance(p, dict) else (p[0].cpu(), p[1].cpu())
        if r.dist:
            # Every worker gets every worker's predictions, so that all compute the same training metrics.
            gathered = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, {i: [host(p) for p in ps] for i, ps in parts.items()})
            parts = {}
            for g in gathered:
                for i, ps in g.items():
                    parts.setdefault(i, []).extend(ps)
        out, infos = part_tensors(parts, req.get("pairs", 0))
        terms = None
        if r.term_sums is not None:
            sums = torch.cat([r.term_sums.cpu().double(), torch.tensor([float(r.term_samples)], dtype=torch.float64)])
            if r.dist:
                torch.distributed.all_reduce(sums)
            terms = [float(x) / float(sums[-1]) for x in sums[:-1]]
        r.parts, r.term_sums, r.term_samples = {}, None, 0
        write_safetensors(req["file"], out)
        return {"parts": infos, "terms": terms}

    def evaluate(self, req):
        r = self.run(req)
        r.model.eval()
        src = r.splits[req["split"]]
        n = next(iter(src.values())).shape[0]
        total, seen = 0.0, 0
        term_sums = None
        pairs = req.get("pairs", [])
        got = [[] for _ in pairs]
        with torch.no_grad(), r.autocast():
            for start in range(0, n, req["batch"]):
                idx = list(range(start, min(n, start + req["batch"])))
                batch = r.gather(req["split"], idx)
                outputs = r.model(**{k: batch[k] for k in req["inputs"]})
                terms = [] if len(req["losses"]) > 1 else None
                total += float(total_loss(req["losses"], outputs, batch, terms)) * len(idx) if req["losses"] else 0.0
                if terms:
                    t = torch.stack(terms).double().cpu() * len(idx)
                    term_sums = t if term_sums is None else term_sums + t
                seen += len(idx)
                for i, (pred, target) in enumerate(pairs):
                    got[i].append(metric_part(outputs[pred], batch[target]))
        out, infos = part_tensors(dict(enumerate(got)), len(got))
        write_safetensors(req["file"], out)
        terms = [float(x) / seen for x in term_sums] if term_sums is not None and seen else None
        return {"loss": (total / seen) if seen else float("nan"), "parts": infos, "terms": terms}

    def unload(self, req):
        self.runs.pop(req["model"], None)
        return {}


def frames(exc):
    """The traceback's frames outside torch's own files, innermost last: "file:line in function"."""
    torch_dir = os.path.dirname(torch.__file__)
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(torch_dir)]


def exit_with_parent():
    """The engine never outlives the nnetc process that started it (a killed job leaves no Python behind,
    even one waiting in a collective): Linux's parent-death signal, and a watch on the parent as well."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass

    def watch():
        import time

        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(1)

    import threading

    threading.Thread(target=watch, daemon=True).start()


def main():
    if sys.argv[1:] == ["--hello"]:  # the TypeScript side's check of this Python, before it reads any data
        PROTOCOL.write(json.dumps(Engine().hello({})) + "\n")
        PROTOCOL.flush()
        return
    exit_with_parent()
    # Ctrl-C reaches the whole process group: the TypeScript side stops the run (saving a checkpoint);
    # this side only has to finish the step it is in.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = Engine()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {"id": req.get("id"), "ok": True, **getattr(engine, req["cmd"])(req)}
        except Exception as e:  # reported to the TypeScript side, which names the .nnet layer
            reply = {"id": req.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}", "frames": frames(e)}
        PROTOCOL.write(reply_line(reply) + "\n")


def no_nan(v):
    """A reply's NaN and infinite floats as the strings "nan", "inf", "-inf": JSON has no such numbers (JavaScript's
    JSON.parse refuses Python's NaN), and the TypeScript side reads them back with Number (NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, dict):
        return {k: no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [no_nan(x) for x in v]
    return v


def reply_line(reply):
    try:
        return json.dumps(reply, allow_nan=False)
    except ValueError:
        return json.dumps(no_nan(reply))


if __name__ == "__main__":
    main()
