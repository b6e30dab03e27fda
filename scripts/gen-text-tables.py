#!/usr/bin/env python3
"""Regenerates the text-cleanup tables in src/engine/text/ from the Python 3.11 standard library:

- code-pages.ts: what each single-byte code page ftfy 6.3.1 tries decodes bytes 0x80-0xFF (and 0x1A) to, with ftfy's
  "sloppy" rule for the windows-125x pages (a byte the codec leaves undefined decodes as Latin-1; 0x1A as U+FFFD).
- html-entity-table.ts: ftfy's HTML_ENTITIES, built from html.entities.html5 the way ftfy builds it.
- mojibake-classes.ts: the character classes of ftfy's mojibake heuristics. The UTF-8 clue classes follow from the
  code pages by rule (see utf8_clue_classes); the badness categories are ftfy's hand-picked character lists, given
  here by Unicode name.

Usage: python3 scripts/gen-text-tables.py          (rewrites the three files)
       python3 scripts/gen-text-tables.py --check  (exits 1 if a committed file differs from what it would write)
Output depends on the Python version only through its codecs, html.entities and unicodedata (3.11 made the files).
"""
import html
import html.entities
import os
import sys
import textwrap
import unicodedata

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TEXT = os.path.join(ROOT, "src", "engine", "text")
HOW = "// Made by scripts/gen-text-tables.py (Python 3.11 stdlib); run it to regenerate, --check to compare.\n"

# ftfy's CHARMAP_ENCODINGS, in its order (the order mojibake repair tries them).
CODE_PAGES = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250", "sloppy-windows-1253",
              "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2", "macroman", "cp437"]
# The pages whose UTF-8 mojibake ftfy's clue classes describe (its "safe" encodings; no sloppy fallback there).
CLUE_ENCODINGS = ["latin-1", "windows-1252", "windows-1251", "windows-1250", "windows-1253", "windows-1254",
                  "windows-1257"]


def decoding_table(name):
    """The 256 characters a code page decodes the bytes to; "sloppy-X" fills X's undefined bytes from Latin-1 and
    maps 0x1A to U+FFFD, as ftfy's sloppy codecs do."""
    if not name.startswith("sloppy-"):
        return bytes(range(256)).decode(name)
    base = name[len("sloppy-"):]
    chars = list(bytes(range(256)).decode("latin-1"))
    for i, ch in enumerate(bytes(range(256)).decode(base, errors="replace")):
        if ch != "\ufffd":
            chars[i] = ch
    chars[0x1A] = "\ufffd"
    return "".join(chars)


def code_pages_ts():
    out = ["// Generated from Python 3.11 codecs and ftfy 6.3.1's \"sloppy\" variants (undefined bytes decode as Latin-1, byte\n",
           "// 0x1A as U+FFFD): what each single-byte code page ftfy tries decodes bytes 0x80-0xFF to. Regenerate, do not edit.\n",
           HOW, "\n",
           "export interface CodePageTable { name: string; high: string; sub: string }\n",
           "export const CODE_PAGES: readonly CodePageTable[] = [\n"]
    for name in CODE_PAGES:
        table = decoding_table(name)
        esc = lambda s: "".join("\\u%04X" % ord(c) for c in s)
        out.append(f"  {{ name: '{name}', high: '{esc(table[0x80:])}', sub: '{esc(table[0x1A])}' }},\n")
    out.append("];\n")
    return "".join(out)


def html_entities():
    """ftfy's HTML_ENTITIES: every html5 name ending in ";", plus the upper-cased name of an all-lowercase one when
    the upper-cased name is no entity itself (value upper-cased too: &NTILDE; -> Ñ)."""
    entities = {}
    for name, value in html.entities.html5.items():
        if not name.endswith(";"):
            continue
        entities[name] = value
        upper = name.upper()
        if name == name.lower() and html.unescape("&" + upper) == "&" + upper:
            entities[upper] = value.upper()
    return entities


