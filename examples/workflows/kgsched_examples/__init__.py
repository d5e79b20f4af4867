"""Example workflows of the kgsched demo federation: small, real analyses of INTEGRAL-like data.

Each is a pure function: keyword arguments in (literals as Python values, data as local file paths),
a JSON-serialisable result out. See kgsched/runner/executor.py for how runners call them.
"""
