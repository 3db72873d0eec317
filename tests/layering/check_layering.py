#!/usr/bin/env python3
"""Fails when a module of src/ includes a module it must not (docs/architecture.md, "Modules").

Dependencies point one way (the table ALLOWED below; docs/architecture.md draws the same chain):
    cli → app → {ingest, web, destination registry, replay, functions}
    functions → delivery (it implements delivery's EventTransform hook)
    destination registry → {destinations/<type>/, warehouse} → delivery;  replay → {archive, delivery}
    {ingest, delivery} → observe → event;  ingest → governance → {config, event, log}
    {ingest, web, delivery, archive} → {log, event, config, http} → base
A destination may use delivery, event, http, config and base only, never another destination;
core code never includes a destination (the generated list of built-in destinations is compiled
into the wiring, not into core modules).

CMake's per-module targets catch a missing link, not an include of a header-only part of a module
that is linked anyway; this check reads the #include lines themselves. Unit tests (*_test.cc) and
test helpers (testing.h) may also include tests/ and the modules they exercise, so they are not
checked here. Usage: check_layering.py <src dir>
"""
import pathlib
import re
import sys

CORE = {"base", "event", "config", "http", "log"}
ALLOWED = {
    "base": set(),
    "event": {"base"},
    "config": {"base"},
    "http": {"base"},
    "log": {"base"},
    # What the console watches (live feed, per-minute delivery figures).
    "observe": {"base", "event"},
    # privacy/user_set.h alone: the set of users a privacy request names, header-only and
    # dependency-free, so every module holding a copy of events may take one (its deleters, the
    # suppression checks at ingest and in delivery).
    "privacy_ids": set(),
    # Tracking plans (JSON Schema through valijson); ingest judges events with it.
    "governance": {"base", "config", "event", "log"},
    "ingest": {"base", "config", "event", "governance", "http", "log", "observe", "privacy_ids"},
    "web": {"base", "config", "http"},
    "delivery": {"base", "config", "event", "http", "log", "observe", "privacy_ids"},
    # User functions (SpiderMonkey behind functions/engine.h); they implement delivery's
    # EventTransform hook, which the wiring hands to the streams.
    "functions": {"base", "config", "delivery", "event"},
    "destinations": {"base", "config", "delivery", "event", "http", "privacy_ids"},
    # The files directly in src/destinations/ (not in a destination's folder): the registry
    # compiled from the generated list (destinations/registry.h). It knows every destination and
    # the warehouse types; only the wiring and the CLI include it.
    # It checks device-mode destinations against the browser integrations (web).
    "destination_registry": {"base", "config", "delivery", "destinations", "event", "http",
                             "warehouse", "web"},
    "warehouse": {"base", "config", "delivery", "event", "http", "log", "privacy_ids"},
    "archive": {"base", "config", "event", "http", "log", "privacy_ids"},
    "replay": {"archive", "base", "config", "delivery", "event", "http", "log"},
    # The admin API (routes, auth, audit); configuration reaches it only through ConfigApi
    # (admin/config_api.h), which the wiring implements.
    "admin": {"base", "console", "http", "observe"},
    # The console's pages and assets, served by the admin listener (admin → console).
    "console": {"base", "http"},
    # The wiring may use every module but the CLI; the CLI may use everything.
    "app": None,
    "cli": None,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_0-9]+)/([^"]*)"', re.M)


def module_of(rel: pathlib.PurePosixPath) -> str:
    top = rel.parts[0]
    if top == "destinations" and len(rel.parts) == 2:
        return "destination_registry"
    if top == "privacy" and rel.as_posix() == "privacy/user_set.h":
        return "privacy_ids"
    return top


def is_test_file(rel: pathlib.PurePosixPath) -> bool:
    return rel.name.endswith("_test.cc") or rel.name in ("testing.h", "testing.cc")


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src").resolve()
    problems, checked = [], 0
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cc") or not path.is_file():
            continue
        rel = pathlib.PurePosixPath(path.relative_to(src).as_posix())
        if len(rel.parts) < 2 or is_test_file(rel):
            continue
        mod = module_of(rel)
        if mod not in ALLOWED:
            problems.append(f"{rel}: module '{mod}' is not in the layering table "
                            "(add it to tests/layering/check_layering.py and docs/architecture.md)")
            continue
        allowed = ALLOWED[mod]
        checked += 1
        for m in INCLUDE.finditer(path.read_text(errors="replace")):
            target, rest = m.group(1), m.group(2)
            if target not in ALLOWED and target != "tests":
                continue  # a third-party header that happens to look like "x/y.h"
            target_mod = module_of(pathlib.PurePosixPath(target, rest))
            if target_mod == mod:
                if mod == "destinations" and rest.split("/")[0] != rel.parts[1]:
                    problems.append(f"{rel}: a destination includes another destination "
                                    f"({target}/{rest}); shared code belongs in delivery/")
                continue
            if target == "tests":
                problems.append(f"{rel}: production code includes a test helper ({target}/{rest})")
            elif allowed is not None and target_mod not in allowed:
                problems.append(f"{rel}: module '{mod}' must not include '{target_mod}' "
                                f"({target}/{rest}); it may use {sorted(allowed) or 'nothing of ours'}")
    for p in problems:
        print(p)
    if checked == 0:
        print(f"no source files found under {src}")
        return 1
    print(f"checked {checked} files: {len(problems)} layering violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
