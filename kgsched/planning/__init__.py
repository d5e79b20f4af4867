"""Requests to plans: content-addressed expressions, the planner's facts, cost model and decisions."""
