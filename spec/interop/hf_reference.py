"""Hugging Face transformers as the reference for layout huggingface (spec/unit/huggingface.test.ts).

  hf_reference.py tiny DIR          BertModel, GPT2LMHeadModel and LlamaForCausalLM from tiny random configs
                                    (seeded), saved with save_pretrained(DIR/<name>, safe_serialization=True)
  hf_reference.py run DIR IN OUT    each model of DIR (tiny ones, or minilm: all-MiniLM-L6-v2's folder) on the
                                    batches of IN (safetensors: <model>.ids, .mask, …), outputs written to OUT:
                                    padded batch and every row alone (unpadded), and greedy generations
  hf_reference.py tokenize TOKENIZER_JSON TEXTS_JSON OUT_JSON
                                    token ids of each text by Hugging Face's tokenizers (no padding)

Runs in the project's .venv (transformers 4.46, Debian's torch 1.13), offline.
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
import transformers  # noqa: E402
import transformers.generation.utils as gen_utils  # noqa: E402

# transformers' generate() asks whether the model is FSDP-managed, which imports torch.distributed.fsdp; on
# Debian's torch 1.13 with Python 3.11 that import fails (a dataclass with a mutable default). Nothing here
# is FSDP-managed.
gen_utils.is_fsdp_managed_module = lambda module: False

TINY = {
    "bert": lambda: transformers.BertModel(transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)),
    "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64)),
    "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, rms_norm_eps=1e-6)),
}


def tiny(out):
    for i, (name, make) in enumerate(TINY.items()):
        torch.manual_seed(100 + i)
        model = make()
        with torch.no_grad():  # away from the fresh values (zero biases, unit norms), so no mistake can hide
            for pname, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.2)
        model.save_pretrained(os.path.join(out, name), safe_serialization=True)


def load(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    cls = {"bert": transformers.BertModel, "gpt2": transformers.GPT2LMHeadModel, "llama": transformers.LlamaForCausalLM}[cfg["model_type"]]
    return cls.from_pretrained(folder).eval(), cfg["model_type"]


@torch.no_grad()
def outputs(model, kind, ids, mask, segments=None):
    if kind == "bert":
        o = model(input_ids=ids, attention_mask=mask, token_type_ids=segments)
        m = mask.unsqueeze(-1).float()
        return {"sequence": o.last_hidden_state, "pooled": o.pooler_output, "embedding": (o.last_hidden_state * m).sum(1) / m.sum(1)}
    return {"logits": model(input_ids=ids, attention_mask=mask).logits}


def run(folder, inp, out):
    x = load_file(inp)
    res = {}
    for name in sorted({k.split(".")[0] for k in x}):
        model, kind = load(os.path.join(folder, name) if os.path.isdir(os.path.join(folder, name)) else folder)
        ids, mask = x[f"{name}.ids"].long(), x[f"{name}.mask"].long()
        seg = x[f"{name}.segments"].long() if f"{name}.segments" in x else (torch.zeros_like(ids) if kind == "bert" else None)
        for k, v in outputs(model, kind, ids, mask, seg).items():
            res[f"{name}.padded.{k}"] = v.contiguous()
        for r in range(ids.shape[0]):
            n = int(mask[r].sum())
            one = outputs(model, kind, ids[r : r + 1, :n], mask[r : r + 1, :n], None if seg is None else seg[r : r + 1, :n])
            for k, v in one.items():
                res[f"{name}.row{r}.{k}"] = v.contiguous()
        if kind != "bert" and f"{name}.prompt" in x:
            p = x[f"{name}.prompt"].long()
            g = model.generate(p, attention_mask=torch.ones_like(p), max_new_tokens=int(x[f"{name}.new"][0]), do_sample=False, pad_token_id=0)
            res[f"{name}.generated"] = g[:, p.shape[1]:].int().contiguous()
    save_file({k: v.float().contiguous() if v.dtype != torch.int32 else v for k, v in res.items()}, out)


def tokenize(tokenizer_json, texts_json, out):
    from tokenizers import Tokenizer

    t = Tokenizer.from_file(tokenizer_json)
    t.no_padding()
    t.no_truncation()
    texts = json.load(open(texts_json))
    json.dump([t.encode(s).ids for s in texts], open(out, "w"))


if __name__ == "__main__":
    {"tiny": tiny, "run": run, "tokenize": tokenize}[sys.argv[1]](*sys.argv[2:])
