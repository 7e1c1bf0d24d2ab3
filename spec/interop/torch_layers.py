"""The PyTorch side of the weight-loading round trip (spec/unit/torch_layers.test.ts), run with Debian's
python3-torch.

Builds spec/interop/torch_layers.nnet's two models from PyTorch's own modules (Conv2d, BatchNorm2d, a
depthwise and a separable Conv2d, Linear, ConvTranspose2d and ConvTranspose1d, GroupNorm, InstanceNorm2d
(affine), Conv1d, LayerNorm, LSTM and GRU one-way and bidirectional,
Embedding, a positional Embedding, attention as Hugging Face writes it — query/key/value Linear modules and an
output one — with a head tied to the embedding table, and nn.MultiheadAttention for self- and
cross-attention), draws non-trivial weights (random batchnorm statistics, biases and scales away from 0 and
1), runs them in eval mode on seeded inputs and writes, into the folder given as the only argument:

  convention.MODEL.safetensors  the state_dict under its own module names (the nnetc layer names), as is
  prefix.MODEL.safetensors      the same tensors nested the way real checkpoints nest them
                                (`backbone.stem.conv`, `encoder.layer.0.attention.self.query`…), loaded
                                through prefix map entries
  whole.MODEL.safetensors       every tensor under a name unrelated to the model, one whole-tensor map
                                entry each (Layers only: a packed in_proj_weight fills three weights)
  maps.json               {"prefix": {MODEL: [entries]}, "whole": {MODEL: [entries]}}, entries "FROM -> TO"
  inputs.json, outputs.json  {model: {name: {"shape": [...], "data": [...]}}} (NHWC / NWC, nnetc's layout)
  meta.json               the torch version

The safetensors files are written by hand (8-byte little-endian header length, JSON header, raw data).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

out = sys.argv[1]
torch.manual_seed(3)
torch.set_num_threads(1)


class Separable(nn.Module):
    """A separable convolution as PyTorch writes one: a depthwise Conv2d, then a 1x1 pointwise Conv2d."""

    def __init__(self, cin, cout, k, multiplier):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin * multiplier, k, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin * multiplier, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class HFAttention(nn.Module):
    """Hugging Face's BERT attention: query/key/value/output Linear modules (the output one is
    `attention.output.dense` in BERT's own naming); heads split the projected width, scores scaled by
    1/sqrt(head size)."""

    def __init__(self, d, heads, causal=False):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.query, self.key, self.value, self.output = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        h, kd = self.heads, d // self.heads
        split = lambda y: y.view(b, t, h, kd).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(kd)
        if self.causal:
            scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.output(ctx)


def last_bidirectional(y, u):
    """A bidirectional layer's final states as nnetc (and Keras) concatenate them: the forward direction's
    last step, the backward direction's first."""
    return torch.cat([y[:, -1, :u], y[:, 0, u:]], dim=1)