def html_entity_table_ts():
    entities = html_entities()
    # sorted with the ";" still on, which puts "EMSP13" and "EMSP14" before "EMSP"
    pairs = [name[:-1] + "=" + ".".join("%X" % ord(c) for c in entities[name]) for name in sorted(entities)]
    lines = textwrap.wrap(" ".join(pairs), width=109, break_long_words=False, break_on_hyphens=False)
    return "".join(
        ["// Generated from Python 3.11 html.entities.html5 the way ftfy 6.3.1 builds HTML_ENTITIES: every entity name\n",
         "// that ends in \";\" plus the upper-cased form of all-lowercase names that are not themselves entities.\n",
         "// One \"name=value\" pair per entry, value as \".\"-separated hex code points. Regenerate, do not edit.\n",
         HOW, "\n",
         "export const HTML_ENTITY_TABLE = [\n"]
        + [f"  '{line}',\n" for line in lines]
        + ["].join(' ');\n"])


# ftfy's badness categories (badness.py MOJIBAKE_CATEGORIES), hand-picked in ftfy: the characters UTF-8 mojibake in
# the supported code pages produces, grouped by how they behave next to each other. Each entry is a character name,
# FIRST..LAST for a run of code points, or U+XXXX for a character without a name.
BADNESS_CATEGORIES = {
    "common": """
        NO-BREAK SPACE | SOFT HYPHEN | ACUTE ACCENT | MIDDLE DOT | EN DASH..HORIZONTAL BAR |
        RIGHT SINGLE QUOTATION MARK | HORIZONTAL ELLIPSIS
    """,
    "c1": """
        U+0080..U+009F
    """,
    "bad": """
        CURRENCY SIGN | BROKEN BAR | DIAERESIS | FEMININE ORDINAL INDICATOR | NOT SIGN | MACRON | CEDILLA |
        MASCULINE ORDINAL INDICATOR | LATIN SMALL LETTER F WITH HOOK | MODIFIER LETTER CIRCUMFLEX ACCENT..CARON |
        BREVE | OGONEK..SMALL TILDE | DAGGER..DOUBLE DAGGER | PER MILLE SIGN | REVERSED NOT SIGN | LOZENGE |
        REPLACEMENT CHARACTER
    """,
    "law": """
        SECTION SIGN | PILCROW SIGN
    """,
    "currency": """
        CENT SIGN..POUND SIGN | YEN SIGN | PESETA SIGN | EURO SIGN
    """,
    "startPunctuation": """
        INVERTED EXCLAMATION MARK | COPYRIGHT SIGN | LEFT-POINTING DOUBLE ANGLE QUOTATION MARK |
        INVERTED QUESTION MARK | GREEK TONOS..GREEK DIALYTIKA TONOS | LEFT SINGLE QUOTATION MARK |
        SINGLE LOW-9 QUOTATION MARK | LEFT DOUBLE QUOTATION MARK | DOUBLE LOW-9 QUOTATION MARK | BULLET |
        SINGLE LEFT-POINTING ANGLE QUOTATION MARK | U+F8FF
    """,
    "endPunctuation": """
        REGISTERED SIGN | RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK | DOUBLE ACUTE ACCENT |
        RIGHT DOUBLE QUOTATION MARK | SINGLE RIGHT-POINTING ANGLE QUOTATION MARK | TRADE MARK SIGN
    """,
    "numeric": """
        PLUS-MINUS SIGN..SUPERSCRIPT THREE | MICRO SIGN | SUPERSCRIPT ONE |
        VULGAR FRACTION ONE QUARTER..VULGAR FRACTION THREE QUARTERS | MULTIPLICATION SIGN | DIVISION SIGN |
        FRACTION SLASH | NUMERO SIGN | PARTIAL DIFFERENTIAL | INCREMENT | N-ARY PRODUCT | N-ARY SUMMATION |
        SQUARE ROOT | INFINITY | INTERSECTION | INTEGRAL | ALMOST EQUAL TO | NOT EQUAL TO..IDENTICAL TO |
        LESS-THAN OR EQUAL TO..GREATER-THAN OR EQUAL TO
    """,
    "kaomoji": """
        DEGREE SIGN | LATIN CAPITAL LETTER O WITH GRAVE..LATIN CAPITAL LETTER O WITH DIAERESIS |
        LATIN CAPITAL LETTER U WITH GRAVE..LATIN CAPITAL LETTER U WITH DIAERESIS |
        LATIN SMALL LETTER O WITH GRAVE..LATIN SMALL LETTER O WITH DIAERESIS |
        LATIN SMALL LETTER O WITH STROKE..LATIN SMALL LETTER U WITH DIAERESIS |
        LATIN CAPITAL LETTER O WITH MACRON | LATIN CAPITAL LETTER O WITH DOUBLE ACUTE |
        LATIN CAPITAL LETTER U WITH MACRON | LATIN CAPITAL LETTER U WITH OGONEK
    """,
    "upperAccented": """
        LATIN CAPITAL LETTER A WITH GRAVE..LATIN CAPITAL LETTER N WITH TILDE |
        LATIN CAPITAL LETTER O WITH STROKE |
        LATIN CAPITAL LETTER U WITH DIAERESIS..LATIN CAPITAL LETTER Y WITH ACUTE |
        LATIN CAPITAL LETTER A WITH MACRON | LATIN CAPITAL LETTER A WITH BREVE |
        LATIN CAPITAL LETTER A WITH OGONEK | LATIN CAPITAL LETTER C WITH ACUTE |
        LATIN CAPITAL LETTER C WITH CARON | LATIN CAPITAL LETTER D WITH CARON |
        LATIN CAPITAL LETTER D WITH STROKE | LATIN CAPITAL LETTER E WITH MACRON |
        LATIN CAPITAL LETTER E WITH DOT ABOVE | LATIN CAPITAL LETTER E WITH OGONEK |
        LATIN CAPITAL LETTER E WITH CARON | LATIN CAPITAL LETTER G WITH BREVE |
        LATIN CAPITAL LETTER G WITH CEDILLA | LATIN CAPITAL LETTER I WITH MACRON |
        LATIN CAPITAL LETTER I WITH DOT ABOVE | LATIN CAPITAL LETTER K WITH CEDILLA |
        LATIN CAPITAL LETTER L WITH ACUTE | LATIN CAPITAL LETTER L WITH CEDILLA |
        LATIN CAPITAL LETTER L WITH CARON | LATIN CAPITAL LETTER L WITH STROKE |
        LATIN CAPITAL LETTER N WITH ACUTE | LATIN CAPITAL LETTER N WITH CEDILLA |
        LATIN CAPITAL LETTER N WITH CARON | LATIN CAPITAL LIGATURE OE | LATIN CAPITAL LETTER R WITH CARON |
        LATIN CAPITAL LETTER S WITH ACUTE | LATIN CAPITAL LETTER S WITH CEDILLA |
        LATIN CAPITAL LETTER S WITH CARON | LATIN CAPITAL LETTER T WITH CEDILLA |
        LATIN CAPITAL LETTER T WITH CARON | LATIN CAPITAL LETTER U WITH RING ABOVE |
        LATIN CAPITAL LETTER U WITH DOUBLE ACUTE |
        LATIN CAPITAL LETTER Y WITH DIAERESIS..LATIN CAPITAL LETTER Z WITH ACUTE |
        LATIN CAPITAL LETTER Z WITH DOT ABOVE | LATIN CAPITAL LETTER Z WITH CARON |
        CYRILLIC CAPITAL LETTER GHE WITH UPTURN
    """,
    "lowerAccented": """
        LATIN SMALL LETTER SHARP S..LATIN SMALL LETTER N WITH TILDE | LATIN SMALL LETTER U WITH DIAERESIS |
        LATIN SMALL LETTER A WITH MACRON | LATIN SMALL LETTER A WITH BREVE | LATIN SMALL LETTER A WITH OGONEK |
        LATIN SMALL LETTER C WITH ACUTE | LATIN SMALL LETTER C WITH CARON | LATIN SMALL LETTER D WITH CARON |
        LATIN SMALL LETTER D WITH STROKE | LATIN SMALL LETTER E WITH MACRON |
        LATIN SMALL LETTER E WITH DOT ABOVE | LATIN SMALL LETTER E WITH OGONEK | LATIN SMALL LETTER E WITH CARON |
        LATIN SMALL LETTER G WITH BREVE | LATIN SMALL LETTER G WITH CEDILLA | LATIN SMALL LETTER I WITH MACRON |
        LATIN SMALL LETTER I WITH OGONEK | LATIN SMALL LETTER K WITH CEDILLA | LATIN SMALL LETTER L WITH ACUTE |
        LATIN SMALL LETTER L WITH CEDILLA | LATIN SMALL LETTER L WITH CARON | LATIN SMALL LETTER L WITH STROKE |
        LATIN SMALL LIGATURE OE | LATIN SMALL LETTER R WITH ACUTE | LATIN SMALL LETTER S WITH ACUTE |
        LATIN SMALL LETTER S WITH CEDILLA | LATIN SMALL LETTER S WITH CARON | LATIN SMALL LETTER T WITH CARON |
        LATIN SMALL LETTER Z WITH ACUTE | LATIN SMALL LETTER Z WITH DOT ABOVE | LATIN SMALL LETTER Z WITH CARON |
        CYRILLIC SMALL LETTER GHE WITH UPTURN | LATIN SMALL LIGATURE FI..LATIN SMALL LIGATURE FL
    """,
    "upperCommon": """
        LATIN CAPITAL LETTER THORN | GREEK CAPITAL LETTER ALPHA WITH TONOS |
        GREEK CAPITAL LETTER EPSILON WITH TONOS..GREEK CAPITAL LETTER IOTA WITH TONOS |
        GREEK CAPITAL LETTER OMICRON WITH TONOS |
        GREEK CAPITAL LETTER UPSILON WITH TONOS..GREEK CAPITAL LETTER OMEGA WITH TONOS |
        GREEK CAPITAL LETTER ALPHA..GREEK CAPITAL LETTER UPSILON WITH DIALYTIKA |
        CYRILLIC CAPITAL LETTER IO..CYRILLIC CAPITAL LETTER YA
    """,
    "lowerCommon": """
        GREEK SMALL LETTER ALPHA WITH TONOS..GREEK SMALL LETTER OMEGA |
        CYRILLIC SMALL LETTER A..CYRILLIC SMALL LETTER DZHE
    """,
    "box": """
        BOX DRAWINGS LIGHT VERTICAL | BOX DRAWINGS LIGHT DOWN AND RIGHT | BOX DRAWINGS LIGHT DOWN AND LEFT |
        BOX DRAWINGS LIGHT UP AND LEFT | BOX DRAWINGS LIGHT VERTICAL AND RIGHT |
        BOX DRAWINGS LIGHT VERTICAL AND LEFT | BOX DRAWINGS LIGHT DOWN AND HORIZONTAL |
        BOX DRAWINGS LIGHT VERTICAL AND HORIZONTAL |
        BOX DRAWINGS DOUBLE HORIZONTAL..BOX DRAWINGS DOUBLE VERTICAL AND HORIZONTAL | UPPER HALF BLOCK |
        LOWER HALF BLOCK | FULL BLOCK | LEFT HALF BLOCK | RIGHT HALF BLOCK..DARK SHADE
    """,
}
# What the categories are for (ftfy's own descriptions, shortened): common = in mojibake but also everywhere else;
# c1 = C1 controls, mojibake only; bad = nearly always mojibake; law/currency/numeric = symbols of those contexts;
# start/endPunctuation = punctuation that opens/closes; kaomoji = letters used in emoticon faces, kept out of the
# accented classes; upper/lowerAccented = accented Latin letters; upper/lowerCommon = Greek, Cyrillic and thorn,
# which end words legitimately; box = box-drawing and block characters (not the plain horizontal line).


