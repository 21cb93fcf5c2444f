"""qr.py: codes a real decoder (zbarimg) reads back, their fixed structure, terminal art."""
from __future__ import annotations

import random
import struct
import subprocess
import zlib
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


def write_png(matrix: Matrix, path: Path, scale: int = 4, quiet: int = 4) -> None:
    """A minimal 8-bit greyscale PNG of the matrix: dark modules black, quiet zone white."""
    n = len(matrix) + 2 * quiet
    raw = bytearray()
    for r in range(n):
        line = bytearray()
        for c in range(n):
            inside = quiet <= r < n - quiet and quiet <= c < n - quiet
            dark = inside and matrix[r - quiet][c - quiet]
            line += (b"\x00" if dark else b"\xff") * scale
        raw += (b"\x00" + line) * scale  # filter type 0 on each pixel row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", n * scale, n * scale, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def decode(zbarimg: str, matrix: Matrix, tmp_path: Path, name: str = "code.png") -> str:
    path = tmp_path / name
    write_png(matrix, path)
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


def test_terminal_art_scans(tmp_path: Path) -> None:
    """The default terminal art, read as a dark terminal shows it, is a code zbarimg decodes."""
    zbarimg = find_zbarimg()
    text = URL + "index.html"
    art = qr.to_terminal(qr.encode(text), quiet=2)
    shown = terminal_to_ink(art)[:len(art.split("\n")[0])]  # drop the padding half line
    # Spaces show the (dark) terminal background, which also surrounds the art: 3 dark modules.
    frame = 3
    width = len(shown) + 2 * frame
    shown_dark = [[True] * width for _ in range(frame)]
    shown_dark += [[True] * frame + [not cell for cell in row] + [True] * frame for row in shown]
    shown_dark += [[True] * width for _ in range(frame)]
    assert decode(zbarimg, shown_dark, tmp_path) == text
