"""A small QR Code Model 2 encoder (ISO/IEC 18004) for the `--qr` start-up banner.

Scope is what a LAN URL needs: byte mode (UTF-8), versions 1-10, error correction L/M/Q/H.
`encode()` returns the module matrix (True = dark, no quiet zone); `to_terminal()` draws it
with half-block characters so a phone can scan it off the screen, and `for_stream()` picks the
drawing for where it goes: explicit colours on a terminal that takes them, plain text else.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from ..log import Stream, colour_allowed

Matrix = list[list[bool]]

MAX_VERSION = 10
_ECC_LEVELS = "LMQH"
_ECC_FORMAT_BITS = {"L": 0b01, "M": 0b00, "Q": 0b11, "H": 0b10}  # the spec's (odd) encoding

# Per version 1..10 and level L, M, Q, H: EC codewords per block, and the number of blocks.
# Block lengths follow from the total codeword count (derived from the layout below):
# data codewords are split as evenly as possible, the longer blocks last.
_EC_PER_BLOCK = (
    (7, 10, 13, 17), (10, 16, 22, 28), (15, 26, 18, 22), (20, 18, 26, 16), (26, 24, 18, 22),
    (18, 16, 24, 28), (20, 18, 18, 26), (24, 22, 22, 26), (30, 22, 20, 24), (18, 26, 24, 28),
)
_NUM_BLOCKS = (
    (1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 2, 2), (1, 2, 2, 4), (1, 2, 4, 4),
    (2, 4, 4, 4), (2, 4, 6, 5), (2, 4, 6, 6), (2, 5, 8, 8), (4, 5, 8, 8),
)
# Row/column centres of the alignment patterns, versions 1..10 (version 1 has none).
_ALIGNMENT = ((), (6, 18), (6, 22), (6, 26), (6, 30), (6, 34),
              (6, 22, 38), (6, 24, 42), (6, 26, 46), (6, 28, 50))
_FORMAT_GENERATOR = 0b10100110111  # BCH(15,5)
_FORMAT_XOR = 0b101010000010010  # keeps the format bits from ever being all zero
_VERSION_GENERATOR = 0b1111100100101  # BCH(18,6)
_PAD_BYTES = (0xEC, 0x11)

# --- GF(256) arithmetic with the QR primitive polynomial x^8 + x^4 + x^3 + x^2 + 1.


def _gf_tables() -> tuple[list[int], list[int]]:
    exp, log = [0] * 512, [0] * 256
    value = 1
    for power in range(255):
        exp[power], log[value] = value, power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    exp[255:510] = exp[:255]  # lets _gf_mul skip the "mod 255" on summed logarithms
    return exp, log


_EXP, _LOG = _gf_tables()


def _gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _rs_generator(degree: int) -> list[int]:
    """Coefficients (highest power first) of the product of (x - α^i) for i < degree."""
    poly = [1]
    for i in range(degree):
        shifted = poly + [0]  # poly * x ...
        for j, coef in enumerate(poly):
            shifted[j + 1] ^= _gf_mul(coef, _EXP[i])  # ... + poly * α^i (minus is plus here)
        poly = shifted
    return poly


def _rs_remainder(data: list[int], degree: int) -> list[int]:
    """EC codewords: remainder of data(x) * x^degree divided by the generator polynomial."""
    generator = _rs_generator(degree)
    rem = [0] * degree
    for byte in data:
        factor = byte ^ rem[0]
        rem = rem[1:] + [0]
        for j in range(degree):
            rem[j] ^= _gf_mul(generator[j + 1], factor)
    return rem


def _bch_remainder(value: int, generator: int) -> int:
    """Remainder of value * x^deg(generator) divided by generator, over GF(2)."""
    degree = generator.bit_length() - 1
    rem = value << degree
    while rem.bit_length() > degree:
        rem ^= generator << (rem.bit_length() - 1 - degree)
    return rem


def format_bits(ecc: str, mask: int) -> int:
    """The 15 format bits (ECC level and mask, BCH-protected, XOR-masked); MSB is bit 14."""
    data = _ECC_FORMAT_BITS[ecc] << 3 | mask
    return (data << 10 | _bch_remainder(data, _FORMAT_GENERATOR)) ^ _FORMAT_XOR


def version_bits(version: int) -> int:
    """The 18 version-information bits (versions 7 and up)."""
    return version << 12 | _bch_remainder(version, _VERSION_GENERATOR)


# --- The fixed layout: function patterns, and where the data modules go.
class _Grid:
    """The matrix being built, plus which modules are function patterns (not data)."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.size = 17 + 4 * version
        self.dark = [[False] * self.size for _ in range(self.size)]
        self.reserved = [[False] * self.size for _ in range(self.size)]

    def put(self, row: int, col: int, dark: bool) -> None:
        self.dark[row][col] = dark
        self.reserved[row][col] = True

    def copy(self) -> _Grid:
        twin = _Grid(self.version)
        twin.dark = [row[:] for row in self.dark]
        twin.reserved = self.reserved  # the layout is shared; only module colours differ
        return twin


