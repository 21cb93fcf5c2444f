"""qr.py: codes a real decoder (zbarimg) reads back, their fixed structure, terminal art
(shown by a small terminal model in a dark and a light scheme), and when it is coloured."""
from __future__ import annotations

import io
import random
import re
import struct
import subprocess
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evserver.tools import qr
from tests.tools import need_tool

Matrix = list[list[bool]]

# Byte-mode capacities (L, M, Q, H) of versions 1-10, from the spec's capacity table.
CAPACITY = {
    1: (17, 14, 11, 7), 2: (32, 26, 20, 14), 3: (53, 42, 32, 24), 4: (78, 62, 46, 34),
    5: (106, 84, 60, 44), 6: (134, 106, 74, 58), 7: (154, 122, 86, 64), 8: (192, 152, 108, 84),
    9: (230, 180, 130, 98), 10: (271, 213, 151, 119),
}
TOTAL_CODEWORDS = (26, 44, 70, 100, 134, 172, 196, 242, 292, 346)
ECC_FIELD = {"L": 0b01, "M": 0b00, "Q": 0b11, "H": 0b10}
URL = "http://192.168.1.23:8080/"


def find_zbarimg() -> str:
    """Path of zbarimg, the real decoder (tests/tools.py: skip, or fail when CI is set)."""
    return need_tool("zbarimg")


def write_grey_png(greys: list[list[int]], path: Path, scale: int = 4) -> None:
    """A minimal 8-bit greyscale PNG: one grey level (0 black - 255 white) per module,
    each a scale x scale square."""
    height, width = len(greys), len(greys[0])
    raw = bytearray()
    for row in greys:
        line = b"".join(bytes([grey]) * scale for grey in row)
        raw += (b"\x00" + line) * scale  # filter type 0 on each pixel row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width * scale, height * scale, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def write_png(matrix: Matrix, path: Path, scale: int = 4, quiet: int = 4) -> None:
    """The matrix as a PNG: dark modules black, light ones and the quiet zone white."""
    n = len(matrix) + 2 * quiet
    greys = [[255] * n for _ in range(n)]
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            greys[quiet + r][quiet + c] = 0 if dark else 255
    write_grey_png(greys, path, scale)


def decode(zbarimg: str, matrix: Matrix, tmp_path: Path, name: str = "code.png") -> str:
    path = tmp_path / name
    write_png(matrix, path)
    return run_zbarimg(zbarimg, path)


def decode_greys(zbarimg: str, greys: list[list[int]], tmp_path: Path,
                 name: str = "screen.png") -> str:
    """What zbarimg reads in an image of grey levels (as `screenshot` makes)."""
    path = tmp_path / name
    write_grey_png(greys, path)
    return run_zbarimg(zbarimg, path)


def run_zbarimg(zbarimg: str, path: Path) -> str:
    done = subprocess.run([zbarimg, "--raw", "-q", str(path)], capture_output=True, timeout=10)
    assert done.returncode == 0, f"zbarimg found no code (rc {done.returncode}): {done.stderr!r}"
    out = done.stdout.decode("utf-8")
    return out[:-1] if out.endswith("\n") else out