class RMSNorm(nn.Module):
    """Llama's LlamaRMSNorm (torch 1.13 has no nn.RMSNorm)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Layers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.dw = nn.Conv2d(6, 12, 3, groups=6)
        self.sep = Separable(12, 5, 3, 2)
        self.fc = nn.Linear(4 * 4 * 5, 4)
        self.deconv = nn.ConvTranspose2d(3, 2, 3, stride=2)
        self.pw = nn.Conv2d(3, 6, 1)
        self.gn = nn.GroupNorm(2, 6)
        self.inorm = nn.InstanceNorm2d(6, affine=True)
        self.conv1 = nn.Conv1d(5, 4, 3, padding=1)
        self.deconv1 = nn.ConvTranspose1d(5, 3, 4, stride=2)
        self.ln = nn.LayerNorm(4)
        self.lstm = nn.LSTM(4, 3, batch_first=True)
        self.bilstm = nn.LSTM(4, 2, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(4, 3, batch_first=True)
        self.bigru = nn.GRU(4, 2, batch_first=True, bidirectional=True)
        self.emb = nn.Embedding(20, 8)
        self.pos = nn.Embedding(6, 8)
        self.attn = HFAttention(8, 2, causal=True)
        self.ln2 = nn.LayerNorm(8)
        self.rms = RMSNorm(8)
        self.head = nn.Module()
        self.head.bias = nn.Parameter(torch.zeros(20))
        self.cls = nn.Module()
        self.cls.weight = nn.Parameter(torch.randn(1, 8))

    def forward(self, image, seq, ids):
        c = F.relu(self.bn(self.conv(image.permute(0, 3, 1, 2))))
        c = self.sep(self.dw(c))
        image_out = self.fc(c.permute(0, 2, 3, 1).flatten(1))  # NHWC order, as nnetc flattens
        s = self.ln(self.conv1(seq.transpose(1, 2)).transpose(1, 2))
        e = self.emb(ids) + self.pos.weight[: ids.shape[1]]
        a = self.attn(e)
        token_out = F.linear(self.rms(self.ln2(a + e)), self.emb.weight, self.head.bias)
        return {
            "image_out": image_out,
            # "same": the 17 × 17 canvas cropped to 16 × 16, nothing before and one row/column after (TensorFlow's).
            "up_out": F.pad(self.deconv(image.permute(0, 3, 1, 2)), (0, -1, 0, -1)).permute(0, 2, 3, 1),
            "norm_out": self.inorm(self.gn(self.pw(image.permute(0, 3, 1, 2)))).permute(0, 2, 3, 1),
            # "same": the 14-step canvas cropped to 12, one step before and one after (TensorFlow's).
            "up1_out": F.pad(self.deconv1(seq.transpose(1, 2)), (-1, -1)).transpose(1, 2),
            "lstm_out": self.lstm(s)[0],
            "bilstm_out": last_bidirectional(self.bilstm(s)[0], 2),
            "gru_out": self.gru(s)[0],
            "bigru_out": last_bidirectional(self.bigru(s)[0], 2),
            "token_out": token_out,
            "cls_out": torch.cat([self.cls.weight.expand(ids.shape[0], 1, 8), e], dim=1),
        }


class Packed(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(8, 2, kdim=6, vdim=6, batch_first=True)

    def forward(self, x, ctx):
        h = self.self_attn(x, x, x, need_weights=False)[0]
        return {"y": self.cross_attn(h, ctx, ctx, need_weights=False)[0]}


def nontrivial(model):
    """Weights away from their fresh values, so that folding or transposition bugs cannot hide behind 0 and
    1: every bias and beta ~ N(0, 0.3), every norm scale 1 + N(0, 0.3), batchnorm statistics random; weight
    matrices keep PyTorch's own random initialisation (outputs stay of order 1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                norm_scale = name.endswith("weight")
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if norm_scale else 0.0))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.5)
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
    return model.eval()


def tensor(t):
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def write_safetensors(file, named):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in named:
        t = t.detach().contiguous()
        data, dtype = (t.numpy().astype("<i8").tobytes(), "I64") if t.dtype == torch.int64 else (t.numpy().astype("<f4").tobytes(), "F32")
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(out, file), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


# Prefix form: where each top-level module sits in a realistically nested checkpoint, and the map entry that
# brings it back ("FROM -> TO", FROM a module path, TO a layer or a layer's module group).
PREFIX = {
    "Layers": {
        "conv": "backbone.stem.conv", "bn": "backbone.stem.norm", "dw": "backbone.blocks.0.dw", "sep": "backbone.blocks.1",
        "fc": "classifier", "deconv": "decoder.up", "deconv1": "decoder.up1d", "pw": "neck.proj", "gn": "neck.norm1", "inorm": "neck.norm2", "conv1": "seq_encoder.conv", "ln": "seq_encoder.norm", "lstm": "seq_encoder.rnn.0", "bilstm": "seq_encoder.rnn.1",
        "gru": "seq_encoder.rnn.2", "bigru": "seq_encoder.rnn.3", "emb": "embeddings.word_embeddings", "pos": "embeddings.position_embeddings",
        "ln2": "encoder.layer.0.output.LayerNorm", "rms": "model.norm", "head": "lm_head", "cls": "vit.cls",
    },
    "Packed": {"self_attn": "decoder.layers.0.self_attn", "cross_attn": "decoder.layers.0.encoder_attn"},
}


