"""``frbench profile use NAME`` (write params.yaml from profiles/: ``builtin`` or ``paper``),
``frbench profile save`` (params.yaml -> profiles/builtin.yaml), ``frbench profile list``.
After switching, ``dvc repro`` reruns what the changed params invalidate."""
from __future__ import annotations


def add_arguments(p):
    p.add_argument("action", choices=["use", "save", "list", "show"], help="use NAME: write that profile to params.yaml; save: params.yaml -> profiles/builtin.yaml; list; show NAME")
    p.add_argument("name", nargs="?", default=None, help="profile name (use/show)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--profiles-dir", default="profiles", help="folder of profile files (default profiles)")


def run(args) -> int:
    from pathlib import Path

    from pipeline import profiles
    from core.errors import FRBenchError

    d = Path(args.profiles_dir)
    if args.action == "list":
        print("\n".join(profiles.available(d)))
        return 0
    if args.action == "save":
        out = profiles.save(args.params, d)
        print(f"wrote {out} from {args.params}")
        return 0
    if not args.name:
        raise FRBenchError(f"frbench profile {args.action}: name a profile "
                           f"({', '.join(profiles.available(d))})")
    if args.action == "show":
        print(profiles.render(args.name, d), end="")
        return 0
    profiles.use(args.name, args.params, d)
    print(f"{args.params} now holds the '{args.name}' profile; run `dvc repro`")
    return 0