def filler(n: int, seed: int) -> str:
    """n ASCII bytes starting with a URL, the rest varied so blocks differ."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/?=&%"
    return (URL + "".join(rng.choice(alphabet) for _ in range(n)))[:n]


def version_of(matrix: Matrix) -> int:
    size = len(matrix)
    assert all(len(row) == size for row in matrix), "matrix is not square"
    assert (size - 17) % 4 == 0, f"size {size} is not 17 + 4 * version"
    return (size - 17) // 4


def bch_remainder(value: int, generator: int) -> int:
    degree = generator.bit_length() - 1
    value <<= degree
    for shift in range(value.bit_length() - 1, degree - 1, -1):
        if value >> shift & 1:
            value ^= generator << (shift - degree)
    return value


def read_bits(matrix: Matrix, cells: list[tuple[int, int]]) -> int:
    """Modules at (row, col) cells as an integer, first cell = most significant bit."""
    value = 0
    for row, col in cells:
        value = value << 1 | matrix[row][col]
    return value


def read_format(matrix: Matrix) -> tuple[str, int]:
    """Both format-information copies (spec positions, MSB first), BCH-checked and decoded."""
    n = len(matrix)
    first = [(8, c) for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in (7, 5, 4, 3, 2, 1, 0)]
    second = [(r, 8) for r in range(n - 1, n - 8, -1)] + [(8, c) for c in range(n - 8, n)]
    bits = read_bits(matrix, first)
    assert read_bits(matrix, second) == bits, "the two format copies differ"
    unmasked = bits ^ 0b101010000010010
    data = unmasked >> 10
    assert unmasked & 0x3FF == bch_remainder(data, 0b10100110111), f"bad BCH in {bits:015b}"
    level = {v: k for k, v in ECC_FIELD.items()}[data >> 3]
    return level, data & 0b111


def read_version(matrix: Matrix) -> int:
    """Both version-information blocks (v7+), BCH-checked; returns the version they name."""
    n = len(matrix)
    top_right = [(i // 3, n - 11 + i % 3) for i in range(17, -1, -1)]
    bottom_left = [(n - 11 + i % 3, i // 3) for i in range(17, -1, -1)]
    bits = read_bits(matrix, top_right)
    assert read_bits(matrix, bottom_left) == bits, "the two version blocks differ"
    assert bits & 0xFFF == bch_remainder(bits >> 12, 0b1111100100101), f"bad BCH {bits:018b}"
    return bits >> 12


@pytest.mark.parametrize("ecc", "LMQH")
@pytest.mark.parametrize("version", [1, 2, 5, 7, 10])
def test_zbar_decodes_a_full_code_of_each_version_and_level(
        tmp_path: Path, version: int, ecc: str) -> None:
    """Text that exactly fills a version is put in that version, and zbarimg reads it back."""
    zbarimg = find_zbarimg()
    text = filler(CAPACITY[version]["LMQH".index(ecc)], seed=version)
    matrix = qr.encode(text, ecc)
    assert version_of(matrix) == version
    assert read_format(matrix)[0] == ecc
    assert decode(zbarimg, matrix, tmp_path) == text


@pytest.mark.parametrize("text,ecc", [
    ("héllo wörld", "L"),
    ("http://例え.jp/パス?q=日本語", "M"),
    ("Grüße → 🙂 ✓ " + "ß" * 40, "Q"),
    ("Ωμέγα " * 20, "L"),
    ("日本語" * 9, "H"),
])
def test_zbar_decodes_utf8_text(tmp_path: Path, text: str, ecc: str) -> None:
    """Non-ASCII text goes as UTF-8 bytes behind an ECI (12 bits: one byte less capacity)."""
    zbarimg = find_zbarimg()
    matrix = qr.encode(text, ecc)
    level = "LMQH".index(ecc)
    size_in_bytes = len(text.encode("utf-8"))
    expected = min(v for v, caps in CAPACITY.items() if caps[level] - 1 >= size_in_bytes)
    assert version_of(matrix) == expected
    assert decode(zbarimg, matrix, tmp_path) == text


@pytest.mark.parametrize("mask", range(8))
def test_every_mask_decodes_and_is_named_in_the_format_bits(tmp_path: Path, mask: int) -> None:
    """Each of the 8 masks, forced, gives a readable code whose format bits name it."""
    zbarimg = find_zbarimg()
    text = filler(80, seed=mask)  # version 7 at Q: version information is present too
    matrix = qr.encode(text, "Q", mask=mask)
    assert read_format(matrix) == ("Q", mask)
    assert decode(zbarimg, matrix, tmp_path) == text


@pytest.mark.parametrize("version", range(1, 11))
def test_smallest_version_that_fits_is_chosen(version: int) -> None:
    """A byte past a version's capacity moves to the next one; past version 10, an error."""
    for ecc, capacity in zip("LMQH", CAPACITY[version], strict=True):
        assert version_of(qr.encode("x" * capacity, ecc)) == version
        if version < 10:
            assert version_of(qr.encode("x" * (capacity + 1), ecc)) == version + 1
        else:
            with pytest.raises(ValueError, match=rf"{capacity + 1} bytes.*level {ecc}.*{capacity}"):
                qr.encode("x" * (capacity + 1), ecc)