def prefixed(model_name, sd):
    """The state_dict under nested names, with the prefix map entries that undo the nesting. Hugging Face's
    attention splits over two modules: attention.self.{query,key,value} and attention.output.dense."""
    names, entries = [], []
    for layer, path in PREFIX[model_name].items():
        entries.append(f"{path} -> {layer}")
    if model_name == "Layers":
        entries += ["encoder.layer.0.attention.self -> attn", "encoder.layer.0.attention.output.dense -> attn/output"]
    for name, t in sd.items():
        top, rest = name.split(".", 1)
        if top == "attn":
            group, leaf = rest.split(".")
            new = f"encoder.layer.0.attention.output.dense.{leaf}" if group == "output" else f"encoder.layer.0.attention.self.{group}.{leaf}"
        else:
            new = f"{PREFIX[model_name][top]}.{rest}"
        names.append((new, t))
    return names, entries


def whole(model_name, sd, nnetc_name):
    """Every tensor under an unrelated name (keeping PyTorch's leaf, which says a recurrent bias's role), with
    one whole-tensor map entry onto its nnetc weight."""
    names, entries = [], []
    for i, (name, t) in enumerate(sd.items()):
        target = nnetc_name(name)
        if target is None:
            continue
        new = f"blob.{i}.{name.rsplit('.', 1)[1]}"
        names.append((new, t))
        entries.append(f"{new} -> {target}")
    return names, entries


def layers_name(name):
    """The nnetc weight a Layers state_dict entry fills (for whole-tensor entries)."""
    mod, leaf = name.rsplit(".", 1)
    if leaf == "num_batches_tracked":
        return None
    roles = {"running_mean": "moving_mean", "running_var": "moving_variance"}
    if mod in ("bn", "ln", "ln2", "rms", "gn", "inorm"):
        return f"{mod}/" + roles.get(leaf, {"weight": "gamma", "bias": "beta"}[leaf] if leaf in ("weight", "bias") else leaf)
    if mod == "cls":
        return "cls/value"
    if mod in ("emb", "pos"):
        return f"{mod}/embeddings"
    if mod == "sep.depthwise":
        return "sep/depthwise_kernel"
    if mod == "sep.pointwise":
        return "sep/pointwise_kernel" if leaf == "weight" else "sep/bias"
    if mod == "dw":
        return "dw/depthwise_kernel" if leaf == "weight" else "dw/bias"
    if mod.startswith("attn."):
        return f"attn/{mod.split('.')[1]}/{'kernel' if leaf == 'weight' else 'bias'}"
    if mod in ("lstm", "bilstm", "gru", "bigru"):
        d = ("backward/" if leaf.endswith("_reverse") else "forward/") if mod.startswith("bi") else ""
        kind = leaf.split("_l0")[0]
        return f"{mod}/{d}" + {"weight_ih": "kernel", "weight_hh": "recurrent_kernel", "bias_ih": "bias", "bias_hh": "bias"}[kind]
    return f"{mod}/{'kernel' if leaf == 'weight' else 'bias'}"


torch_inputs = {
    "Layers": {"image": torch.randn(3, 8, 8, 3), "seq": torch.randn(3, 6, 5), "ids": torch.randint(0, 20, (3, 6))},
    "Packed": {"x": torch.randn(3, 5, 8), "ctx": torch.randn(3, 4, 6)},
}
files = {}
maps = {"prefix": {}, "whole": {}}
inputs, outputs = {}, {}
for name, model in (("Layers", nontrivial(Layers())), ("Packed", nontrivial(Packed()))):
    sd = model.state_dict()
    with torch.no_grad():
        y = model(**torch_inputs[name])
    inputs[name] = {k: tensor(v) for k, v in torch_inputs[name].items()}
    outputs[name] = {k: tensor(v) for k, v in y.items()}
    files[f"convention.{name}"] = list(sd.items())
    files[f"prefix.{name}"], maps["prefix"][name] = prefixed(name, sd)
    if name == "Layers":  # nn.MultiheadAttention's packed in_proj_weight fills three weights: no whole-tensor form
        files[f"whole.{name}"], maps["whole"][name] = whole(name, sd, layers_name)
for form, named in files.items():
    write_safetensors(f"{form}.safetensors", named)
for file, value in (("maps.json", maps), ("inputs.json", inputs), ("outputs.json", outputs), ("meta.json", {"torch": torch.__version__})):
    with open(os.path.join(out, file), "w") as f:
        json.dump(value, f)
print(json.dumps({form: len(named) for form, named in files.items()}))