def code_points(spec):
    points = []
    for item in " ".join(spec.split()).split("|"):
        item = item.strip()
        first, _, last = item.partition("..")
        a, b = char_of(first), char_of(last or first)
        points.extend(range(a, b + 1))
    return points


def char_of(name):
    return int(name[2:], 16) if name.startswith("U+") else ord(unicodedata.lookup(name))


def utf8_clue_classes():
    """ftfy's UTF8_CLUES, by rule: what the lead and continuation bytes of UTF-8 look like when decoded with one of
    the clue encodings. Lead bytes of 4-byte sequences are only F0 and F3 (the others start unassigned or private
    code points). A continuation may also be a plain space (a NO-BREAK SPACE that was normalised); the strict
    continuation class, used to avoid repairing inside a larger garble, leaves out the characters that stand for
    themselves in ordinary text: dashes, curly quotation marks (not the angle ones), bullet and ellipsis."""
    def decoded(*byte_values):
        out = set()
        for encoding in CLUE_ENCODINGS:
            for b in byte_values:
                try:
                    out.add(ord(bytes([b]).decode(encoding)))
                except UnicodeDecodeError:
                    pass
        return out

    continuation = decoded(*range(0x80, 0xC0))

    def stands_for_itself(cp):
        name = unicodedata.name(chr(cp), "")
        return (unicodedata.category(chr(cp)) == "Pd" or (name.endswith("QUOTATION MARK") and "ANGLE" not in name)
                or name in ("BULLET", "HORIZONTAL ELLIPSIS"))

    return {
        "utf8FirstOf2": decoded(*range(0xC2, 0xE0)),
        "utf8FirstOf3": decoded(*range(0xE0, 0xF0)),
        "utf8FirstOf4": decoded(0xF0, 0xF3),
        "utf8Continuation": continuation | {ord(" ")},
        "utf8ContinuationStrict": {cp for cp in continuation if not stands_for_itself(cp)},
    }