def _draw_finders(grid: _Grid) -> None:
    # Each finder is concentric squares around its centre (ring distance 0-1 dark, 2 light,
    # 3 dark), plus ring 4: the light separator, clipped where it would leave the matrix.
    last = grid.size - 1
    for centre_row, centre_col in ((3, 3), (3, last - 3), (last - 3, 3)):
        for dr in range(-4, 5):
            for dc in range(-4, 5):
                row, col = centre_row + dr, centre_col + dc
                if 0 <= row <= last and 0 <= col <= last:
                    grid.put(row, col, max(abs(dr), abs(dc)) not in (2, 4))


def _draw_timing_and_alignment(grid: _Grid) -> None:
    centres = _ALIGNMENT[grid.version - 1]
    for row in centres:
        for col in centres:
            if grid.reserved[row][col]:  # the three pairs that would overlap a finder
                continue
            for dr in range(-2, 3):
                for dc in range(-2, 3):
                    grid.put(row + dr, col + dc, max(abs(dr), abs(dc)) != 1)
    # Timing after alignment (so the finder test above is not fooled); where they cross,
    # both patterns agree on the colour.
    for i in range(8, grid.size - 8):
        grid.put(6, i, i % 2 == 0)
        grid.put(i, 6, i % 2 == 0)


def _draw_format(grid: _Grid, bits: int) -> None:
    """Both copies of the format bits, and the always-dark module next to the second copy."""
    size = grid.size
    for i in range(15):
        dark = bool(bits >> i & 1)
        # First copy, around the top-left finder: up column 8, then left along row 8,
        # stepping over the timing patterns at row/column 6.
        if i < 8:
            grid.put(i if i < 6 else i + 1, 8, dark)
        else:
            grid.put(8, 14 - i if i > 8 else 7, dark)
        # Second copy, split between the other two finders.
        if i < 8:
            grid.put(8, size - 1 - i, dark)
        else:
            grid.put(size - 15 + i, 8, dark)
    grid.put(size - 8, 8, True)


def _draw_version(grid: _Grid) -> None:
    if grid.version < 7:
        return
    bits = version_bits(grid.version)
    for i in range(18):
        # 6x3 block left of the top-right finder; its transpose above the bottom-left one.
        a, b = grid.size - 11 + i % 3, i // 3
        grid.put(b, a, bool(bits >> i & 1))
        grid.put(a, b, bool(bits >> i & 1))


def _layout(version: int) -> _Grid:
    grid = _Grid(version)
    _draw_finders(grid)
    _draw_timing_and_alignment(grid)
    _draw_format(grid, 0)  # reserves the area; the real bits depend on the mask chosen later
    _draw_version(grid)
    return grid


def _data_positions(grid: _Grid) -> list[tuple[int, int]]:
    """Data module order: two-column strips from the right, alternately upwards and downwards."""
    order: list[tuple[int, int]] = []
    right, upward = grid.size - 1, True
    while right > 0:
        if right == 6:  # the vertical timing column takes no data: shift the strip left by one
            right = 5
        rows = range(grid.size - 1, -1, -1) if upward else range(grid.size)
        for row in rows:
            for col in (right, right - 1):
                if not grid.reserved[row][col]:
                    order.append((row, col))
        right, upward = right - 2, not upward
    return order


def total_codewords(version: int) -> int:
    """Data + EC codewords in a version: its free modules over 8 (leftover bits stay zero)."""
    return len(_data_positions(_layout(version))) // 8


def data_capacity(version: int, ecc: str) -> int:
    """Data codewords (before error correction) of a version at an ECC level."""
    level = _ECC_LEVELS.index(ecc)
    ec_words = _EC_PER_BLOCK[version - 1][level] * _NUM_BLOCKS[version - 1][level]
    return total_codewords(version) - ec_words


