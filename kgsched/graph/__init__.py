"""The graph layer: stores, bound values, updates, the packaged queries, RDF parsing, the query guard."""
