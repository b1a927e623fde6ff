"""When two business names are the same name.

Names equal after NFKC (full-width letters and digits become ASCII), case folding, removing
punctuation and blanks, and dropping a trailing organisational suffix (有限公司 and its kin)
are one name: 深圳市腾飞科技有限公司 and「深圳市 腾飞科技 有限责任公司」 cannot both be held.
"""

from __future__ import annotations

import unicodedata

# Longest first, so 股份有限公司 is dropped whole rather than leaving 股份.
_SUFFIXES = tuple(
    sorted(
        (
            "股份有限公司",
            "有限责任公司",
            "有限公司",
            "股份公司",
            "公司",
            "个人独资企业",
            "普通合伙企业",
            "有限合伙企业",
            "合伙企业",
            "农民专业合作社",
            "专业合作社",
            "合作社",
            "co.,ltd.",
            "co.ltd",
            "ltd",
            "limited",
        ),
        key=len,
        reverse=True,
    )
)


def _significant(ch: str) -> bool:
    # P* punctuation, Z* separators, C* controls; S* symbols such as ＋ or · count as noise too.
    return unicodedata.category(ch)[0] not in "PZCS"


def name_key(name: str) -> str:
    """The normalised form two names are compared by (may be empty for a bare suffix)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    compact = "".join(ch for ch in folded if _significant(ch))
    for suffix in _SUFFIXES:
        plain = "".join(ch for ch in suffix if _significant(ch))
        if compact.endswith(plain):
            return compact[: -len(plain)]
    return compact