def _count_bits(version: int) -> int:
    return 8 if version < 10 else 16  # byte-mode character count width


def _header_bits(payload: bytes, version: int) -> int:
    """Bits before the payload: [ECI 26 header,] byte-mode indicator, character count."""
    return (0 if payload.isascii() else 12) + 4 + _count_bits(version)


# --- Encoding the payload into codewords.
def _data_codewords(payload: bytes, version: int, capacity: int) -> list[int]:
    bits: list[int] = []

    def put(value: int, width: int) -> None:
        bits.extend(value >> i & 1 for i in reversed(range(width)))

    if not payload.isascii():
        # ECI 26 declares the bytes UTF-8; without it readers may guess (zbar reads short
        # Latin text as Shift JIS). Plain ASCII needs no declaration, so it goes without.
        put(0b0111, 4)
        put(26, 8)
    put(0b0100, 4)  # byte mode
    put(len(payload), _count_bits(version))
    for byte in payload:
        put(byte, 8)
    put(0, min(4, capacity * 8 - len(bits)))  # terminator, shortened if space runs out
    put(0, -len(bits) % 8)
    words = [int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8)]
    words += [_PAD_BYTES[i % 2] for i in range(capacity - len(words))]
    return words


def _codeword_sequence(data: list[int], version: int, ecc: str) -> list[int]:
    """Splits data into blocks, appends each block's RS codewords, and interleaves them."""
    level = _ECC_LEVELS.index(ecc)
    count, ec_len = _NUM_BLOCKS[version - 1][level], _EC_PER_BLOCK[version - 1][level]
    short_len, long_count = divmod(len(data), count)
    blocks: list[list[int]] = []
    start = 0
    for index in range(count):
        length = short_len + int(index >= count - long_count)
        blocks.append(data[start:start + length])
        start += length
    ec_blocks = [_rs_remainder(block, ec_len) for block in blocks]
    # Interleaving spreads a burst of damage (a smudge) over several blocks.
    return _interleave(blocks) + _interleave(ec_blocks)


def _interleave(blocks: list[list[int]]) -> list[int]:
    longest = max(len(block) for block in blocks)
    return [block[i] for i in range(longest) for block in blocks if i < len(block)]


# --- Masking and its penalty score.
_MASKS: tuple[Callable[[int, int], bool], ...] = (  # (row, col) -> flip this module?
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: r * c % 2 + r * c % 3 == 0,
    lambda r, c: (r * c % 2 + r * c % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + r * c % 3) % 2 == 0,
)
_FINDER_LIKE = re.compile("(?=10111010000|00001011101)")  # 1:1:3:1:1 with 4 light on a side
_RUN = re.compile("0{5,}|1{5,}")


