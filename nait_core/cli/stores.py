"""`nait info` (stores and features with their sizes) and `nait verify` (shards and derived caches against
their sha256 checksums)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..capture import DEFAULT_STORE_ROOT
from ..features import library, list_features
from ..store import Store, StoreError, list_stores


def cmd_info(args):
    stores = list_stores(Path(args.store_dir))
    features = library(Path(args.store_dir)) + (list_features(Path(args.features)) if args.features else [])
    if args.json:
        print(json.dumps({"stores": stores, "features": features}, indent=2))
        return
    print(f"stores in {args.store_dir}:")
    for s in stores:
        if "error" in s:
            print(f"  {Path(s['path']).name}  UNREADABLE: {s['error']}")
            continue
        status = "complete" if s.get("complete") else "INCOMPLETE"
        print(
            f"  {Path(s['path']).name}  {s.get('samples', '?'):>7} samples  {s.get('layers')}×{s.get('neurons')}  "
            f"{s.get('size_mb', '?')} MB  {status}"
        )
    print("features:")
    for f in features:
        print(
            f"  {f['path']}  "
            + (
                f"{f['target']} ({f['samples']} samples, {f['model']}) {f['size_kb']} kB"
                if "error" not in f
                else f["error"]
            )
        )


def cmd_verify(args):
    """Check every shard's and derived cache's sha256; with --repair remove what is damaged."""
    paths = list(args.stores) or [s["path"] for s in list_stores(Path(args.store_dir))]
    if not paths:
        print(f"no stores in {args.store_dir}", file=sys.stderr)
    bad = unreadable = 0
    results = []
    for path in paths:
        try:
            result = Store.at(path).verify(repair=args.repair)
        except StoreError as error:
            result = {"path": str(path), "error": str(error)}
        results.append(result)
        damaged = len(result.get("damaged_shards", [])) + len(result.get("damaged_caches", []))
        bad += damaged
        unreadable += "error" in result
        if args.json:
            continue
        if "error" in result:  # the message starts with the path
            print(result["error"])
            continue
        missing = f", {len(result['missing'])} missing (resume with the capture command)" if result["missing"] else ""
        print(f"{path}: {result['shards']} shards{missing}, " + ("all intact" if not damaged else f"{damaged} damaged"))
        for item in result["damaged_shards"]:
            print(f"  {item['problem']}" + ("  -> removed" if args.repair else ""))
        for item in result["damaged_caches"]:
            refused = "refused" in item["problem"]
            print(
                f"  {item['problem']}" + (("  -> entry dropped" if refused else "  -> removed") if args.repair else "")
            )
        for leftover in result["leftovers"]:  # not damage: a killed writer's temporary, its process gone
            print(
                f"  {leftover}: left by a killed writer" + ("  -> removed" if args.repair else " (--repair removes it)")
            )
    if args.json:
        print(json.dumps(results, indent=2))
    if bad and args.repair:
        print(
            f"removed {bad} damaged item(s): run the same capture command again to recapture the shards "
            f"(derived caches are recomputed when next used)",
            file=sys.stderr,
        )
    if unreadable:  # --repair cannot help: nothing in such a folder is trusted
        raise StoreError(f"{unreadable} store(s) unreadable (see above): delete the folder and run the capture again")
    if bad and not args.repair:
        raise StoreError(
            f"{bad} damaged item(s); `nait verify --repair` removes them so that the same capture "
            f"command recaptures just those shards"
        )


def add_info_parser(sub) -> None:
    p = sub.add_parser("info", help="list stores and features with their sizes")
    p.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT))
    p.add_argument("--features", help="another folder of feature files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)


def add_verify_parser(sub) -> None:
    p = sub.add_parser("verify", help="check stores' shards and derived caches against their sha256 checksums")
    p.add_argument("stores", nargs="*", help="store folders or URLs (default: every store in --store-dir)")
    p.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT))
    p.add_argument(
        "--repair",
        action="store_true",
        help="remove damaged shards and caches (the capture command then recaptures them)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)
