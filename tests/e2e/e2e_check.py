"""The checks of the e2e tests' inline python (run with PYTHONPATH=tests/e2e):
check(ok, what) prints PASS: or FAIL: with what and counts the failures; verdict() is the exit
status, 1 if any check failed."""

failed = 0


def check(ok, what):
    global failed
    print(("PASS: " if ok else "FAIL: ") + what)
    failed += not ok
    return ok


def verdict():
    return 1 if failed else 0