def penalty(matrix: Matrix) -> int:
    """The spec's mask penalty: long runs, 2x2 blocks, finder look-alikes, dark/light balance."""
    lines = ["".join("1" if m else "0" for m in row) for row in matrix]
    lines += ["".join(col) for col in zip(*lines, strict=True)]
    score = sum(len(run.group()) - 2 for line in lines for run in _RUN.finditer(line))
    score += sum(40 * len(_FINDER_LIKE.findall(line)) for line in lines)
    size = len(matrix)
    for r in range(size - 1):
        for c in range(size - 1):
            if matrix[r][c] == matrix[r][c + 1] == matrix[r + 1][c] == matrix[r + 1][c + 1]:
                score += 3
    dark = sum(map(sum, matrix))
    score += 10 * (abs(dark * 20 - size * size * 10) // (size * size))  # per 5% off 50%
    return score


def _masked(grid: _Grid, ecc: str, mask: int) -> Matrix:
    masked = grid.copy()
    rule = _MASKS[mask]
    for row in range(grid.size):
        for col in range(grid.size):
            if not grid.reserved[row][col] and rule(row, col):
                masked.dark[row][col] = not masked.dark[row][col]
    _draw_format(masked, format_bits(ecc, mask))
    return masked.dark


def encode(text: str, ecc: str = "M", *, mask: int | None = None) -> Matrix:
    """QR matrix of `text` (byte mode, UTF-8 with an ECI if not ASCII), smallest version 1-10.

    `mask` forces one of the 8 masks (for tests); by default the lowest-penalty one is used.
    """
    if ecc not in _ECC_FORMAT_BITS:
        raise ValueError(f"unknown QR error-correction level {ecc!r}; use one of L, M, Q, H")
    payload = text.encode("utf-8")
    for version in range(1, MAX_VERSION + 1):
        capacity = data_capacity(version, ecc)
        if _header_bits(payload, version) + 8 * len(payload) <= 8 * capacity:
            break
    else:
        most = (8 * data_capacity(MAX_VERSION, ecc) - _header_bits(payload, MAX_VERSION)) // 8
        raise ValueError(f"text is {len(payload)} bytes in UTF-8; a QR code of version "
                         f"1-{MAX_VERSION} at level {ecc} holds at most {most}")
    grid = _layout(version)
    codewords = _codeword_sequence(_data_codewords(payload, version, capacity), version, ecc)
    for index, (row, col) in enumerate(_data_positions(grid)):
        if index < 8 * len(codewords):  # remainder bits after the last codeword stay light
            grid.dark[row][col] = bool(codewords[index // 8] >> (7 - index % 8) & 1)
    candidates = range(8) if mask is None else [mask]
    return min((_masked(grid, ecc, m) for m in candidates), key=penalty)


# --- Terminal rendering.
_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
# Explicit colours from xterm's 256-colour palette: 231 is the colour cube's white (#ffffff),
# 232 the grey ramp's first step (#080808). Not the 16 base colours, which terminal themes
# redefine (some light themes even swap black and white), nor 16-21, which base16-shell
# redefines (the cube's black, 16, among them). Glyphs paint the light modules, the background
# shows the dark ones: the Linux console, which maps these to its 16 colours, then shows bright
# white on black (the other way round it would show black on grey).
_PAINT = "\x1b[38;5;231;48;5;232m"
_RESET = "\x1b[0m"


def to_terminal(matrix: Matrix, *, quiet: int = 2, invert: bool = True,
                colour: bool = False) -> str:
    """The matrix as text, two module rows per line (upper/lower half blocks), quiet zone added.

    `colour=True` sets the colours itself, so the code looks the same, dark on light, on any
    terminal: each line starts with an SGR escape (white glyphs for the light modules and the
    quiet zone, a near-black background for the dark modules; see `_PAINT`) and ends with a
    reset. `invert` does not apply then.

    Without colour (the default) the glyphs are painted in the terminal's own foreground colour
    and spaces show its background. Scanners want dark modules on a light field, and most
    terminals are light-on-dark, so by default (`invert=True`) the glyphs draw the LIGHT modules
    and the quiet zone, and the dark modules are left as background: a dark-on-light terminal
    shows it inverted, which many scanners cannot read; pass `invert=False` there. Plain
    characters only, so it also survives logs and `less`.
    """
    width = len(matrix) + 2 * quiet
    blank = [False] * width
    rows = [blank] * quiet + [[False] * quiet + row + [False] * quiet for row in matrix]
    rows += [blank] * quiet
    light_is_ink = colour or invert
    ink = [[cell != light_is_ink for cell in row] for row in rows]
    if len(ink) % 2:
        # A half line below the code: the terminal's background, or in colour more quiet zone.
        ink.append([colour] * width)
    glyph = _HALF_BLOCKS.__getitem__
    pairs = zip(ink[::2], ink[1::2], strict=True)
    lines = ["".join(map(glyph, zip(top, low, strict=True))) for top, low in pairs]
    if colour:  # reset at each line end: no colour runs on into the next line or the margin
        lines = [f"{_PAINT}{line}{_RESET}" for line in lines]
    return "\n".join(lines)


def light_background(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the terminal says its background is light: COLORFGBG (set by rxvt, Konsole and
    a few others, "15;0" or "0;default;15") names the background colour last, and 7 or 15 is
    white. Unset or anything else: not known to be light."""
    env = os.environ if environ is None else environ
    return env.get("COLORFGBG", "").rpartition(";")[2] in ("7", "15")


def for_stream(matrix: Matrix, stream: Stream | None,
               environ: Mapping[str, str] | None = None) -> str:
    """The drawing for `stream`: in colour where `colour_allowed` (it then reads on light and
    dark terminals alike); else plain, light on dark (for the usual dark terminal) unless
    COLORFGBG says the background is light, then dark on light."""
    if colour_allowed(stream, environ):
        return to_terminal(matrix, colour=True)
    return to_terminal(matrix, invert=not light_background(environ))
