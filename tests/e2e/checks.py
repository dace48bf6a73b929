"""The failure list the e2e scripts share: check(ok, what) records and prints a failure; summary() ends."""
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL", what)
    return ok


def summary(counted):
    """Prints "COUNTED, N failures" and returns the exit status."""
    print(f"{counted}, {len(failures)} failures")
    return 1 if failures else 0
