// lakehouse.layers.dataset_name_from_filename, ported: the Dataset field's default must be the
// name the server would pick. tests/e2e/test_resumable_upload.py compares the two in Chromium.

// lakehouse.layers._SQL_KEYWORDS (names avoid them so user SQL stays unquoted)
const SQL_KEYWORDS = new Set([
  "all", "alter", "and", "any", "as", "asc", "between", "by", "case", "cast", "check", "column",
  "constraint", "create", "cross", "current_date", "current_time", "current_timestamp", "default",
  "delete", "desc", "distinct", "drop", "else", "end", "except", "exists", "false", "fetch",
  "for", "foreign", "from", "full", "group", "having", "in", "inner", "insert", "intersect",
  "into", "is", "join", "lateral", "left", "like", "limit", "natural", "not", "null", "offset",
  "on", "or", "order", "outer", "primary", "references", "right", "select", "set", "some",
  "table", "then", "to", "true", "union", "unique", "update", "user", "using", "values", "when",
  "where", "window", "with",
]);

function snake(text) {
  const ascii = text.replace(/ß/g, "ss").normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
  const lower = ascii.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
  return lower.replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
}

export function safeName(text, fallback) {
  let name = snake(text) || fallback;
  if (!/^[a-z]/.test(name)) name = `${fallback}_${name}`;
  name = name.slice(0, 60).replace(/_+$/, "");
  return SQL_KEYWORDS.has(name) ? `${name}_kw` : name;
}

export function datasetNameFromFilename(filename) {
  let base = filename.split(/[\\/]/).pop();
  for (;;) {
    const dot = base.lastIndexOf(".");
    const stem = base.slice(0, Math.max(dot, 0));
    const ext = base.slice(dot + 1);
    if (dot < 0 || !stem || [...ext].length > 8 || !/^[\p{L}\p{N}]+$/u.test(ext)) break;
    base = stem;
  }
  return safeName(base, "dataset");
}
