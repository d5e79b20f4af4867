"""Import of WfCommons workflow instances (WfFormat) as expressions, executions and products."""
