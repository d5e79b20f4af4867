"""The HTML query page served at ``/``: a text area, a format choice, a results table. No framework,
no external assets (the page works offline); results come from ``/sparql`` with fetch()."""

QUERY_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kgsched — SPARQL</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 72rem; }
  textarea { width: 100%; height: 14rem; font-family: ui-monospace, monospace; font-size: 0.9rem; }
  table { border-collapse: collapse; margin-top: 1rem; font-size: 0.85rem; }
  td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
  pre { background: #f6f6f6; padding: 0.5rem; overflow: auto; }
  .error { color: #a00; }
</style>
</head>
<body>
<h1>kgsched knowledge graph</h1>
<p>Read-only SPARQL 1.1 over the whole federation graph (the default graph is the union of the
named graphs). Programs use <code>/sparql</code> directly; the REST API is described at
<a href="openapi.json">openapi.json</a>.</p>
<form id="form">
<textarea id="query" name="query" spellcheck="false">PREFIX ks: <https://w3id.org/kgsched#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?runner ?label ?site WHERE {
  ?runner a/rdfs:subClassOf ks:Runner ; rdfs:label ?label ; ks:atSite ?site .
}
ORDER BY ?runner</textarea>
<p>
<label>Answer as
<select id="accept">
  <option value="application/sparql-results+json">table (SPARQL JSON)</option>
  <option value="text/csv">CSV</option>
  <option value="application/sparql-results+xml">SPARQL XML</option>
  <option value="text/turtle">Turtle (CONSTRUCT/DESCRIBE)</option>
  <option value="application/ld+json">JSON-LD (CONSTRUCT/DESCRIBE)</option>
</select></label>
<button type="submit">Run</button>
</p>
</form>
<div id="out"></div>
<script>
const out = document.getElementById("out");
function cell(term) {
  if (!term) return "";
  return term.type === "literal" && term["xml:lang"] ? term.value + "@" + term["xml:lang"] : term.value;
}
document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  out.textContent = "running…";
  const accept = document.getElementById("accept").value;
  const body = new URLSearchParams({query: document.getElementById("query").value});
  const response = await fetch("sparql", {method: "POST", body, headers: {"Accept": accept}});
  const text = await response.text();
  out.replaceChildren();
  if (!response.ok) {
    const p = document.createElement("pre"); p.className = "error"; p.textContent = text; out.append(p); return;
  }
  const type = response.headers.get("Content-Type") || "";
  if (type.startsWith("application/sparql-results+json")) {
    const data = JSON.parse(text);
    if ("boolean" in data) { out.textContent = String(data.boolean); return; }
    const table = document.createElement("table");
    const head = table.insertRow();
    for (const v of data.head.vars) { const th = document.createElement("th"); th.textContent = v; head.append(th); }
    for (const row of data.results.bindings) {
      const tr = table.insertRow();
      for (const v of data.head.vars) { tr.insertCell().textContent = cell(row[v]); }
    }
    const count = document.createElement("p"); count.textContent = data.results.bindings.length + " row(s)";
    out.append(count, table);
  } else {
    const p = document.createElement("pre"); p.textContent = text; out.append(p);
  }
});
</script>
</body>
</html>
"""
