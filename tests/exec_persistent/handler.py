"""The persistent --exec child of tests/exec_persistent: what it does depends on the task.

echo: answers its facts; flaky: fails its first attempt; fatal: fails without retry; crash:
exits on its first attempt; quit: answers, then exits; garbage: writes a line that is no reply; wrong_id: answers for
another job; hang: starts a grandchild, records "PID GRANDCHILD" in $OUT/pids, never answers.
"""
import json
import os
import subprocess
import sys
import time


def reply(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


print("handler \x1b[2J started", file=sys.stderr, flush=True)
for line in sys.stdin.buffer:
    job = json.loads(line)
    jid, task, attempt = job["id"], job["task"], job["attempt"]
    facts = {
        "pid": os.getpid(),
        "slot": os.environ["STREAMWORKER_SLOT"],
        "protocol": os.environ["STREAMWORKER_PROTOCOL"],
        "task": task,
        "attempt": attempt,
        "group": job["group"],
        "deadline_ms": job["deadline_ms"],
        "now_ms": int(time.time() * 1000),
        "args": job["args"],
        "headers": job.get("headers"),
    }
    if task == "flaky" and attempt == 1:
        reply({"id": jid, "ok": False, "error": "flaky: try again"})
    elif task == "fatal":
        reply({"id": jid, "ok": False, "error": "bad input", "retry": False})
    elif task == "crash" and attempt == 1:
        print("crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)
    elif task == "quit":
        reply({"id": jid, "ok": True, "result": facts})
        os._exit(0)
    elif task == "garbage":
        print("this is not json")
        sys.stdout.flush()
    elif task == "wrong_id":
        reply({"id": "someone-else", "ok": True})
    elif task == "hang":
        sleeper = subprocess.Popen(["sleep", "1000"])
        out = os.environ["OUT"]
        with open(out + "/pids.tmp", "w") as f:
            f.write("%d %d\n" % (os.getpid(), sleeper.pid))
        os.rename(out + "/pids.tmp", out + "/pids")
        time.sleep(1000)
    else:
        reply({"id": jid, "ok": True, "result": facts})
