"""Hugging Face PEFT as the reference for nnetc compile --target peft (spec/unit/peft.test.ts).

  peft_reference.py BASE ADAPTER IN OUT
      the base model of BASE (a tiny model of hf_reference.py tiny: BertModel or LlamaForCausalLM), then
      PeftModel.from_pretrained(base, ADAPTER), then its merge_and_unload(), each on the batch of IN
      (safetensors: <kind>.ids, .mask, .segments): OUT holds base.*, peft.* and merged.* for the padded batch
      (…padded.<output>) and every row alone, unpadded (…row<r>.<output>). Fails unless every tensor of
      ADAPTER/adapter_model.safetensors is loaded into the model as it is and the model has no other adapter.

Runs in the project's .venv (peft 0.13, transformers 4.46, Debian's torch 1.13), offline.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from hf_reference import load, outputs  # noqa: E402
from peft import PeftModel  # noqa: E402


def all_outputs(model, kind, x, tag, res):
    ids, mask = x[f"{kind}.ids"].long(), x[f"{kind}.mask"].long()
    seg = x[f"{kind}.segments"].long() if f"{kind}.segments" in x else (torch.zeros_like(ids) if kind == "bert" else None)
    for k, v in outputs(model, kind, ids, mask, seg).items():
        res[f"{tag}.padded.{k}"] = v.contiguous()
    for r in range(ids.shape[0]):
        n = int(mask[r].sum())
        one = outputs(model, kind, ids[r : r + 1, :n], mask[r : r + 1, :n], None if seg is None else seg[r : r + 1, :n])
        for k, v in one.items():
            res[f"{tag}.row{r}.{k}"] = v.contiguous()


def main(base, adapter, inp, out):
    x = load_file(inp)
    res = {}
    model, kind = load(base)
    all_outputs(model, kind, x, "base", res)
    peft_model = PeftModel.from_pretrained(model, adapter).eval()
    # every tensor of the file is in the model as it is, and the model has no adapter the file does not fill
    want = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    have = {k.replace(".default.", "."): v for k, v in peft_model.state_dict().items() if ".lora_" in k}
    assert sorted(have) == sorted(want), f"adapters in the model {sorted(set(have) ^ set(want))} differ from the file's"
    for k, v in want.items():
        assert torch.equal(have[k], v), f"{k} is not the file's"
    all_outputs(peft_model, kind, x, "peft", res)
    merged = peft_model.merge_and_unload().eval()
    assert not any(".lora_" in k for k in merged.state_dict()), "merge_and_unload left adapters"
    all_outputs(merged, kind, x, "merged", res)
    save_file({k: v.float().contiguous() for k, v in res.items()}, out)
    print(f"peft: {len(want) // 2} adapted modules loaded into {type(model).__name__}")


if __name__ == "__main__":
    main(*sys.argv[1:])
