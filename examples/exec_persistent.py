#!/usr/bin/env python3
"""A handler for `streamworker --exec-mode persistent` (standard library only).

    streamworker --group demo --exec-mode persistent --exec 'python3 examples/exec_persistent.py'
    streamworker enqueue --group demo --task add --args '{"a": 2, "b": 3}' --keep-result 1h

streamworker sends one job per line on stdin:
    {"id": "...", "task": "add", "attempt": 1, "group": "demo", "deadline_ms": ..., "args": {...}}
and reads one reply per job on stdout:
    {"id": "...", "ok": true, "result": 5}
    {"id": "...", "ok": false, "error": "...", "retry": false}
stdout carries only replies: log to stderr (it goes to the worker's log).
"""
import json
import sys


def add(args):
    return args["a"] + args["b"]


def greet(args):
    return "hello " + args.get("name", "world")


TASKS = {"add": add, "greet": greet}


def handle(job):
    """Runs one job; returns its reply."""
    task = TASKS.get(job["task"])
    if task is None:
        return {"id": job["id"], "ok": False, "error": "unknown task " + job["task"], "retry": False}
    try:
        return {"id": job["id"], "ok": True, "result": task(job["args"])}
    except (KeyError, TypeError, ValueError) as e:  # bad args: retrying will not help
        return {"id": job["id"], "ok": False, "error": repr(e), "retry": False}
    except Exception as e:  # anything else may pass: retried with backoff
        return {"id": job["id"], "ok": False, "error": repr(e)}


def main():
    print("exec_persistent.py ready", file=sys.stderr, flush=True)
    for line in sys.stdin.buffer:
        reply = handle(json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
