"""The PyTorch side of the round trip (spec/unit/torch_interop.test.ts), run with Debian's python3-torch.

Trains a small CNN (conv + batchnorm + relu + pool, a depthwise conv, flatten, linear) for a few seeded
steps on random 12x12 images labelled by a fixed random linear "teacher", puts it in eval mode and writes,
into the folder given as the only argument:

  torchnet.safetensors  its state_dict, in PyTorch's own layout and names (OIHW kernels, Linear [out, in],
                        running_mean/var, num_batches_tracked as I64), written by hand: an 8-byte
                        little-endian header length, the JSON header, then the raw little-endian data
  input.f32             8 test images, NHWC (the layout nnetc uses), raw float32
  output.f32            the model's logits for them, [8, 10], raw float32
  train.jsonl           the training set, one {"image": [144 floats, NHWC order], "label": int} per line
  meta.json             shapes, the first and last training losses, the torch version

PyTorch flattens NCHW (channel-major); nnetc's flatten is NHWC (channel-minor). The model permutes to
NHWC before flattening, so the Linear layer sees the same order as nnetc's dense layer and its weight
needs only the [out, in] -> [in, out] transpose. (Global pooling would avoid the question altogether.)
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)


class TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)  # eps 1e-5: the .nnet says batchnorm(epsilon: 1e-5)
        self.dw = nn.Conv2d(8, 16, 3, padding=1, groups=8)  # depthwise, multiplier 2
        self.conv2 = nn.Conv2d(16, 16, 3)
        self.bn2 = nn.BatchNorm2d(16)
        self.classifier = nn.Linear(2 * 2 * 16, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.dw(x))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as nnetc flattens
        return self.classifier(x)


n = 512
x = torch.randn(n, 1, 12, 12)
teacher = torch.randn(144, 10)
y = (x.reshape(n, -1) @ teacher).argmax(1)

model = TorchNet()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
losses = []
model.train()
for step in range(80):
    idx = torch.randint(0, n, (64,))
    loss = F.cross_entropy(model(x[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

model.eval()
with torch.no_grad():
    full = F.cross_entropy(model(x), y).item()
    xt = torch.randn(8, 1, 12, 12)
    logits = model(xt)

# safetensors, by hand.
tensors = []
offset = 0
header = {"__metadata__": {"format": "pt"}}
for name, t in model.state_dict().items():
    t = t.detach().contiguous()
    if t.dtype == torch.int64:
        data, dtype = t.numpy().astype("<i8").tobytes(), "I64"
    else:
        data, dtype = t.numpy().astype("<f4").tobytes(), "F32"
    header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    tensors.append(data)
    offset += len(data)
text = json.dumps(header).encode("utf-8")
text += b" " * ((8 - len(text) % 8) % 8)
with open(os.path.join(out, "torchnet.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for data in tensors:
        f.write(data)

with open(os.path.join(out, "input.f32"), "wb") as f:
    f.write(xt.permute(0, 2, 3, 1).contiguous().numpy().astype("<f4").tobytes())
with open(os.path.join(out, "output.f32"), "wb") as f:
    f.write(logits.numpy().astype("<f4").tobytes())
with open(os.path.join(out, "train.jsonl"), "w") as f:
    for i in range(n):
        image = x[i].permute(1, 2, 0).reshape(-1).tolist()
        f.write(json.dumps({"image": [round(v, 7) for v in image], "label": int(y[i])}) + "\n")
with open(os.path.join(out, "meta.json"), "w") as f:
    json.dump({"input_shape": [8, 12, 12, 1], "output_shape": list(logits.shape), "loss_first": losses[0], "loss_last": losses[-1], "loss_eval": full, "torch": torch.__version__}, f)
print(json.dumps({"loss_first": losses[0], "loss_last": losses[-1], "loss_eval": full}))
