#!/usr/bin/env bash
# Rebuilds the font subsets embedded in prescription PDFs (src/clinical/pdf.rs) from Debian's
# packages. Not run by CI (it downloads ~57 MB); run it to change the coverage, then commit.
#
#   DejaVuSans-subset.ttf        DejaVu Sans 2.37 (fonts-dejavu-core 2.37-6): Latin with every
#                                extension (Vietnamese included), Greek, Cyrillic, punctuation,
#                                currency, letter-like symbols, arrows, mathematical operators
#                                (≥ ≤ ±), geometric shapes, U+FFFD.
#   NotoSansCJKsc-subset.otf     Noto Sans CJK SC (fonts-noto-cjk 1:20220127+repack1-1, face 2
#                                of NotoSansCJK-Regular.ttc): CJK punctuation, kana, full-width
#                                forms, and the ideographs of GB 2312, JIS X 0208 and Big5
#                                level 1 plus the 2,350 Hangul syllables of KS X 1001
#                                (12,713 characters): the names a clinic is likely to print.
#
# Needs: apt-get (download only), dpkg-deb, python3 with fonttools 4.68.0 (`pip install
# fonttools==4.68.0`). The PDF embeds only the glyphs a page uses (printpdf subsets again).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download fonts-dejavu-core=2.37-6 'fonts-noto-cjk=1:20220127+repack1-1' >/dev/null
for deb in ./*.deb; do dpkg-deb -x "$deb" root; done

pyftsubset root/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
    --unicodes="U+0020-007E,U+00A0-052F,U+1E00-1EFF,U+2000-206F,U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2200-22FF,U+25A0-25FF,U+FFFD" \
    --layout-features='*' --no-hinting --output-file="$here/DejaVuSans-subset.ttf"

python3 - >cjk.txt <<'PY'
chars = set()
def decode(encoding, leads, trails):
    for a in leads:
        for b in trails:
            try:
                c = bytes([a, b]).decode(encoding)
            except UnicodeDecodeError:
                continue
            if len(c) == 1:
                chars.add(ord(c))
decode("gb2312", range(0xB0, 0xF8), range(0xA1, 0xFF))   # GB 2312 hanzi, levels 1 and 2
decode("euc_jp", range(0xB0, 0xF5), range(0xA1, 0xFF))   # JIS X 0208 kanji, levels 1 and 2
decode("euc_kr", range(0xB0, 0xC9), range(0xA1, 0xFF))   # KS X 1001 Hangul syllables
decode("big5", range(0xA4, 0xC7), [*range(0x40, 0x7F), *range(0xA1, 0xFF)])  # Big5 level 1
print(",".join("U+%04X" % c for c in sorted(chars)))
PY
pyftsubset root/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc --font-number=2 \
    --unicodes="U+3000-30FF,U+FF00-FFEF,$(cat cjk.txt)" \
    --layout-features='' --no-hinting --output-file="$here/NotoSansCJKsc-subset.otf"
ls -l "$here"/*.ttf "$here"/*.otf
