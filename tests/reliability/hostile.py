"""Hostile inputs, generated: small to build and to hold, however big they claim to be."""

import gzip
import io
import zipfile

import zstandard

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_SHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_XLSX_PARTS = {
    "[Content_Types].xml": (
        f'{_XML}<Types xmlns="{_PKG}/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_SHEET_CT}.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        f'ContentType="{_SHEET_CT}.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
}


def _cell(ref: str, value: object) -> str:
    """A cell: a number, inline text, or ("=formula", cached value or None)."""
    if isinstance(value, tuple):
        formula, cached = value
        v = "" if cached is None else f"<v>{cached}</v>"
        return f'<c r="{ref}"><f>{formula}</f>{v}</c>'
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
    return f'<c r="{ref}"><v>{value}</v></c>'


def xlsx(rows: list[list[object]], merged: list[str] = ()) -> bytes:  # type: ignore[assignment]
    """A one-sheet workbook written by hand (no openpyxl in the venv); None leaves a cell empty."""
    xml_rows = []
    for r, row in enumerate(rows, start=1):
        cells = "".join(_cell(f"{chr(65 + c)}{r}", v) for c, v in enumerate(row) if v is not None)
        xml_rows.append(f'<row r="{r}">{cells}</row>')
    merge = (
        f'<mergeCells count="{len(merged)}">'
        + "".join(f'<mergeCell ref="{m}"/>' for m in merged)
        + "</mergeCells>"
        if merged
        else ""
    )
    sheet = (
        f'{_XML}<worksheet xmlns="{_MAIN}">'
        f"<sheetData>{''.join(xml_rows)}</sheetData>{merge}</worksheet>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in _XLSX_PARTS.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    return buf.getvalue()


def gzip_bomb(content_gb: int) -> bytes:
    """CSV that gzips 1000:1: one member holds the header, then one 64 MB member of rows repeated
    (gzip readers join members), so `content_gb` GB cost ~1 MB per GB and 0.2 s to build."""
    member = gzip.compress(b"0,0\n" * (16 * 2**20), compresslevel=9)
    return gzip.compress(b"a,b\n") + member * (content_gb * 16)


def zstd_bomb(content_gb: int) -> bytes:
    """zstd frames of 256 MB of zeros, 8 KB each: 32,000:1."""
    frame = zstandard.ZstdCompressor(level=19).compress(bytes(256 * 2**20))
    return frame * (content_gb * 4)


def nested_json(depth: int) -> str:
    """`{"a": {"a": ... 1 ...}}`, `depth` objects deep."""
    return '{"a": ' * depth + "1" + "}" * depth