def class_body(points):
    """A regex character-class body: code points ascending, runs of two or more as FIRST-LAST."""
    points = sorted(set(points))
    parts, i = [], 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        parts.append("\\u{%X}" % points[i] if i == j else "\\u{%X}-\\u{%X}" % (points[i], points[j]))
        i = j + 1
    return "".join(parts)


def mojibake_classes_ts():
    out = ["// Generated from ftfy 6.3.1 (Apache-2.0, rspeer/python-ftfy) character tables: the character sets its\n",
           "// mojibake heuristics are built from, as regex character-class bodies (code point ranges, `u` flag).\n",
           "// Regenerate rather than edit by hand.\n",
           HOW, "\n",
           "export const MOJIBAKE_CLASSES = {\n"]
    out += [f"  {key}: '{class_body(code_points(spec))}',\n" for key, spec in BADNESS_CATEGORIES.items()]
    out += ["} as const;\n", "\n", "export const UTF8_CLUE_CLASSES = {\n"]
    out += [f"  {key}: '{class_body(points)}',\n" for key, points in utf8_clue_classes().items()]
    out.append("} as const;\n")
    return "".join(out)


FILES = {"code-pages.ts": code_pages_ts, "html-entity-table.ts": html_entity_table_ts,
         "mojibake-classes.ts": mojibake_classes_ts}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in FILES.items():
        path = os.path.join(TEXT, name)
        text = build()
        with open(path, encoding="utf-8") as f:
            current = f.read()
        if current == text:
            continue
        stale.append(name)
        if not check:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
    if check and stale:
        print("differs from the generator:", ", ".join(stale))
        sys.exit(1)
    print(("stale: " if check else "rewrote: ") + (", ".join(stale) or "nothing"))


if __name__ == "__main__":
    main()