@pytest.mark.parametrize("version", range(1, 10))
def test_non_ascii_text_pays_for_its_eci_header(version: int) -> None:
    """UTF-8 text with its 12-bit ECI fits one byte less than ASCII does, then moves up."""
    capacity = CAPACITY[version][1]
    fits = "é" + "x" * (capacity - 3)  # capacity - 1 bytes
    assert version_of(qr.encode(fits, "M")) == version
    assert version_of(qr.encode(fits + "x", "M")) == version + 1


SPEC_MASKS = (
    lambda i, j: (i + j) % 2 == 0, lambda i, j: i % 2 == 0, lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0, lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0, lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)


def read_version1_codewords(matrix: Matrix) -> list[int]:
    """All 26 codewords of a version-1 code: unmasked, read along the zigzag from bottom right."""
    n = len(matrix)
    assert n == 21
    mask = SPEC_MASKS[read_format(matrix)[1]]

    def is_function(r: int, c: int) -> bool:
        near_finder = (r < 9 and c < 9) or (r < 9 and c >= n - 8) or (r >= n - 8 and c < 9)
        return near_finder or r == 6 or c == 6

    bits: list[int] = []
    for strip, right in enumerate([20, 18, 16, 14, 12, 10, 8, 5, 3, 1]):
        rows = range(n - 1, -1, -1) if strip % 2 == 0 else range(n)
        for r in rows:
            for c in (right, right - 1):
                if not is_function(r, c):
                    bits.append(int(matrix[r][c] != mask(r, c)))
    return [int("".join(map(str, bits[k:k + 8])), 2) for k in range(0, 26 * 8, 8)]


@pytest.mark.parametrize("mask", range(8))
def test_data_codewords_of_a_short_text(mask: int) -> None:
    """'a' at M: byte mode, count 1, 0x61, terminator, then 0xEC/0x11 padding, in zigzag order."""
    codewords = read_version1_codewords(qr.encode("a", "M", mask=mask))
    assert codewords[:16] == [0x40, 0x16, 0x10] + [0xEC, 0x11] * 6 + [0xEC]


def test_codeword_counts_match_the_spec() -> None:
    """The layout leaves exactly the spec's number of codewords for data + error correction."""
    assert tuple(qr.total_codewords(v) for v in range(1, 11)) == TOTAL_CODEWORDS


def test_unknown_level_is_rejected() -> None:
    """An ECC level other than L, M, Q, H is a clear ValueError."""
    with pytest.raises(ValueError, match="error-correction level 'X'"):
        qr.encode(URL, "X")


@pytest.mark.parametrize("text", ["", "a", URL, filler(150, seed=1), filler(213, seed=2)])
def test_fixed_patterns(text: str) -> None:
    """Finders with separators, timing lines, alignment centres and the dark module sit in place."""
    matrix = qr.encode(text, "M")
    n, version = len(matrix), version_of(matrix)
    for top, left in ((0, 0), (0, n - 7), (n - 7, 0)):
        for r in range(-1, 8):
            for c in range(-1, 8):
                if not (0 <= top + r < n and 0 <= left + c < n):
                    continue
                ring = max(abs(r - 3), abs(c - 3))
                assert matrix[top + r][left + c] == (ring in (0, 1, 3)), (top, left, r, c)
    for i in range(8, n - 8):
        assert matrix[6][i] == matrix[i][6] == (i % 2 == 0), f"timing at {i}"
    assert matrix[n - 8][8], "the dark module is light"
    if version >= 2:  # the alignment pattern nearest the bottom-right corner
        centre = n - 7
        assert matrix[centre][centre] and not matrix[centre - 1][centre]
        assert matrix[centre - 2][centre - 2] and matrix[centre + 2][centre + 2]


@pytest.mark.parametrize("ecc", "LMQH")
def test_format_bits_decode_to_level_and_chosen_mask(ecc: str) -> None:
    """Format bits BCH-decode to the level asked for and to the mask whose penalty is lowest."""
    matrix = qr.encode(URL, ecc)
    level, mask = read_format(matrix)
    assert level == ecc
    forced = [qr.encode(URL, ecc, mask=m) for m in range(8)]
    assert matrix == forced[mask]
    assert qr.penalty(matrix) == min(qr.penalty(m) for m in forced)


