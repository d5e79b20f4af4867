"""The runner agent: how contributors join their hardware to the federation (``kgsched runner``)."""
