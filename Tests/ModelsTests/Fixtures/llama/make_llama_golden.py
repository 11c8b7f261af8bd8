#!/usr/bin/env python3
"""A tiny random Llama, written as a Hugging Face folder (safetensors + config.json) by
transformers and as GGUF by the gguf package (with llama.cpp's converter's row permutation
of attn_q/attn_k), and its golden loss, gradient and Hessian-vector product in fp64.

    pip install torch==2.9.1 transformers==5.25.0 gguf==0.19.0 safetensors==0.8.0 numpy
    python3 make_llama_golden.py

Golden figures come from a pure fp64 evaluation (`forward` below, torch.float64
throughout, RoPE tables included): transformers' LlamaForCausalLM computes RMSNorm, the
attention softmax and the RoPE tables in float32 even in float64 mode. The script checks
that its evaluation agrees with LlamaForCausalLM's loss (to 1e-6 relative) and
logits, so the golden model is Hugging Face's Llama. The gradient is torch.autograd's;
the HVP is autograd's double backward, both in fp64. The weights are drawn in float32,
so the GGUF (F32) and safetensors (F64) files hold the same values.

Outputs (committed): hf/ (model.safetensors, config.json), tiny-llama.gguf, tokens.npy,
golden.json (loss), and per layout (hf, gguf), in the harness's parameter order:
v-LAYOUT.npy, grad-LAYOUT.npy, hv-LAYOUT.npy.
"""
import json, os
import numpy as np
import torch
import gguf
from transformers import LlamaConfig, LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20261203)
V, D, L, H, K, F, T, N = 24, 12, 2, 3, 1, 20, 6, 2
cfg = LlamaConfig(vocab_size=V, hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
                  num_key_value_heads=K, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=100000.0,
                  tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu")
model = LlamaForCausalLM(cfg).to(torch.float64)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() == 1:
            p.copy_((1 + 0.3 * torch.randn(p.shape)).float().double())     # norm gains around 1
        else:
            p.copy_((0.4 * torch.randn(p.shape)).float().double())        # float32-representable
model.eval()
tokens = torch.randint(0, V, (N, T + 1), generator=torch.Generator().manual_seed(7))
np.save(os.path.join(here, "tokens.npy"), tokens.numpy().astype(np.int64))

os.makedirs(os.path.join(here, "hf"), exist_ok=True)
model.save_pretrained(os.path.join(here, "hf"), safe_serialization=True)
for extra in ("generation_config.json",):
    p = os.path.join(here, "hf", extra)
    if os.path.exists(p):
        os.remove(p)

# The harness's parameter order (LlamaLM's layout), Hugging Face names.
def hf_names():
    names = ["model.embed_tokens.weight"]
    for b in range(L):
        pre = f"model.layers.{b}."
        names += [pre + "input_layernorm.weight", pre + "self_attn.q_proj.weight", pre + "self_attn.k_proj.weight",
                  pre + "self_attn.v_proj.weight", pre + "self_attn.o_proj.weight", pre + "post_attention_layernorm.weight",
                  pre + "mlp.gate_proj.weight", pre + "mlp.up_proj.weight", pre + "mlp.down_proj.weight"]
    return names + ["model.norm.weight"]

gguf_role = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}

def gguf_name(n):
    if n == "model.embed_tokens.weight": return "token_embd.weight"
    if n == "model.norm.weight": return "output_norm.weight"
    parts = n.split(".")
    return f"blk.{parts[2]}.{gguf_role['.'.join(parts[3:-1])]}.weight"

def permute(w, n_head, n_head_kv):        # llama.cpp convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

def to_gguf(n, w):
    if n.endswith("q_proj.weight"): return permute(w, H, H)
    if n.endswith("k_proj.weight"): return permute(w, H, K)
    return w

params = dict(model.named_parameters())
names = hf_names()

