#!/usr/bin/env python3
"""Generates pretokenize.json, an independent reference for the pre-tokenizers.

It emulates llama.cpp's unicode_regex_split (commit c392e509) with Python's
backtracking `re` engine, whose leftmost-first semantics match std::regex
ECMAScript: expressions using \\p{..} run on the "collapsed" text (every
non-ASCII code point replaced by a byte standing for its category, non-ASCII
whitespace by \\x0b), the others on the code points with non-ASCII whitespace
replaced by \\x0b. llama.cpp's two hand-written splitters (GPT-2, Llama 3) are
emulated by their original expressions; tokenizer tests compare the Go code
with this file. Python's Unicode data (14.0) differs from llama.cpp's (15.1)
only in characters the generator never emits.

Run: python3 gen_pretokenize.py > pretokenize.json
"""
import json
import random
import re
import unicodedata

WHITESPACE = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
              0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))
CAT_BYTE = {"N": "\xd1", "L": "\xd2", "P": "\xd3", "M": "\xd4", "S": "\xd5"}
UCAT_ASCII = {
    "N": "0-9",
    "L": "A-Za-z",
    "P": "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}",
    "M": "",
    "S": "\\$\\+<->\\^`\\|",
}


def collapse(text):
    out = []
    for ch in text:
        c = ord(ch)
        if c < 128:
            out.append(ch)
        elif c in WHITESPACE:
            out.append("\x0b")
        else:
            out.append(CAT_BYTE.get(unicodedata.category(ch)[0], "\xd0"))
    return "".join(out)


def wide(text):
    return "".join("\x0b" if ord(ch) > 0x7F and ord(ch) in WHITESPACE else ch for ch in text)


def collapse_regex(expr):
    """llama.cpp's rewriting of \\p{X} into collapsed character classes."""
    out, inside, i = [], False, 0
    while i < len(expr):
        if expr[i] == "[" and (i == 0 or expr[i - 1] != "\\"):
            out.append("[")
            inside = True
        elif inside and expr[i] == "]" and expr[i - 1] != "\\":
            out.append("]")
            inside = False
        elif expr.startswith("\\p{", i) and i + 4 < len(expr) and expr[i + 4] == "}":
            cat = expr[i + 3]
            body = CAT_BYTE[cat] + UCAT_ASCII[cat]
            out.append(body if inside else "[" + body + "]")
            i += 4
        else:
            out.append(expr[i])
        i += 1
    return "".join(out)


def regex_split(text, exprs):
    offsets = [len(text)]
    col, wid = collapse(text), wide(text)
    for expr in exprs:
        use_collapsed = "\\p{" in expr
        view = col if use_collapsed else wid
        pat = re.compile(collapse_regex(expr) if use_collapsed else expr, re.ASCII)
        new, start = [], 0
        for off in offsets:
            seg = view[start:start + off]
            last = 0
            for m in pat.finditer(seg):
                if m.start() > last:
                    new.append(m.start() - last)
                new.append(m.end() - m.start())
                last = m.end()
            if last < off:
                new.append(off - last)
            start += off
        offsets = new
    words, start = [], 0
    for off in offsets:
        words.append(text[start:start + off])
        start += off
    return words


# DeepSeek LLM's letter class, as code point ranges (from its tokenizer.json).
DEEPSEEK_LETTERS = "".join(chr(a) if a == b else chr(a) + "-" + chr(b) for a, b in [
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
    (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
    (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
    (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102),
    (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
    (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3),
    (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3),
    (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943),
])
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRESETS = {
    "gpt-2": [GPT2],
    "llama-bpe": [LLAMA3],
    "qwen2": [r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "deepseek-llm": [
        "[\r\n]",
        "\\s?[" + DEEPSEEK_LETTERS + "]+",
        "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
        "\\s+\\Z",  # std::regex "$" (Python's "$" would also match before a final newline)
        "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
        "\\p{N}+",
    ],
    "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}"],
    "falcon": ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"],
    "starcoder": ["\\p{N}", GPT2],
    "default": ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"],
    "bloom": [" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"],
    "viking": [" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+", "\\p{N}"],
}

POOL = (
    list("abcXYZ  eEsStTmMdDlLrRvV0123456789") * 3
    + list("'''\"!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`")
    + ["\t", "\n", "\r", "\r\n", "\v", "\f", "\x00", "\x1f", "\x7f", "\x85"]
    + ["\u00a0", "\u3000", "\u2009", "\u2028", "\u202f", "\u1680"]
    + list("éüñßµÀÖØöøƺǄʓ") + list("αβΩωΆ") + list("нещоБ") + list("我想在日本語龥") + ["가", "힣", "あ", "ア"]
    + ["ក", "ា", "ំ", "\u0301", "\u200d", "\ue000", "\u0378", "\ufffd"]
    + ["٣", "²", "Ⅻ", "½", "€", "←", "🦙", "😁", "✅", "…", "。", "，", "、", "‘", "’", "“", "—", "！", "？", "।", "۔", "،", "Ａ", "ｚ", "ࠀ"]
    + ["'s", "'re", "'LL", "'Ve", "'d", "'t", "'M", " the", " cat", "don't", "  ", "   ", "\n\n", " \n ", "333333", "3.14", "Hello"]
)


def main():
    rng = random.Random(20250221)
    texts = []
    for n in range(600):
        k = rng.randint(1, 30 if n % 4 else 80)
        texts.append("".join(rng.choice(POOL) for _ in range(k)))
    texts += ["", " ", "  ", "a", "'", "' ", "'s", " 's", "1234567", "\r\n\r\n  x", "x  \n", "a  b   c    ", "ab \t\n cd"]
    out = {"texts": texts, "presets": {}}
    for name, exprs in PRESETS.items():
        out["presets"][name] = [[len(w) for w in regex_split(t, exprs)] for t in texts]
    json.dump(out, __import__("sys").stdout, ensure_ascii=False, indent=None)


main()
