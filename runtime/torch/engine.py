"""nnetc's PyTorch engine, the Python side: a long-lived process that runs what nnetc's TypeScript side asks
(runtime/torch/process.ts), one JSON request per line on stdin, one JSON reply per line on the original
stdout (anything the model code prints goes to stderr). Tensors travel as safetensors files.

It holds no training plan: the plan's meaning lives in TypeScript, which decides what runs; this side loads
the modules nnetc emitted (compiler/emit/torch.ts) and executes steps.

Requests: {"id": N, "cmd": "hello"} → versions; {"cmd": "load", "model": KEY, "path": FILE.py, "class": NAME,
"weights": FILE.safetensors?} → builds the module (state_dict in PyTorch's names and layouts, strict);
{"cmd": "forward", "model": KEY, "inputs": FILE, "outputs": FILE, "training": bool} → writes the output
dict; {"cmd": "unload", "model": KEY}. Replies: {"id": N, "ok": true, …} or {"id": N, "ok": false,
"error": "Type: message", "where": "file:line in function"} for an exception (the last frame in the
emitted module, which names the .nnet line in the comment above it).
"""
import importlib.util
import json
import os
import struct
import sys
import traceback

import numpy as np
import torch

# The protocol owns the real stdout; print() in model code lands on stderr.
PROTOCOL = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
sys.stdout = sys.stderr

NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
ST = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int32: "I32", torch.int64: "I64", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def read_safetensors(path):
    """A safetensors file as a dict of CPU tensors (8-byte little-endian header length, JSON header, data)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        start, end = e["data_offsets"]
        a = np.frombuffer(buf, dtype=np.dtype(NP[e["dtype"]]).newbyteorder("<"), count=(end - start) // np.dtype(NP[e["dtype"]]).itemsize, offset=8 + n + start)
        out[name] = torch.from_numpy(a.reshape(e["shape"]).copy())
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


class Engine:
    def __init__(self):
        self.models = {}

    def hello(self, req):
        return {"torch": torch.__version__, "python": sys.version.split()[0], "cuda": torch.cuda.is_available()}

    def load(self, req):
        spec = importlib.util.spec_from_file_location(f"nnetc_module_{len(self.models)}", req["path"])
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        model = getattr(mod, req["class"])()
        if req.get("weights"):
            model.load_state_dict(read_safetensors(req["weights"]), strict=True)
        self.models[req["model"]] = model
        return {"parameters": sum(p.numel() for p in model.parameters())}

    def forward(self, req):
        model = self.models[req["model"]]
        model.train(bool(req.get("training", False)))
        inputs = read_safetensors(req["inputs"])
        with torch.no_grad():
            outputs = model(**inputs)
        write_safetensors(req["outputs"], outputs)
        return {}

    def unload(self, req):
        self.models.pop(req["model"], None)
        return {}


def where(exc):
    """The innermost frame in an emitted module (its line follows a `# file.nnet:N` comment), else the last."""
    frames = traceback.extract_tb(exc.__traceback__)
    emitted = [f for f in frames if not f.filename.endswith("engine.py") and "/torch/" not in f.filename]
    f = (emitted or frames or [None])[-1]
    return f"{f.filename}:{f.lineno} in {f.name}" if f else ""


def main():
    engine = Engine()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {"id": req.get("id"), "ok": True, **getattr(engine, req["cmd"])(req)}
        except Exception as e:  # reported to the TypeScript side, which names the .nnet layer
            reply = {"id": req.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}", "where": where(e)}
        PROTOCOL.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