# --- GGUF -----------------------------------------------------------------------------------------
w = gguf.GGUFWriter(os.path.join(here, "tiny-llama.gguf"), "llama")
w.add_block_count(L); w.add_context_length(64); w.add_embedding_length(D); w.add_feed_forward_length(F)
w.add_head_count(H); w.add_head_count_kv(K); w.add_rope_freq_base(100000.0); w.add_layer_norm_rms_eps(1e-5)
w.add_rope_dimension_count(D // H); w.add_vocab_size(V)
for n in names:
    w.add_tensor(gguf_name(n), to_gguf(n, params[n].detach().numpy().astype(np.float32)))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

# --- the pure fp64 evaluation -----------------------------------------------------------------------
def forward(p, tok, eps=1e-5):
    dh = D // H
    inv = 1.0 / (100000.0 ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    def rot(x):                                   # x: [N, heads, T, dh], Hugging Face's rotate_half
        x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin
    def rms(x, g):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g
    E = p["model.embed_tokens.weight"]
    h = E[tok[:, :-1]]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for b in range(L):
        pre = f"model.layers.{b}."
        a = rms(h, p[pre + "input_layernorm.weight"])
        q = (a @ p[pre + "self_attn.q_proj.weight"].T).view(N, T, H, dh).transpose(1, 2)
        k = (a @ p[pre + "self_attn.k_proj.weight"].T).view(N, T, K, dh).transpose(1, 2)
        v = (a @ p[pre + "self_attn.v_proj.weight"].T).view(N, T, K, dh).transpose(1, 2)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(H // K, dim=1); v = v.repeat_interleave(H // K, dim=1)
        s = (q @ k.transpose(-1, -2)) / dh ** 0.5
        s = s.masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(N, T, D)
        h = h + o @ p[pre + "self_attn.o_proj.weight"].T
        m = rms(h, p[pre + "post_attention_layernorm.weight"])
        g = m @ p[pre + "mlp.gate_proj.weight"].T
        h = h + (torch.nn.functional.silu(g) * (m @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
    logits = rms(h, p["model.norm.weight"]) @ E.T
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tok[:, 1:].reshape(-1))
    return loss, logits

flat0 = torch.cat([params[n].detach().reshape(-1) for n in names])
sizes = [params[n].numel() for n in names]
def unflatten(flat):
    out, o = {}, 0
    for n, s in zip(names, sizes):
        out[n] = flat[o:o + s].view(params[n].shape); o += s
    return out

with torch.no_grad():
    ref = model(input_ids=tokens[:, :-1], labels=tokens[:, :-1].clone())   # HF shifts labels itself
    ours_loss, ours_logits = forward(unflatten(flat0), tokens)
    # HF's loss uses labels shifted by one inside the same sequence: compare logits and
    # the next-token loss computed from HF's logits instead.
    hf_logits = ref.logits
    hf_loss = torch.nn.functional.cross_entropy(hf_logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
    assert torch.allclose(ours_logits, hf_logits, rtol=1e-6, atol=1e-6), (ours_logits - hf_logits).abs().max()
    assert abs(ours_loss.item() - hf_loss.item()) <= 1e-6 * abs(hf_loss.item()), (ours_loss.item(), hf_loss.item())

# GGUF stores the RMSNorm epsilon as float32 (1e-5 → 9.99999974737875e-06), and a model
# read from it uses the stored value: the GGUF golden figures use that epsilon.
eps_for = {"hf": 1e-5, "gguf": float(np.float32(1e-5))}
vgen = torch.Generator().manual_seed(11)
v = (2 * torch.rand(flat0.numel(), generator=vgen, dtype=torch.float64) - 1)

def layout_vector(x, to):                         # HF layout → the named layout (q/k rows permuted for GGUF)
    parts, o = [], 0
    for n, s in zip(names, sizes):
        t = x[o:o + s].detach().view(params[n].shape).numpy(); o += s
        parts.append((to_gguf(n, t) if to == "gguf" else t).reshape(-1))
    return np.concatenate(parts).astype(np.float64)

losses = {}
for lay in ("hf", "gguf"):
    theta = flat0.clone().requires_grad_(True)
    loss, _ = forward(unflatten(theta), tokens, eps_for[lay])
    (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
    (hv,) = torch.autograd.grad(grad, theta, grad_outputs=v)
    losses[lay] = loss.item()
    np.save(os.path.join(here, f"v-{lay}.npy"), layout_vector(v, lay))
    np.save(os.path.join(here, f"grad-{lay}.npy"), layout_vector(grad, lay))
    np.save(os.path.join(here, f"hv-{lay}.npy"), layout_vector(hv, lay))
with open(os.path.join(here, "golden.json"), "w") as f:
    json.dump({"loss": losses, "rms_eps": eps_for, "hf_loss": hf_loss.item(),
               "parameters": int(flat0.numel()), "torch": torch.__version__}, f, indent=1)
print("parameters", flat0.numel(), "loss", losses, "hf loss", hf_loss.item())
