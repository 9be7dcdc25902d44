"""Text → token rows (index, id, text, visible text, bytes, character span), and safe text helpers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache

MAX_PROMPT_CHARS = 4000  # longest prompt any page accepts; longer input is cut with a notice
MAX_PROMPT_TOKENS = 1024  # the model's context is spent on at most this many prompt tokens

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "→", "\r": "␍", "\u00a0": "⍽"}  # ⍽: a no-break space


@dataclass(frozen=True)
class TokenRow:
    """One token of a tokenized text."""

    index: int
    id: int
    text: str  # the token decoded on its own
    visible: str  # the same with whitespace and control characters made visible
    bytes: str  # hex of the UTF-8 bytes the token stands for
    start: int | None  # character span in the source text, when it can be known
    end: int | None

    def as_dict(self) -> dict:
        """The row as a plain dict (for tables and CSV)."""
        return asdict(self)


def visible(text: str) -> str:
    """`text` with spaces, newlines, tabs, no-break and other spaces and control characters shown as visible
    symbols."""
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}:  # invisible or blank
            code = ord(ch)
            out.append(chr(0x2400 + code) if code < 0x20 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out) or "∅"


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: printable stand-in character → byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def token_bytes(tokenizer, token_id: int) -> bytes:
    """The raw bytes one token stands for (byte-level BPE, byte-fallback, else its UTF-8 decoding)."""
    if hasattr(tokenizer, "piece_bytes"):  # an engine's tokenizer knows them directly
        return tokenizer.piece_bytes(int(token_id))
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return b""
    decoder = _byte_decoder()
    if piece and all(ch in decoder for ch in piece):
        return bytes(decoder[ch] for ch in piece)
    m = _BYTE_FALLBACK.match(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return tokenizer.decode([int(token_id)]).encode("utf-8")


def _char_index_of_bytes(text: str) -> list[int]:
    """For each UTF-8 byte of `text`, the index of the character it belongs to (plus a final sentinel)."""
    index = []
    for i, ch in enumerate(text):
        index.extend([i] * len(ch.encode("utf-8")))
    index.append(len(text))
    return index


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text`, without special tokens added."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def token_rows(tokenizer, text: str, ids: list[int] | None = None) -> list[TokenRow]:
    """One row per token of `text` (or of the given `ids`), with character spans when the bytes line up."""
    ids = encode(tokenizer, text) if ids is None else [int(i) for i in ids]
    pieces = [token_bytes(tokenizer, i) for i in ids]
    spans: list[tuple[int | None, int | None]] = [(None, None)] * len(ids)
    raw = text.encode("utf-8")
    if b"".join(pieces) == raw:
        char_of = _char_index_of_bytes(text)
        pos = 0
        spans = []
        for piece in pieces:
            start, end = pos, pos + len(piece)
            spans.append((char_of[start], char_of[end - 1] + 1 if end > start else char_of[start]))
            pos = end
    rows = []
    for i, (tid, piece, (start, end)) in enumerate(zip(ids, pieces, spans)):
        text_i = tokenizer.decode([tid])
        rows.append(TokenRow(i, tid, text_i, visible(text_i), piece.hex(" "), start, end))
    return rows


def clean_prompt(text: str | None, limit: int = MAX_PROMPT_CHARS) -> tuple[str, list[str]]:
    """(prompt fit for the model, notices): NULs and other control characters dropped, cut to `limit` chars."""
    notices = []
    text = "" if text is None else str(text)
    kept = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    if len(kept) != len(text):
        notices.append(f"Removed {len(text) - len(kept)} control character(s) from the prompt.")
    if len(kept) > limit:
        notices.append(f"The prompt was cut to its first {limit:,} characters (it had {len(kept):,}).")
        kept = kept[:limit]
    return kept, notices


def prompt_problem(text: str) -> str | None:
    """Why `text` cannot be run through a model (empty or blank), or None."""
    if not text:
        return "The prompt is empty: type some text to see how the model continues it."
    if not text.strip():
        return "The prompt is only whitespace: add some words so the model has something to continue."
    return None


def safe_markdown(text: str) -> str:
    """Model text for st.markdown: HTML shown as text, no links or images formed, line breaks kept."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\[\]!])", r"\\\1", text)
    return text.replace("\n", "  \n")


_MD_ANYWHERE = re.compile(r"([\\`*_\[\]<>#!|~$:&(){}=^])")  # characters Markdown (and Streamlit's) acts on
_MD_LINE_START = re.compile(r"^(\s*)(\d+)([.)])(?=\s|$)|^(\s*)([-+])")  # a list item's marker


def markdown_literal(text: str) -> str:
    """`text` for a place Streamlit renders as Markdown (st.table cells, labels): the characters Markdown acts on
    backslash-escaped (CommonMark shows an escaped character as itself), a list marker at the start too, line
    breaks as visible symbols; so "## x", "**", "[a](b)", "1. x" or "<b>" read exactly as written, and plain
    numbers such as "28.22%" stay as they are."""
    if "\n" in text or "\r" in text:
        text = visible(text)
    text = _MD_ANYWHERE.sub(r"\\\1", text).replace("www.", "www\\.")  # (GFM links a bare www.…)
    return _MD_LINE_START.sub(lambda m: (m.group(1) + m.group(2) + "\\" + m.group(3)) if m.group(2)
                              else (m.group(4) + "\\" + m.group(5)), text)


def fit_context(ids: list[int], context: int, new_tokens: int = 1, label: str = "the model") -> tuple[list[int], str | None]:
    """(the last ids that leave room for `new_tokens` in a context of `context` tokens, notice or None).

    Also applies the app's own cap of MAX_PROMPT_TOKENS prompt tokens. The start is dropped, since the end is
    what the next token continues."""
    new_tokens = max(1, min(new_tokens, context - 1))
    keep = max(1, min(MAX_PROMPT_TOKENS, context - new_tokens))
    if len(ids) <= keep:
        return list(ids), None
    dropped = len(ids) - keep
    if keep == MAX_PROMPT_TOKENS and context - new_tokens > MAX_PROMPT_TOKENS:
        why = f"prompts are limited to their last {MAX_PROMPT_TOKENS:,} tokens"
    elif new_tokens > 1:
        why = f"{label} reads at most {context:,} tokens, and {new_tokens:,} new tokens need room"
    else:
        why = f"{label} reads at most {context:,} tokens"
    return list(ids[-keep:]), (f"The prompt has {len(ids):,} tokens; {why}, so its first {dropped:,} tokens "
                               f"were dropped (the last {keep:,} are used).")