def test_format_bits_match_known_values() -> None:
    """Two format words from the spec's table, and a version word, come out exactly."""
    assert qr.format_bits("M", 0) == 0b101010000010010
    assert qr.format_bits("L", 0) == 0b111011111000100
    assert qr.version_bits(7) == 0b000111110010010100


@pytest.mark.parametrize("version,length", [(6, 100), (7, 110), (10, 200)])
def test_version_information_from_version_7(version: int, length: int) -> None:
    """Versions 7+ carry both BCH-valid version blocks; below 7 those modules hold data."""
    matrix = qr.encode(filler(length, seed=3), "M")
    assert version_of(matrix) == version
    if version >= 7:
        assert read_version(matrix) == version
    else:
        with pytest.raises(AssertionError):
            read_version(matrix)


def test_penalty_rules_on_small_matrices() -> None:
    """Runs, 2x2 blocks, finder look-alikes and the dark ratio each score as the spec says."""
    # All one colour: 22 runs of 11 (3 + 6 each), 100 2x2 blocks (3 each), 0% or 100% dark
    # (ten 5% steps from 50%, 10 each).
    for colour in (False, True):
        assert qr.penalty([[colour] * 11 for _ in range(11)]) == 22 * 9 + 100 * 3 + 100
    checker = [[(r + c) % 2 == 0 for c in range(11)] for r in range(11)]
    assert qr.penalty(checker) == 0  # 61 of 121 dark: 50.4%, less than one 5% step
    # Row 0 becomes 1011101 0000: one finder look-alike (40); its runs are under 5, columns
    # still alternate below it, and 60 of 121 are dark.
    checker[0] = [c in (0, 2, 3, 4, 6) for c in range(11)]
    assert qr.penalty(checker) == 40
    checker[0].reverse()  # 0000 1011101: the mirrored look-alike counts too
    assert qr.penalty(checker) == 40


def terminal_to_ink(art: str) -> list[list[bool]]:
    """Back from half blocks to rows of 'painted' cells, two per text line."""
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    rows: list[list[bool]] = []
    for line in art.split("\n"):
        rows.append([top[ch] for ch in line])
        rows.append([bottom[ch] for ch in line])
    return rows


