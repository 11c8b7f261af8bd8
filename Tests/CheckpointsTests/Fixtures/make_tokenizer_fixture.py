#!/usr/bin/env python3
"""The tokenizer fixture: SmolLM2's byte-level BPE (its GGUF's tokenizer.* metadata, no
tensors) as smollm2-tokenizer.gguf, and tokenizer-golden.json: token ids of committed
strings (unicode, whitespace runs, digits, emoji, contractions) and of Debian's
/usr/share/common-licenses/Apache-2.0, from transformers' tokenizer built from the same GGUF.

    pip install transformers==5.25.0 tokenizers==0.23.3 gguf==0.19.0 numpy
    python3 make_tokenizer_fixture.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json, os, sys
import gguf
from transformers import AutoTokenizer

here = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[1]
r = gguf.GGUFReader(path)
w = gguf.GGUFWriter(os.path.join(here, "smollm2-tokenizer.gguf"), "llama")
w.add_tokenizer_model(r.fields["tokenizer.ggml.model"].contents())
w.add_tokenizer_pre(r.fields["tokenizer.ggml.pre"].contents())
w.add_token_list(r.fields["tokenizer.ggml.tokens"].contents())
w.add_token_merges(r.fields["tokenizer.ggml.merges"].contents())
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
strings = [
    "Hello, world!", "The year 2024 has 12 months, 365 days.", "  two leading spaces and   three inside",
    "tabs\tand\nnewlines\n\n\nend", "trailing spaces   ", "It's, they're, we've, I'm, you'll, he'd.",
    "naïve café, Zürich, São Paulo", "Ελληνικά και русский язык", "中文字符和日本語のテキスト", "emoji 🎉🚀 and 👩‍👩‍👧 family",
    "x=3.14159; y = -2e-10; z=0x1F", "def f(a, b):\n    return a ** b  # power", "https://www.apache.org/licenses/LICENSE-2.0",
    "", " ", "\n", "a", "!!!???...", "combining e\u0301 vs é", "Ǆungla ﬁ ligature ½ ①",
]
golden = {"strings": [{"text": s, "ids": tok(s, add_special_tokens=False)["input_ids"]} for s in strings]}
text = open("/usr/share/common-licenses/Apache-2.0").read()
golden["apache"] = {"source": "/usr/share/common-licenses/Apache-2.0", "chars": len(text),
                    "ids": tok(text, add_special_tokens=False)["input_ids"]}
with open(os.path.join(here, "tokenizer-golden.json"), "w", encoding="utf-8") as f:
    json.dump(golden, f, ensure_ascii=False, indent=0)
print(len(strings), "strings;", len(golden["apache"]["ids"]), "tokens of the licence")
