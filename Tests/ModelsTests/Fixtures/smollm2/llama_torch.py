"""A pure PyTorch Llama evaluation on a GGUF checkpoint's tensors: the reference of the
SmolLM2 fixture (make_smollm2_reference.py, in float64) and PyTorch's side of
bench/compare_llm.py (in float32). Everything is computed in `dtype`, the RoPE tables
included (transformers computes RMSNorm, the softmax and the RoPE tables in float32 even
in float64 mode). Needs torch, gguf and numpy.
"""
import numpy as np
import torch


def unpermute(w, n_head):
    """The inverse of llama.cpp's attn_q/attn_k row permutation (GGUF's RoPE row order)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load(path, dtype):
    """(weights by tensor name, dequantized by the gguf package, q/k rows un-permuted;
    hyperparameters) of a GGUF Llama."""
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(path)
    val = lambda k: r.fields[k].contents()
    hp = dict(H=val("llama.attention.head_count"), K=val("llama.attention.head_count_kv"), L=val("llama.block_count"),
              D=val("llama.embedding_length"), eps=float(val("llama.attention.layer_norm_rms_epsilon")),
              base=float(val("llama.rope.freq_base")))
    npdt = np.float64 if dtype == torch.float64 else np.float32
    W = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(npdt).reshape([int(x) for x in reversed(t.shape)])
        if t.name.endswith("attn_q.weight"): w = unpermute(w, hp["H"])
        if t.name.endswith("attn_k.weight"): w = unpermute(w, hp["K"])
        W[t.name] = torch.from_numpy(np.ascontiguousarray(w))
    return W, hp


def loss_function(hp, tokens, dtype):
    """loss(W): mean token cross-entropy of the batch `tokens` (N × (T+1) ids: inputs and
    the shifted targets), causal attention, tied output head when there is no output.weight."""
    H, K, L, D, rms_eps, base = hp["H"], hp["K"], hp["L"], hp["D"], hp["eps"], hp["base"]
    N, T = tokens.shape[0], tokens.shape[1] - 1
    dh = D // H
    inv = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=dtype) / dh))
    ang = torch.arange(T, dtype=dtype)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)

    def rot(x):
        x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def rms(x, g):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + rms_eps) * g

    def loss(W):
        E = W["token_embd.weight"]
        h = E[tokens[:, :-1]]
        for b in range(L):
            p = f"blk.{b}."
            a = rms(h, W[p + "attn_norm.weight"])
            q = (a @ W[p + "attn_q.weight"].T).view(N, T, H, dh).transpose(1, 2)
            k = (a @ W[p + "attn_k.weight"].T).view(N, T, K, dh).transpose(1, 2)
            v = (a @ W[p + "attn_v.weight"].T).view(N, T, K, dh).transpose(1, 2)
            q, k = rot(q), rot(k)
            k = k.repeat_interleave(H // K, dim=1); v = v.repeat_interleave(H // K, dim=1)
            s = ((q @ k.transpose(-1, -2)) / dh ** 0.5).masked_fill(mask, float("-inf"))
            o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(N, T, D)
            h = h + o @ W[p + "attn_output.weight"].T
            m = rms(h, W[p + "ffn_norm.weight"])
            h = h + (torch.nn.functional.silu(m @ W[p + "ffn_gate.weight"].T) * (m @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        logits = rms(h, W["output_norm.weight"]) @ W.get("output.weight", E).T
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    return loss