# --- A small terminal model: what a screen shows of the art, in a given colour scheme.
RGB = tuple[int, int, int]
# xterm's defaults for the 16 base colours (themes redefine these).
BASE_COLOURS: tuple[RGB, ...] = (
    (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205),
    (0, 205, 205), (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0),
    (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
)


def xterm_colour(index: int) -> RGB:
    """xterm's 256-colour palette: the base colours, a 6x6x6 cube, a 24-step grey ramp."""
    assert 0 <= index < 256, index
    if index < 16:
        return BASE_COLOURS[index]
    if index < 232:
        steps = (0, 95, 135, 175, 215, 255)
        cube = index - 16
        return steps[cube // 36], steps[cube // 6 % 6], steps[cube % 6]
    grey = 8 + 10 * (index - 232)
    return grey, grey, grey


@dataclass(frozen=True)
class Scheme:
    """A terminal's colours: its DEFAULT foreground and background (text without colour
    escapes, and the screen around it), and the palette entries its theme redefines."""

    name: str
    foreground: RGB
    background: RGB
    palette: Mapping[int, RGB] = field(default_factory=dict)

    def colour(self, index: int) -> RGB:
        return self.palette.get(index, xterm_colour(index))


DARK = Scheme("dark", foreground=(229, 229, 229), background=(0, 0, 0))  # light text on black
LIGHT = Scheme("light", foreground=(0, 0, 0), background=(255, 255, 255))  # dark text on white
# A themed light terminal: black and white swapped among the base colours (as gruvbox light
# does), and 16-21 redefined as base16-shell does. Explicit colours must not depend on these.
THEMED_LIGHT = Scheme("themed light", foreground=(60, 56, 54), background=(251, 241, 199),
                      palette={0: (251, 241, 199), 7: (102, 92, 84), 8: (146, 131, 116),
                               15: (60, 56, 54), 16: (175, 58, 3), 17: (157, 0, 6),
                               18: (235, 219, 178), 19: (213, 196, 161), 20: (124, 111, 100),
                               21: (80, 73, 69)})
SCHEMES = [DARK, LIGHT, THEMED_LIGHT]
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_HALVES = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}


class Screen:
    """Interprets SGR colour escapes over a scheme's defaults. As on a real terminal the
    colours set stay set across lines until reset, and (back-colour erase) the rest of a
    line shows the background in force at its end. Any other escape fails the test."""

    def __init__(self, scheme: Scheme) -> None:
        self.scheme = scheme
        self.fg: RGB | None = None  # None: the scheme's default
        self.bg: RGB | None = None

    def background(self) -> RGB:
        return self.scheme.background if self.bg is None else self.bg

    def sgr(self, params: str) -> None:
        codes = [int(p) if p else 0 for p in params.split(";")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.fg = self.bg = None
            elif code in (39, 49):
                self.fg, self.bg = (None, self.bg) if code == 39 else (self.fg, None)
            elif 30 <= code <= 37 or 90 <= code <= 97:
                self.fg = self.scheme.colour(code - 30 if code < 90 else code - 82)
            elif 40 <= code <= 47 or 100 <= code <= 107:
                self.bg = self.scheme.colour(code - 40 if code < 100 else code - 92)
            elif code in (38, 48) and codes[i + 1:i + 2] == [5]:
                colour = self.scheme.colour(codes[i + 2])
                self.fg, self.bg = (colour, self.bg) if code == 38 else (self.fg, colour)
                i += 2
            else:
                raise AssertionError(f"SGR {code} in {params!r} is not modelled")
            i += 1

    def line(self, text: str) -> tuple[list[RGB], list[RGB], RGB]:
        """A text line's upper and lower cell halves, and the background at its end."""
        upper: list[RGB] = []
        lower: list[RGB] = []
        for piece in re.split(r"(\x1b\[[0-9;]*m)", text):
            if sgr := _SGR.fullmatch(piece):
                self.sgr(sgr.group(1))
                continue
            assert "\x1b" not in piece, f"an escape that is not SGR: {piece!r}"
            fg = self.scheme.foreground if self.fg is None else self.fg
            for char in piece:
                top, low = _HALVES[char]
                upper.append(fg if top else self.background())
                lower.append(fg if low else self.background())
        return upper, lower, self.background()


def grey(colour: RGB) -> int:
    """Luminance (Rec. 709), as a camera sees it in grey."""
    red, green, blue = colour
    return round(0.2126 * red + 0.7152 * green + 0.0722 * blue)


def screenshot(art: str, scheme: Scheme, margin: int = 3) -> list[list[int]]:
    """Grey levels of the screen showing `art` from a line's start, one per module (half a
    character cell), with `margin` modules of the terminal's own background around it."""
    screen = Screen(scheme)
    lines = [screen.line(text) for text in art.split("\n")]
    width = max(len(upper) for upper, _, _ in lines) + 2 * margin
    edge = [scheme.background] * margin
    rows = [[scheme.background] * width for _ in range(margin)]
    for upper, lower, end in lines:
        for half in (upper, lower):
            rows.append(edge + half + [end] * (width - margin - len(half)))
    rows += [[screen.background()] * width for _ in range(margin)]
    return [[grey(colour) for colour in row] for row in rows]


def visible(art: str) -> str:
    """The art without its colour escapes."""
    return _SGR.sub("", art)


@pytest.mark.parametrize("quiet", [0, 1, 2, 4])
@pytest.mark.parametrize("invert", [True, False])
def test_terminal_art_layout(quiet: int, invert: bool) -> None:
    """Two module rows per line, the quiet zone all around, only half-block characters."""
    matrix = qr.encode(URL, "M")
    art = qr.to_terminal(matrix, quiet=quiet, invert=invert)
    width = len(matrix) + 2 * quiet
    lines = art.split("\n")
    assert len(lines) == (width + 1) // 2
    assert all(len(line) == width for line in lines)
    assert set(art) <= {"▀", "▄", "█", " ", "\n"}
    ink = terminal_to_ink(art)
    # The default paints LIGHT modules (dark-on-light on a dark terminal); invert=False the dark.
    light_is_ink = invert
    expect = [[light_is_ink] * width for _ in range(width)]
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            expect[quiet + r][quiet + c] = dark != light_is_ink
    assert ink[:width] == expect
    assert not any(cell for row in ink[width:] for cell in row), "padding is not background"


@pytest.mark.parametrize("quiet", [0, 1, 2, 4])
@pytest.mark.parametrize("invert", [True, False])
def test_colour_art_layout(quiet: int, invert: bool) -> None:
    """In colour each line is white on near-black (xterm 231 on 232), glyphs on the light
    modules, and ends in a reset; the padding half line is light too; `invert` is moot."""
    matrix = qr.encode(URL, "M")
    art = qr.to_terminal(matrix, quiet=quiet, invert=invert, colour=True)
    width = len(matrix) + 2 * quiet
    lines = art.split("\n")
    assert len(lines) == (width + 1) // 2
    for line in lines:
        assert line.startswith("\x1b[38;5;231;48;5;232m") and line.endswith("\x1b[0m")
        assert _SGR.findall(line) == ["38;5;231;48;5;232", "0"]
    shown = visible(art)
    assert set(shown) <= {"▀", "▄", "█", " ", "\n"}
    ink = terminal_to_ink(shown)
    assert ink[:width] == terminal_to_ink(qr.to_terminal(matrix, quiet=quiet))[:width]
    assert all(all(row) for row in ink[width:]), "padding is not light"


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
@pytest.mark.parametrize("text", [URL, URL + "index.html", filler(150, seed=4)],
                         ids=["v2", "v3", "v8"])
def test_colour_art_scans_on_dark_and_light_terminals(
        tmp_path: Path, scheme: Scheme, text: str) -> None:
    """The coloured art, shown by a dark terminal, a light one and a themed light one (its
    background all around it), is a code zbarimg decodes: the same on each."""
    zbarimg = find_zbarimg()
    art = qr.to_terminal(qr.encode(text), colour=True)
    assert decode_greys(zbarimg, screenshot(art, scheme), tmp_path) == text


@pytest.mark.parametrize("invert,scheme", [(True, DARK), (False, LIGHT)],
                         ids=["light-on-dark", "dark-on-light"])
def test_plain_art_scans_in_its_own_scheme(
        tmp_path: Path, invert: bool, scheme: Scheme) -> None:
    """Plain art (no escapes) takes the terminal's colours: the default one reads on a dark
    terminal, `invert=False` on a light one."""
    zbarimg = find_zbarimg()
    text = URL + "index.html"
    art = qr.to_terminal(qr.encode(text), invert=invert)
    assert decode_greys(zbarimg, screenshot(art, scheme), tmp_path) == text


def test_the_terminal_model_sees_what_it_is_told() -> None:
    """The model itself: default colours, the base and 256 palettes, a theme's entries,
    colours carried over a line end, and the margin after a line in its end background."""
    screen = Screen(THEMED_LIGHT)
    upper, lower, end = screen.line("▀\x1b[30;107m▄\x1b[38;5;16;48;5;231m█\x1b[39m \x1b[0m")
    assert upper == [THEMED_LIGHT.foreground, THEMED_LIGHT.palette[15],
                     THEMED_LIGHT.palette[16], (255, 255, 255)]
    assert lower == [THEMED_LIGHT.background, THEMED_LIGHT.palette[0],
                     THEMED_LIGHT.palette[16], (255, 255, 255)]
    assert end == THEMED_LIGHT.background
    screen.sgr("48;5;232")
    assert screen.line("") == ([], [], (8, 8, 8))  # still set on the next line
    assert xterm_colour(196) == (255, 0, 0) and xterm_colour(255) == (238, 238, 238)
    with pytest.raises(AssertionError, match="SGR 7"):
        screen.sgr("7")
    assert screenshot("\x1b[48;5;232m \n", LIGHT, margin=1)[1:5] == [
        [255, 8, 8], [255, 8, 8], [255, 8, 8], [255, 8, 8]]


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("environ,colour", [
    ({}, True),
    ({"TERM": "xterm-256color"}, True),
    ({"TERM": "linux", "COLORTERM": "truecolor"}, True),
    ({"NO_COLOR": "1"}, False),
    ({"NO_COLOR": "0"}, False),  # any value but the empty string
    ({"NO_COLOR": ""}, True),
    ({"TERM": "dumb"}, False),
    ({"TERM": "dumb", "NO_COLOR": ""}, False),
])
def test_colour_on_a_terminal_unless_no_color_or_dumb(
        environ: dict[str, str], colour: bool) -> None:
    assert qr.colour_allowed(Tty(), environ) is colour
    assert qr.colour_allowed(io.StringIO(), environ) is False  # not a terminal: never


class Broken(Tty):
    """A stream whose file descriptor is gone."""

    def isatty(self) -> bool:
        raise OSError(9, "Bad file descriptor")


def test_no_colour_without_a_usable_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stream (sys.stderr can be None), a closed or broken one; the environment defaults
    to os.environ."""
    closed = io.StringIO()
    closed.close()  # its isatty() raises ValueError
    assert qr.colour_allowed(None, {}) is False
    assert qr.colour_allowed(closed, {}) is False
    assert qr.colour_allowed(Broken(), {}) is False
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert qr.colour_allowed(Tty()) is True
    monkeypatch.setenv("NO_COLOR", "yes")
    assert qr.colour_allowed(Tty()) is False


@pytest.mark.parametrize("value,light", [
    ("15;0", False), ("0;15", True), ("0;7", True), ("7;0", False), ("0;default;15", True),
    ("15;default;0", False), ("0;8", False), ("default;default", False), ("", False),
    (None, False),
])
def test_light_background_from_colorfgbg(
        monkeypatch: pytest.MonkeyPatch, value: str | None, light: bool) -> None:
    environ = {} if value is None else {"COLORFGBG": value}
    assert qr.light_background(environ) is light
    if value is None:
        monkeypatch.delenv("COLORFGBG", raising=False)
    else:
        monkeypatch.setenv("COLORFGBG", value)
    assert qr.light_background() is light


@pytest.mark.parametrize("stream,environ,form", [
    (Tty(), {"TERM": "xterm-256color"}, "colour"),
    (Tty(), {"TERM": "xterm-256color", "COLORFGBG": "0;15"}, "colour"),
    (io.StringIO(), {}, "light-on-dark"),
    (Tty(), {"NO_COLOR": "1"}, "light-on-dark"),
    (Tty(), {"TERM": "dumb", "COLORFGBG": "15;0"}, "light-on-dark"),
    (Tty(), {"NO_COLOR": "1", "COLORFGBG": "0;15"}, "dark-on-light"),
    (io.StringIO(), {"COLORFGBG": "0;default;7"}, "dark-on-light"),
    (None, {}, "light-on-dark"),
], ids=["tty", "tty,light", "pipe", "tty,NO_COLOR", "dumb,dark", "NO_COLOR,light",
        "pipe,light", "no-stream"])
def test_for_stream_picks_the_drawing(
        tmp_path: Path, stream: io.StringIO | None, environ: dict[str, str], form: str) -> None:
    """Colour on a terminal that takes it; else plain, light on dark unless COLORFGBG says
    the background is light; each decodes in the scheme it is meant for."""
    matrix = qr.encode(URL)
    art = qr.for_stream(matrix, stream, environ)
    expected = {"colour": qr.to_terminal(matrix, colour=True),
                "light-on-dark": qr.to_terminal(matrix),
                "dark-on-light": qr.to_terminal(matrix, invert=False)}[form]
    assert art == expected
    zbarimg = find_zbarimg()
    schemes = {"colour": SCHEMES, "light-on-dark": [DARK], "dark-on-light": [LIGHT]}[form]
    for scheme in schemes:
        assert decode_greys(zbarimg, screenshot(art, scheme), tmp_path) == URL, scheme.name
