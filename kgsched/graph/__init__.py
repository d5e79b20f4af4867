"""The graph layer: stores, bound values, updates, the packaged queries, RDF parsing, the query guard."""

#: Where the embedded store lives unless --store / KGSCHED_STORE says otherwise. Here rather than in
#: store.py so that the command line's help can show it without loading pyoxigraph.
DEFAULT_STORE_DIR = "./kgsched-data"
